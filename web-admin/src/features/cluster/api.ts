import { get, type RequestSpec } from '../../lib/api/client';
import type { BundleView, LoadReport, RuntimeConfig } from '../../lib/api/types';
import type { BundleRef } from './tier';

export const clusterKeys = {
  all: ['cluster'] as const,
  clusters: () => [...clusterKeys.all, 'clusters'] as const,
  brokers: (cluster: string) => [...clusterKeys.all, 'brokers', cluster] as const,
  bundles: (cluster: string) => [...clusterKeys.all, 'bundles', cluster] as const,
  health: () => [...clusterKeys.all, 'health'] as const,
  loadReport: () => [...clusterKeys.all, 'load-report'] as const,
  runtime: () => [...clusterKeys.all, 'runtime-config'] as const,
};

export const fetchClusters = () => get<string[]>('/admin/v2/clusters');
export const fetchBrokers = (cluster: string) => get<string[]>('/admin/v2/brokers/{cluster}', { cluster });
export const fetchBundles = (cluster: string) => get<BundleView[]>('/admin/v2/brokers/{cluster}/bundles', { cluster });
export const fetchHealth = () => get<string>('/admin/v2/brokers/health');
export const fetchLoadReport = () => get<LoadReport>('/admin/v2/broker-stats/load-report');
export const fetchRuntimeConfig = () => get<RuntimeConfig>('/admin/v2/brokers/configuration/runtime');

/** Hands a bundle over to another broker without loss (its owner stops, flushes, uploads, releases). */
export const unloadBundleSpec = (b: BundleRef): RequestSpec => ({
  method: 'PUT',
  path: '/admin/v2/namespaces/{tenant}/{namespace}/{bundle}/unload',
  params: { tenant: b.tenant, namespace: b.namespace, bundle: b.range },
});

/** Gives a dead broker's bundle to a live one, accepting the loss of its unuploaded tail. */
export const takeoverSpec = (cluster: string, b: BundleRef): RequestSpec => ({
  method: 'POST',
  path: '/admin/v2/brokers/{cluster}/bundles/{tenant}/{namespace}/{bundle}/takeover',
  params: { cluster, tenant: b.tenant, namespace: b.namespace, bundle: b.range },
  query: { acceptDataLoss: true },
});
