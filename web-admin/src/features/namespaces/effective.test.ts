import { describe, expect, it } from 'vitest';
import { effectivePolicies } from './effective';

const broker = {
  defaultRetentionTimeInMinutes: '0',
  defaultRetentionSizeInMB: '0',
  managedLedgerOffloadAutoTriggerSizeThresholdBytes: '-1',
  managedLedgerOffloadThresholdInSeconds: '-1',
  managedLedgerOffloadDeletionLagMs: '14400000',
  allowAutoTopicCreation: 'true',
  allowAutoTopicCreationType: 'non-partitioned',
  subscriptionAuthMode: 'None',
};

describe('effective namespace policies', () => {
  it('inherits the broker defaults when nothing is set', () => {
    const rows = effectivePolicies({ offload_threshold: -1, subscription_auth_mode: 'None' }, broker);
    expect(rows.every((r) => r.source === 'broker default')).toBe(true);
    const by = Object.fromEntries(rows.map((r) => [r.key, r.value]));
    expect(by.offloadThreshold).toBe('off');
    expect(by.offloadDeletionLag).toBe('4h');
    expect(by.autoTopicCreation).toBe('on, non-partitioned');
  });
  it('says what is set on the namespace', () => {
    const rows = effectivePolicies(
      {
        retention_policies: { retentionTimeInMinutes: 60, retentionSizeInMB: 100 },
        message_ttl_in_seconds: 120,
        backlog_quota_map: { destination_storage: { limitSize: 1048576, policy: 'producer_exception' } },
        offload_threshold: 0,
        offload_policies: { managedLedgerOffloadDeletionLagInMillis: 60000 },
        autoTopicCreationOverride: { allowAutoTopicCreation: true, topicType: 'partitioned', defaultNumPartitions: 4 },
        subscription_auth_mode: 'Prefix',
      },
      broker,
    );
    const by = Object.fromEntries(rows.map((r) => [r.key, r]));
    expect(by.retention.value).toBe('1h, 100 MiB');
    expect(by.messageTTL.value).toBe('2m');
    expect(by.backlogQuotaSize.value).toBe('1.00 MiB, then producer_exception');
    expect(by.backlogQuotaAge.source).toBe('broker default');
    expect(by.offloadThreshold.value).toBe('as soon as a segment is sealed');
    expect(by.offloadDeletionLag.value).toBe('1m');
    expect(by.autoTopicCreation.value).toBe('on, partitioned (4 partitions)');
    for (const k of ['retention', 'messageTTL', 'backlogQuotaSize', 'offloadThreshold', 'offloadDeletionLag', 'autoTopicCreation', 'subscriptionAuthMode']) {
      expect(by[k].source, k).toBe('namespace');
    }
  });
});
