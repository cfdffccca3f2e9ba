import { get, type RequestSpec } from '../../lib/api/client';
import type { InternalStats, OffloadStatus, PartitionedTopicStats, TopicStats } from '../../lib/api/types';

export interface TopicRef {
  tenant: string;
  namespace: string;
  topic: string;
}

export const topicKeys = {
  all: ['topics'] as const,
  list: (tenant: string, namespace: string) => [...topicKeys.all, 'list', tenant, namespace] as const,
  detail: (t: TopicRef) => [...topicKeys.all, 'detail', t.tenant, t.namespace, t.topic] as const,
  partitions: (t: TopicRef) => [...topicKeys.detail(t), 'partitions'] as const,
  stats: (t: TopicRef) => [...topicKeys.detail(t), 'stats'] as const,
  internal: (t: TopicRef) => [...topicKeys.detail(t), 'internal'] as const,
  offload: (t: TopicRef) => [...topicKeys.detail(t), 'offload'] as const,
};

const tp = (t: TopicRef) => ({ tenant: t.tenant, namespace: t.namespace, topic: t.topic });

export interface TopicEntry {
  /** Local name (no domain/tenant/namespace). */
  name: string;
  /** Number of partitions, 0 for a non-partitioned topic. */
  partitions: number;
}

function local(full: string): string {
  const i = full.lastIndexOf('/');
  return i >= 0 ? full.slice(i + 1) : full;
}

/**
 * One entry per topic from the two listings: partitioned parents (with the number of their
 * partitions seen in the full listing) and non-partitioned topics; partitions themselves are
 * folded into their parent. Sorted by name.
 */
export function topicEntries(all: string[], partitioned: string[]): TopicEntry[] {
  const parents = new Map<string, number>(partitioned.map((p) => [local(p), 0]));
  const plain: TopicEntry[] = [];
  for (const full of all) {
    const name = local(full);
    const m = /^(.*)-partition-(\d+)$/.exec(name);
    if (m && parents.has(m[1])) parents.set(m[1], Math.max(parents.get(m[1])!, Number(m[2]) + 1));
    else if (!parents.has(name)) plain.push({ name, partitions: 0 });
  }
  const out = [...plain, ...[...parents].map(([name, n]) => ({ name, partitions: Math.max(n, 1) }))];
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Case-insensitive substring filter; `*` matches anything. */
export function filterTopics(list: TopicEntry[], q: string | undefined): TopicEntry[] {
  const f = (q ?? '').trim().toLowerCase();
  if (!f) return list;
  if (f.includes('*')) {
    const re = new RegExp(`^${f.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
    return list.filter((t) => re.test(t.name.toLowerCase()));
  }
  return list.filter((t) => t.name.toLowerCase().includes(f));
}

export function pageOf<T>(list: T[], page: number, size: number): { items: T[]; page: number; pages: number } {
  const pages = Math.max(1, Math.ceil(list.length / size));
  const p = Math.min(Math.max(1, page), pages);
  return { items: list.slice((p - 1) * size, p * size), page: p, pages };
}

export async function fetchTopicEntries(tenant: string, namespace: string): Promise<TopicEntry[]> {
  const [all, partitioned] = await Promise.all([
    get<string[]>('/admin/v2/persistent/{tenant}/{namespace}', { tenant, namespace }),
    get<string[]>('/admin/v2/persistent/{tenant}/{namespace}/partitioned', { tenant, namespace }),
  ]);
  return topicEntries(all, partitioned);
}

export const fetchPartitions = (t: TopicRef) => get<{ partitions: number }>('/admin/v2/persistent/{tenant}/{namespace}/{topic}/partitions', tp(t));
export const fetchStats = (t: TopicRef) => get<TopicStats>('/admin/v2/persistent/{tenant}/{namespace}/{topic}/stats', tp(t));
export const fetchPartitionedStats = (t: TopicRef) =>
  get<PartitionedTopicStats>('/admin/v2/persistent/{tenant}/{namespace}/{topic}/partitioned-stats', tp(t), { perPartition: true });
export const fetchInternalStats = (t: TopicRef) => get<InternalStats>('/admin/v2/persistent/{tenant}/{namespace}/{topic}/internalStats', tp(t));
export const fetchPartitionedInternalStats = (t: TopicRef) =>
  get<{ partitions: Record<string, InternalStats> }>('/admin/v2/persistent/{tenant}/{namespace}/{topic}/partitioned-internalStats', tp(t));
export const fetchOffloadStatus = (t: TopicRef) => get<OffloadStatus>('/admin/v2/persistent/{tenant}/{namespace}/{topic}/offload', tp(t));
export const fetchLastMessageId = (t: TopicRef) =>
  get<{ ledgerId: number; entryId: number; partitionIndex: number }>('/admin/v2/persistent/{tenant}/{namespace}/{topic}/lastMessageId', tp(t));

export const createTopicSpec = (t: TopicRef, partitions: number): RequestSpec =>
  partitions > 0
    ? { method: 'PUT', path: '/admin/v2/persistent/{tenant}/{namespace}/{topic}/partitions', params: tp(t), body: partitions }
    : { method: 'PUT', path: '/admin/v2/persistent/{tenant}/{namespace}/{topic}', params: tp(t) };
export const updatePartitionsSpec = (t: TopicRef, partitions: number): RequestSpec => ({
  method: 'POST',
  path: '/admin/v2/persistent/{tenant}/{namespace}/{topic}/partitions',
  params: tp(t),
  body: partitions,
});
export const deleteTopicSpec = (t: TopicRef, partitioned: boolean): RequestSpec => ({
  method: 'DELETE',
  path: partitioned ? '/admin/v2/persistent/{tenant}/{namespace}/{topic}/partitions' : '/admin/v2/persistent/{tenant}/{namespace}/{topic}',
  params: tp(t),
  query: { force: true },
});
export const triggerOffloadSpec = (t: TopicRef, id: { ledgerId: number; entryId: number; partitionIndex: number }): RequestSpec => ({
  method: 'PUT',
  path: '/admin/v2/persistent/{tenant}/{namespace}/{topic}/offload',
  params: tp(t),
  body: id,
});

/** The local name of partition `i` of a topic. */
export const partitionName = (topic: string, i: number) => `${topic}-partition-${i}`;
