/**
 * Effective namespace policies: the value set on the namespace, or the broker default it
 * inherits (from `GET /admin/v2/brokers/configuration/runtime`), and which one applies.
 */
import { formatBytes, formatDuration, formatRetention } from '../../lib/format';
import type { Policies, RuntimeConfig } from '../../lib/api/types';

export type PolicyKey =
  | 'retention'
  | 'messageTTL'
  | 'backlogQuotaSize'
  | 'backlogQuotaAge'
  | 'offloadThreshold'
  | 'offloadThresholdInSeconds'
  | 'offloadDeletionLag'
  | 'autoTopicCreation'
  | 'subscriptionAuthMode';

export interface EffectivePolicy {
  key: PolicyKey;
  label: string;
  value: string;
  source: 'namespace' | 'broker default';
}

const num = (v: string | undefined, fallback: number) => (v === undefined || v === '' || Number.isNaN(Number(v)) ? fallback : Number(v));

function offloadField(p: Policies, name: string): number | undefined {
  const v = p.offload_policies?.[name];
  return typeof v === 'number' ? v : undefined;
}

const bytesOrOff = (b: number) => (b < 0 ? 'off' : b === 0 ? 'as soon as a segment is sealed' : formatBytes(b));
const secondsOrOff = (s: number) => (s < 0 ? 'off' : formatDuration(s));

export function effectivePolicies(p: Policies, rc: RuntimeConfig | undefined): EffectivePolicy[] {
  const d = rc ?? {};
  const out: EffectivePolicy[] = [];
  const ret = p.retention_policies;
  out.push({
    key: 'retention',
    label: 'Retention',
    value: formatRetention(
      ret ?? { retentionTimeInMinutes: num(d.defaultRetentionTimeInMinutes, 0), retentionSizeInMB: num(d.defaultRetentionSizeInMB, 0) },
    ),
    source: ret ? 'namespace' : 'broker default',
  });
  const ttl = p.message_ttl_in_seconds;
  out.push({
    key: 'messageTTL',
    label: 'Message TTL',
    value: (() => {
      const v = ttl ?? num(d.messageTTLInSeconds, 0);
      return v === 0 ? 'none (messages never expire)' : formatDuration(v);
    })(),
    source: ttl !== undefined && ttl !== null ? 'namespace' : 'broker default',
  });
  const size = p.backlog_quota_map?.destination_storage;
  out.push({
    key: 'backlogQuotaSize',
    label: 'Backlog quota (size)',
    value: size ? `${formatBytes(size.limitSize ?? -1)}, then ${size.policy}` : 'none',
    source: size ? 'namespace' : 'broker default',
  });
  const age = p.backlog_quota_map?.message_age;
  out.push({
    key: 'backlogQuotaAge',
    label: 'Backlog quota (age)',
    value: age ? `${formatDuration(age.limitTime ?? -1)}, then ${age.policy}` : 'none',
    source: age ? 'namespace' : 'broker default',
  });
  const thr = offloadField(p, 'managedLedgerOffloadThresholdInBytes') ?? (p.offload_threshold !== undefined && p.offload_threshold !== -1 ? p.offload_threshold : undefined);
  out.push({
    key: 'offloadThreshold',
    label: 'Offload threshold (size kept locally)',
    value: bytesOrOff(thr ?? num(d.managedLedgerOffloadAutoTriggerSizeThresholdBytes, -1)),
    source: thr !== undefined ? 'namespace' : 'broker default',
  });
  const secs = offloadField(p, 'managedLedgerOffloadThresholdInSeconds') ?? p.offload_threshold_in_seconds ?? undefined;
  out.push({
    key: 'offloadThresholdInSeconds',
    label: 'Offload threshold (age)',
    value: secondsOrOff(secs ?? num(d.managedLedgerOffloadThresholdInSeconds, -1)),
    source: secs !== undefined && secs !== null ? 'namespace' : 'broker default',
  });
  const lag = offloadField(p, 'managedLedgerOffloadDeletionLagInMillis') ?? p.offload_deletion_lag_ms ?? undefined;
  out.push({
    key: 'offloadDeletionLag',
    label: 'Offload deletion lag (local copy kept)',
    value: (() => {
      const v = lag ?? num(d.managedLedgerOffloadDeletionLagMs, -1);
      return v < 0 ? 'forever' : formatDuration(v / 1000);
    })(),
    source: lag !== undefined && lag !== null ? 'namespace' : 'broker default',
  });
  const auto = p.autoTopicCreationOverride;
  out.push({
    key: 'autoTopicCreation',
    label: 'Topic auto-creation',
    value: auto
      ? auto.allowAutoTopicCreation
        ? auto.topicType === 'partitioned'
          ? `on, partitioned (${auto.defaultNumPartitions} partitions)`
          : 'on, non-partitioned'
        : 'off'
      : d.allowAutoTopicCreation === 'false'
        ? 'off'
        : `on, ${d.allowAutoTopicCreationType ?? 'non-partitioned'}`,
    source: auto ? 'namespace' : 'broker default',
  });
  const mode = p.subscription_auth_mode ?? 'None';
  out.push({
    key: 'subscriptionAuthMode',
    label: 'Subscription auth mode',
    value: mode === 'Prefix' ? 'Prefix (subscription names must start with the role)' : 'None',
    source: mode !== (d.subscriptionAuthMode ?? 'None') ? 'namespace' : 'broker default',
  });
  return out;
}
