import { get, type RequestSpec } from '../../lib/api/client';
import type { ServiceAccount, TokenInfo } from '../../lib/api/types';

export const accountKeys = {
  all: ['accounts'] as const,
  list: (tenant: string) => [...accountKeys.all, 'list', tenant] as const,
  tokens: (tenant: string, name: string) => [...accountKeys.all, 'tokens', tenant, name] as const,
};

const A = '/admin/v2/tenants/{tenant}/service-accounts' as const;

export const fetchAccounts = (tenant: string) => get<ServiceAccount[]>(A, { tenant });
export const fetchTokens = (tenant: string, name: string) => get<TokenInfo[]>(`${A}/{name}/tokens`, { tenant, name });

export const createAccountSpec = (tenant: string, name: string, description: string): RequestSpec => ({
  method: 'PUT',
  path: `${A}/{name}`,
  params: { tenant, name },
  body: description ? { description } : undefined,
});
export const deleteAccountSpec = (tenant: string, name: string): RequestSpec => ({ method: 'DELETE', path: `${A}/{name}`, params: { tenant, name } });
export const mintTokenSpec = (tenant: string, name: string, expiresInSeconds: number): RequestSpec => ({
  method: 'POST',
  path: `${A}/{name}/tokens`,
  params: { tenant, name },
  body: { expiresInSeconds },
});
export const revokeTokenSpec = (tenant: string, name: string, id: string): RequestSpec => ({ method: 'DELETE', path: `${A}/{name}/tokens/{id}`, params: { tenant, name, id } });

export const EXPIRIES: { label: string; seconds: number }[] = [
  { label: '1 hour', seconds: 3600 },
  { label: '1 day', seconds: 86_400 },
  { label: '7 days', seconds: 7 * 86_400 },
  { label: '30 days', seconds: 30 * 86_400 },
  { label: '90 days', seconds: 90 * 86_400 },
  { label: '1 year', seconds: 365 * 86_400 },
];

/** Service-account names: lowercase letters, digits, - and _, starting with a letter or digit, ≤ 64. */
export const validAccountName = (n: string) => /^[a-z0-9][a-z0-9_-]{0,63}$/.test(n);
