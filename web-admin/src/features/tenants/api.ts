import { get, type RequestSpec } from '../../lib/api/client';
import type { TenantInfo } from '../../lib/api/types';

export const tenantKeys = {
  all: ['tenants'] as const,
  list: () => [...tenantKeys.all, 'list'] as const,
  detail: (tenant: string) => [...tenantKeys.all, 'detail', tenant] as const,
};

export const fetchTenants = () => get<string[]>('/admin/v2/tenants');
export const fetchTenant = (tenant: string) => get<TenantInfo>('/admin/v2/tenants/{tenant}', { tenant });

export const createTenantSpec = (tenant: string, info: TenantInfo): RequestSpec => ({
  method: 'PUT',
  path: '/admin/v2/tenants/{tenant}',
  params: { tenant },
  body: info,
});
export const updateTenantSpec = (tenant: string, info: TenantInfo): RequestSpec => ({
  method: 'POST',
  path: '/admin/v2/tenants/{tenant}',
  params: { tenant },
  body: info,
});
export const deleteTenantSpec = (tenant: string, force: boolean): RequestSpec => ({
  method: 'DELETE',
  path: '/admin/v2/tenants/{tenant}',
  params: { tenant },
  query: force ? { force: true } : undefined,
});

/** "a, b ,c" → ["a","b","c"] */
export function parseList(text: string): string[] {
  return [...new Set(text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean))];
}
