import { describe, expect, it } from 'vitest';
import type { AppliedPolicies } from '../../lib/api/types';
import { appliedRows } from './applied';

const broker = (value: unknown) => ({ value, level: 'broker' as const });

const defaults: AppliedPolicies = {
  maxProducersPerTopic: broker(0),
  maxConsumersPerTopic: broker(0),
  maxConsumersPerSubscription: broker(0),
  maxSubscriptionsPerTopic: broker(0),
  maxUnackedMessagesPerConsumer: broker(50000),
  maxUnackedMessagesPerSubscription: broker(0),
  publishRate: broker({ publishThrottlingRateInMsg: 0, publishThrottlingRateInByte: 0 }),
  dispatchRate: broker({ dispatchThrottlingRateInMsg: 0, dispatchThrottlingRateInByte: 0, relativeToPublishRate: false, ratePeriodInSecond: 1 }),
  subscriptionDispatchRate: broker({ dispatchThrottlingRateInMsg: 0, dispatchThrottlingRateInByte: 0, relativeToPublishRate: false, ratePeriodInSecond: 1 }),
  subscribeRate: broker({ subscribeThrottlingRatePerConsumer: 0, ratePeriodInSecond: 30 }),
  inactiveTopicPolicies: broker({ inactiveTopicDeleteMode: 'delete_when_no_subscriptions', maxInactiveDurationSeconds: 60, deleteWhileInactive: false }),
  delayedDelivery: broker({ tickTime: 1000, active: true }),
  subscriptionTypesEnabled: broker(['Exclusive', 'Shared', 'Failover', 'Key_Shared']),
  autoSubscriptionCreation: broker({ allowAutoSubscriptionCreation: true }),
  subscriptionExpirationTimeMinutes: broker(0),
  encryptionRequired: broker(false),
  deduplicationEnabled: broker(false),
  deduplicationSnapshotIntervalSeconds: broker(120),
  compactionThreshold: broker(0),
  schemaCompatibilityStrategy: broker('UNDEFINED'),
  schemaValidationEnforced: broker(false),
  replicatorDispatchRate: broker({ dispatchThrottlingRateInMsg: 0, dispatchThrottlingRateInByte: 0, relativeToPublishRate: false, ratePeriodInSecond: 1 }),
  retentionPolicies: broker({ retentionTimeInMinutes: 0, retentionSizeInMB: 0 }),
  persistence: broker({ bookkeeperEnsemble: 1, bookkeeperWriteQuorum: 1, bookkeeperAckQuorum: 1, managedLedgerMaxMarkDeleteRate: 0 }),
  messageTTLInSeconds: broker(0),
  maxMessageSize: broker(5242880),
  backlogQuotaMap: broker({}),
  offloadPolicies: broker({}),
};

describe('limits in force', () => {
  it('reads zero counts and rates as no limit', () => {
    const by = Object.fromEntries(appliedRows(defaults).map((r) => [r.key, r]));
    expect(by.publishRate.value).toBe('no limit');
    expect(by.maxProducersPerTopic.value).toBe('no limit');
    expect(by.inactiveTopicPolicies.value).toBe('kept');
    expect(by.subscriptionExpirationTimeMinutes.value).toBe('never');
    expect(by.encryptionRequired.level).toBe('broker');
    expect(by.deduplicationEnabled.value).toBe('off');
    expect(by.compactionThreshold.value).toBe('off');
    expect(by.retentionPolicies.value).toBe('none');
    expect(by.persistence.value).toBe("one: the owning broker's write-ahead log");
    expect(by.messageTTLInSeconds.value).toBe('never');
    expect(by.schemaCompatibilityStrategy.value).toBe('same type (broker rule)');
  });
  it('shows what the namespace sets and its level', () => {
    const rows = appliedRows({
      ...defaults,
      publishRate: { value: { publishThrottlingRateInMsg: 100, publishThrottlingRateInByte: 0 }, level: 'namespace' },
      maxConsumersPerTopic: { value: 3, level: 'namespace' },
      inactiveTopicPolicies: {
        value: { inactiveTopicDeleteMode: 'delete_when_subscriptions_caught_up', maxInactiveDurationSeconds: 3600, deleteWhileInactive: true },
        level: 'namespace',
      },
    });
    const by = Object.fromEntries(rows.map((r) => [r.key, r]));
    expect(by.publishRate).toMatchObject({ value: '100 msg/s', level: 'namespace' });
    expect(by.maxConsumersPerTopic).toMatchObject({ value: '3', level: 'namespace' });
    expect(by.inactiveTopicPolicies.value).toBe('deleted after 1h unused (subscriptions caught up)');
    const later = Object.fromEntries(
      appliedRows({
        ...defaults,
        retentionPolicies: { value: { retentionTimeInMinutes: -1, retentionSizeInMB: 100 }, level: 'namespace' },
        schemaCompatibilityStrategy: { value: 'BACKWARD', level: 'namespace' },
        messageTTLInSeconds: { value: 3600, level: 'namespace' },
      }).map((r) => [r.key, r]),
    );
    expect(later.retentionPolicies.value).toBe('forever, 100 MB');
    expect(later.schemaCompatibilityStrategy.value).toBe('BACKWARD');
    expect(later.messageTTLInSeconds.value).toBe('1h');
  });
});
