import { useQuery } from '@tanstack/react-query';
import { clusterKeys, fetchRuntimeConfig } from './api';

/** The broker settings namespace policies inherit (rarely changes). */
export function useRuntimeConfig() {
  return useQuery({ queryKey: clusterKeys.runtime(), queryFn: fetchRuntimeConfig, staleTime: 5 * 60_000 });
}
