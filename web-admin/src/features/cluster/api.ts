import { get } from '../../lib/api/client';
import type { LoadReport, RuntimeConfig } from '../../lib/api/types';

export const clusterKeys = {
  all: ['cluster'] as const,
  clusters: () => [...clusterKeys.all, 'clusters'] as const,
  brokers: (cluster: string) => [...clusterKeys.all, 'brokers', cluster] as const,
  health: () => [...clusterKeys.all, 'health'] as const,
  loadReport: () => [...clusterKeys.all, 'load-report'] as const,
  runtime: () => [...clusterKeys.all, 'runtime-config'] as const,
};

export const fetchClusters = () => get<string[]>('/admin/v2/clusters');
export const fetchBrokers = (cluster: string) => get<string[]>('/admin/v2/brokers/{cluster}', { cluster });
export const fetchHealth = () => get<string>('/admin/v2/brokers/health');
export const fetchLoadReport = () => get<LoadReport>('/admin/v2/broker-stats/load-report');
export const fetchRuntimeConfig = () => get<RuntimeConfig>('/admin/v2/brokers/configuration/runtime');
