/**
 * The limit and life policies in force on a namespace's topics (`GET .../appliedPolicies`), as
 * rows a person reads: Pulsar's counts and rates of 0 mean "no limit".
 */
import { formatCount, formatDuration } from '../../lib/format';
import type { AppliedPolicies, PolicyLevel } from '../../lib/api/types';

export interface AppliedRow {
  key: keyof AppliedPolicies;
  label: string;
  value: string;
  level: PolicyLevel;
}

type Json = Record<string, unknown>;

const limit = (v: unknown) => (typeof v === 'number' && v > 0 ? formatCount(v) : 'no limit');
const field = (v: unknown, name: string): number => {
  const x = (v as Json | null)?.[name];
  return typeof x === 'number' ? x : 0;
};

function rate(v: unknown, msgField: string, byteField: string, periodField?: string): string {
  const msgs = field(v, msgField);
  const bytes = field(v, byteField);
  if (msgs <= 0 && bytes <= 0) return 'no limit';
  const period = periodField ? Math.max(1, field(v, periodField)) : 1;
  const per = period === 1 ? 's' : `${period} s`;
  const parts = [msgs > 0 ? `${formatCount(msgs)} msg/${per}` : null, bytes > 0 ? `${formatCount(bytes)} B/${per}` : null];
  const relative = (v as Json | null)?.relativeToPublishRate === true ? ' above the publish rate' : '';
  return parts.filter(Boolean).join(', ') + relative;
}

const FORMATS: { key: keyof AppliedPolicies; label: string; show: (v: unknown) => string }[] = [
  { key: 'publishRate', label: 'Publish rate (per topic)', show: (v) => rate(v, 'publishThrottlingRateInMsg', 'publishThrottlingRateInByte') },
  { key: 'dispatchRate', label: 'Dispatch rate (per topic)', show: (v) => rate(v, 'dispatchThrottlingRateInMsg', 'dispatchThrottlingRateInByte', 'ratePeriodInSecond') },
  {
    key: 'subscriptionDispatchRate',
    label: 'Dispatch rate (per subscription)',
    show: (v) => rate(v, 'dispatchThrottlingRateInMsg', 'dispatchThrottlingRateInByte', 'ratePeriodInSecond'),
  },
  {
    key: 'subscribeRate',
    label: 'Subscribe rate (per consumer)',
    show: (v) => {
      const n = field(v, 'subscribeThrottlingRatePerConsumer');
      return n > 0 ? `${formatCount(n)} per ${formatDuration(Math.max(1, field(v, 'ratePeriodInSecond')))}` : 'no limit';
    },
  },
  { key: 'maxProducersPerTopic', label: 'Producers per topic', show: limit },
  { key: 'maxConsumersPerTopic', label: 'Consumers per topic', show: limit },
  { key: 'maxConsumersPerSubscription', label: 'Consumers per subscription', show: limit },
  { key: 'maxSubscriptionsPerTopic', label: 'Subscriptions per topic', show: limit },
  { key: 'maxUnackedMessagesPerConsumer', label: 'Unacknowledged messages per consumer', show: limit },
  { key: 'maxUnackedMessagesPerSubscription', label: 'Unacknowledged messages per subscription', show: limit },
  {
    key: 'inactiveTopicPolicies',
    label: 'Inactive topics',
    show: (v) => {
      const p = (v ?? {}) as Json;
      if (p.deleteWhileInactive !== true) return 'kept';
      const when = p.inactiveTopicDeleteMode === 'delete_when_subscriptions_caught_up' ? 'subscriptions caught up' : 'no subscriptions';
      return `deleted after ${formatDuration(field(v, 'maxInactiveDurationSeconds'))} unused (${when})`;
    },
  },
  {
    key: 'subscriptionExpirationTimeMinutes',
    label: 'Subscription expiration',
    show: (v) => (typeof v === 'number' && v > 0 ? `after ${formatDuration(v * 60)} without consumers` : 'never'),
  },
  {
    key: 'autoSubscriptionCreation',
    label: 'Automatic subscription creation',
    show: (v) => ((v as Json | null)?.allowAutoSubscriptionCreation === false ? 'off' : 'on'),
  },
  { key: 'subscriptionTypesEnabled', label: 'Subscription types enabled', show: (v) => (Array.isArray(v) ? v.join(', ') : '') },
  {
    key: 'delayedDelivery',
    label: 'Delayed delivery',
    show: (v) => {
      const p = (v ?? {}) as Json;
      if (p.active !== true) return 'off (delivered at once)';
      const max = field(v, 'maxDeliveryDelayInMillis');
      return max > 0 ? `on, at most ${formatDuration(max / 1000)} ahead` : 'on';
    },
  },
  { key: 'encryptionRequired', label: 'Encryption required', show: (v) => (v === true ? 'yes' : 'no') },
  {
    key: 'compactionThreshold',
    label: 'Automatic compaction past (backlog bytes)',
    show: (v) => (typeof v === 'number' && v > 0 ? formatCount(v) : 'off'),
  },
  {
    key: 'deduplicationEnabled',
    label: 'Deduplication (producer name and sequence id)',
    show: (v) => (v === true ? 'on' : 'off'),
  },
  {
    key: 'retentionPolicies',
    label: 'Retention of acknowledged messages',
    show: (v) => {
      const minutes = field(v, 'retentionTimeInMinutes');
      const mb = field(v, 'retentionSizeInMB');
      if (minutes === 0 && mb === 0) return 'none';
      const time = minutes < 0 ? 'forever' : formatDuration(minutes * 60);
      const size = mb < 0 ? 'any size' : `${formatCount(mb)} MB`;
      return `${time}, ${size}`;
    },
  },
  {
    key: 'persistence',
    label: 'Copies of each message (durability)',
    show: (v) => {
      const write = field(v, 'bookkeeperWriteQuorum');
      const ack = field(v, 'bookkeeperAckQuorum');
      if (write <= 1) return "one: the owning broker's write-ahead log";
      // Replicated durability: the owner's copy does not count toward the ack quorum.
      const peers = Math.min(ack, write - 1);
      return `${formatCount(write)} brokers, acknowledged once ${formatCount(peers)} besides the owner have it`;
    },
  },
  {
    key: 'messageTTLInSeconds',
    label: 'Message TTL',
    show: (v) => (typeof v === 'number' && v > 0 ? formatDuration(v) : 'never'),
  },
  { key: 'maxMessageSize', label: 'Largest message (bytes)', show: limit },
  {
    key: 'schemaCompatibilityStrategy',
    label: 'Schema compatibility',
    show: (v) => (typeof v === 'string' && v !== 'UNDEFINED' ? v : 'same type (broker rule)'),
  },
  { key: 'schemaValidationEnforced', label: 'Schema required of producers', show: (v) => (v === true ? 'yes' : 'no') },
];

export function appliedRows(e: AppliedPolicies): AppliedRow[] {
  return FORMATS.map(({ key, label, show }) => {
    const applied = e[key] as { value?: unknown; level: PolicyLevel };
    return { key, label, value: show(applied.value), level: applied.level };
  });
}
