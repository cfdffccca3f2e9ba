import { get, type RequestSpec } from '../../lib/api/client';
import type { AppliedPolicies, BacklogQuota, Policies, RetentionPolicies, AutoTopicCreation } from '../../lib/api/types';

export const namespaceKeys = {
  all: ['namespaces'] as const,
  list: (tenant: string) => [...namespaceKeys.all, 'list', tenant] as const,
  policies: (tenant: string, namespace: string) => [...namespaceKeys.all, 'policies', tenant, namespace] as const,
  applied: (tenant: string, namespace: string) => [...namespaceKeys.all, 'applied', tenant, namespace] as const,
};

export const fetchNamespaces = (tenant: string) => get<string[]>('/admin/v2/namespaces/{tenant}', { tenant });
export const fetchPolicies = (tenant: string, namespace: string) =>
  get<Policies>('/admin/v2/namespaces/{tenant}/{namespace}', { tenant, namespace });

/** What a topic of the namespace that sets nothing itself gets, and from which level. */
export const fetchAppliedPolicies = (tenant: string, namespace: string) =>
  get<AppliedPolicies>('/admin/v2/namespaces/{tenant}/{namespace}/appliedPolicies', { tenant, namespace });

type Ns = { tenant: string; namespace: string };
const n = (p: Ns) => ({ tenant: p.tenant, namespace: p.namespace });

export const createNamespaceSpec = (p: Ns): RequestSpec => ({ method: 'PUT', path: '/admin/v2/namespaces/{tenant}/{namespace}', params: n(p) });
export const deleteNamespaceSpec = (p: Ns, force: boolean): RequestSpec => ({
  method: 'DELETE',
  path: '/admin/v2/namespaces/{tenant}/{namespace}',
  params: n(p),
  query: force ? { force: true } : undefined,
});
export const setRetentionSpec = (p: Ns, r: RetentionPolicies): RequestSpec => ({ method: 'POST', path: '/admin/v2/namespaces/{tenant}/{namespace}/retention', params: n(p), body: r });
export const removeRetentionSpec = (p: Ns): RequestSpec => ({ method: 'DELETE', path: '/admin/v2/namespaces/{tenant}/{namespace}/retention', params: n(p) });
export const setTtlSpec = (p: Ns, seconds: number): RequestSpec => ({ method: 'POST', path: '/admin/v2/namespaces/{tenant}/{namespace}/messageTTL', params: n(p), body: seconds });
export const removeTtlSpec = (p: Ns): RequestSpec => ({ method: 'DELETE', path: '/admin/v2/namespaces/{tenant}/{namespace}/messageTTL', params: n(p) });
export const setQuotaSpec = (p: Ns, type: string, q: BacklogQuota): RequestSpec => ({
  method: 'POST',
  path: '/admin/v2/namespaces/{tenant}/{namespace}/backlogQuota',
  params: n(p),
  query: { backlogQuotaType: type },
  body: q,
});
export const removeQuotaSpec = (p: Ns, type: string): RequestSpec => ({
  method: 'DELETE',
  path: '/admin/v2/namespaces/{tenant}/{namespace}/backlogQuota',
  params: n(p),
  query: { backlogQuotaType: type },
});
export const setOffloadThresholdSpec = (p: Ns, bytes: number): RequestSpec => ({ method: 'PUT', path: '/admin/v2/namespaces/{tenant}/{namespace}/offloadThreshold', params: n(p), body: bytes });
export const setOffloadSecondsSpec = (p: Ns, s: number): RequestSpec => ({ method: 'PUT', path: '/admin/v2/namespaces/{tenant}/{namespace}/offloadThresholdInSeconds', params: n(p), body: s });
export const setDeletionLagSpec = (p: Ns, ms: number): RequestSpec => ({ method: 'PUT', path: '/admin/v2/namespaces/{tenant}/{namespace}/offloadDeletionLagMs', params: n(p), body: ms });
export const removeDeletionLagSpec = (p: Ns): RequestSpec => ({ method: 'DELETE', path: '/admin/v2/namespaces/{tenant}/{namespace}/offloadDeletionLagMs', params: n(p) });
export const setAutoCreationSpec = (p: Ns, v: AutoTopicCreation): RequestSpec => ({ method: 'POST', path: '/admin/v2/namespaces/{tenant}/{namespace}/autoTopicCreation', params: n(p), body: v });
export const removeAutoCreationSpec = (p: Ns): RequestSpec => ({ method: 'DELETE', path: '/admin/v2/namespaces/{tenant}/{namespace}/autoTopicCreation', params: n(p) });
export const setSubAuthModeSpec = (p: Ns, mode: 'None' | 'Prefix'): RequestSpec => ({ method: 'POST', path: '/admin/v2/namespaces/{tenant}/{namespace}/subscriptionAuthMode', params: n(p), body: mode });
