import { get, type RequestSpec } from '../../lib/api/client';

export type Grants = Record<string, string[]>;
export const ACTIONS = ['produce', 'consume', 'functions', 'sources', 'sinks', 'packages'] as const;

export const permissionKeys = {
  all: ['permissions'] as const,
  namespace: (t: string, n: string) => [...permissionKeys.all, 'ns', t, n] as const,
  subscriptions: (t: string, n: string) => [...permissionKeys.all, 'subs', t, n] as const,
  topic: (t: string, n: string, topic: string) => [...permissionKeys.all, 'topic', t, n, topic] as const,
};

const N = '/admin/v2/namespaces/{tenant}/{namespace}' as const;
const T = '/admin/v2/persistent/{tenant}/{namespace}/{topic}' as const;

export const fetchNamespaceGrants = (tenant: string, namespace: string) => get<Grants>(`${N}/permissions`, { tenant, namespace });
export const fetchSubscriptionRoles = (tenant: string, namespace: string) => get<Grants>(`${N}/permissions/subscription`, { tenant, namespace });
export const fetchTopicGrants = (tenant: string, namespace: string, topic: string) => get<Grants>(`${T}/permissions`, { tenant, namespace, topic });

export const grantNamespaceSpec = (tenant: string, namespace: string, role: string, actions: string[]): RequestSpec => ({
  method: 'POST',
  path: `${N}/permissions/{role}`,
  params: { tenant, namespace, role },
  body: actions,
});
export const revokeNamespaceSpec = (tenant: string, namespace: string, role: string): RequestSpec => ({ method: 'DELETE', path: `${N}/permissions/{role}`, params: { tenant, namespace, role } });
export const grantTopicSpec = (tenant: string, namespace: string, topic: string, role: string, actions: string[]): RequestSpec => ({
  method: 'POST',
  path: `${T}/permissions/{role}`,
  params: { tenant, namespace, topic, role },
  body: actions,
});
export const revokeTopicSpec = (tenant: string, namespace: string, topic: string, role: string): RequestSpec => ({ method: 'DELETE', path: `${T}/permissions/{role}`, params: { tenant, namespace, topic, role } });
export const setSubscriptionRolesSpec = (tenant: string, namespace: string, subscription: string, roles: string[]): RequestSpec => ({
  method: 'POST',
  path: `${N}/permissions/subscription/{subscription}`,
  params: { tenant, namespace, subscription },
  body: roles,
});
