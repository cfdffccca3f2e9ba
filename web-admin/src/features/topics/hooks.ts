import { useQuery } from '@tanstack/react-query';
import type { TopicStats } from '../../lib/api/types';
import { fetchPartitionedStats, fetchPartitions, fetchStats, partitionName, topicKeys, type TopicRef } from './api';

export const STATS_REFRESH_MS = 3_000;

export function usePartitionCount(t: TopicRef) {
  return useQuery({ queryKey: topicKeys.partitions(t), queryFn: () => fetchPartitions(t), staleTime: 30_000 });
}

/** Live stats of a topic (every few seconds): totals, and per partition for a partitioned topic. */
export function useTopicStats(t: TopicRef, partitions: number | undefined) {
  return useQuery({
    queryKey: [...topicKeys.stats(t), partitions ?? -1],
    enabled: partitions !== undefined,
    refetchInterval: STATS_REFRESH_MS,
    queryFn: async (): Promise<{ total: TopicStats; partitions: Record<number, TopicStats> }> => {
      if (!partitions) return { total: await fetchStats(t), partitions: {} };
      const s = await fetchPartitionedStats(t);
      const per: Record<number, TopicStats> = {};
      for (let i = 0; i < partitions; i++) {
        const p = Object.entries(s.partitions ?? {}).find(([name]) => name.endsWith(`/${partitionName(t.topic, i)}`));
        if (p) per[i] = p[1];
      }
      return { total: s, partitions: per };
    },
  });
}
