import { formatCount } from '../../lib/format';
import type { TopicStats } from '../../lib/api/types';

/**
 * What acknowledges a topic's (or partition's) messages, from its stats: the broker's WAL
 * (`local`), a committed object (`object-store`), or its replicas, with the quorum in force
 * (docs/durability.md). A topic's totals carry the lowest quorum of its partitions.
 */
export function durabilityText(s: Pick<TopicStats, 'durability' | 'writeQuorum' | 'ackQuorum'>): string {
  const mode = s.durability || 'local';
  const write = s.writeQuorum ?? 0;
  if (mode !== 'replicated' || write < 2) return mode;
  // The owner's copy does not count toward the ack quorum.
  const peers = Math.min(s.ackQuorum ?? write, write - 1);
  return `replicated: ${formatCount(write)} brokers, acknowledged once ${formatCount(peers)} besides the owner have it`;
}

/** The brokers holding copies besides the owner, or a dash. */
export function replicasText(s: Pick<TopicStats, 'replicaPeers'>): string {
  return s.replicaPeers?.length ? s.replicaPeers.join(', ') : '—';
}
