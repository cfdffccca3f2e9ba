import { useParams, useSearch } from '@tanstack/react-router';
import { useSetSearch } from '../../lib/useSetSearch';
import { PageHeader } from '../../components/Layout';
import { Tabs } from '../../components/Tabs';
import { ServiceAccounts } from '../../features/accounts';
import { NamespaceList } from '../../features/namespaces';
import { TenantSettings } from '../../features/tenants';
import { type TenantSearch, type TenantTab } from '../../lib/search';
import { tenantResource } from '../../lib/permissions';
import { useAllowed } from '../../lib/useAllowed';

export function TenantPage() {
  const { tenant } = useParams({ strict: false }) as { tenant: string };
  const search = useSearch({ strict: false }) as TenantSearch;
  const { allowed } = useAllowed([{ operation: 'GetTenant', resource: tenantResource(tenant) }]);
  const admin = allowed('GetTenant', tenantResource(tenant));
  const tabs: { tab: TenantTab; label: string }[] = [
    { tab: 'namespaces', label: 'Namespaces' },
    ...(admin
      ? ([
          { tab: 'accounts', label: 'Service accounts' },
          { tab: 'settings', label: 'Settings' },
        ] as { tab: TenantTab; label: string }[])
      : []),
  ];
  const tab = search.tab ?? 'namespaces';
  const set = useSetSearch<TenantSearch>({ replace: false });
  return (
    <>
      <PageHeader title={`Tenant ${tenant}`} crumbs={[{ label: 'Tenants', to: '/tenants' }, { label: tenant }]} />
      <Tabs tabs={tabs} current={tab} label="Tenant" />
      {tab === 'namespaces' ? <NamespaceList tenant={tenant} /> : null}
      {tab === 'accounts' ? <ServiceAccounts tenant={tenant} account={search.account} onAccount={(account) => set({ account })} /> : null}
      {tab === 'settings' ? <TenantSettings tenant={tenant} /> : null}
    </>
  );
}
