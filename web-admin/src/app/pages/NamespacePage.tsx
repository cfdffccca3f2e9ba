import { useParams, useSearch } from '@tanstack/react-router';
import { useSetSearch } from '../../lib/useSetSearch';
import { PageHeader } from '../../components/Layout';
import { Tabs } from '../../components/Tabs';
import { PoliciesPanel } from '../../features/namespaces';
import { NamespacePermissions } from '../../features/permissions';
import { TopicList } from '../../features/topics';
import { type NamespaceSearch, type NamespaceTab } from '../../lib/search';
import { namespaceResource } from '../../lib/permissions';
import { useAllowed } from '../../lib/useAllowed';

export function NamespacePage() {
  const { tenant, namespace } = useParams({ strict: false }) as { tenant: string; namespace: string };
  const search = useSearch({ strict: false }) as NamespaceSearch;
  const res = namespaceResource(tenant, namespace);
  const { allowed } = useAllowed([{ operation: 'GetNamespacePolicies', resource: res }]);
  const admin = allowed('GetNamespacePolicies', res);
  const tabs: { tab: NamespaceTab; label: string }[] = [
    { tab: 'topics', label: 'Topics' },
    ...(admin
      ? ([
          { tab: 'policies', label: 'Policies' },
          { tab: 'permissions', label: 'Permissions' },
        ] as { tab: NamespaceTab; label: string }[])
      : []),
  ];
  const tab = search.tab ?? 'topics';
  const set = useSetSearch<NamespaceSearch>({ replace: true });
  return (
    <>
      <PageHeader
        title={`Namespace ${tenant}/${namespace}`}
        crumbs={[
          { label: 'Tenants', to: '/tenants' },
          { label: tenant, to: '/tenants/$tenant', params: { tenant } },
          { label: namespace },
        ]}
      />
      <Tabs tabs={tabs} current={tab} label="Namespace" />
      {tab === 'topics' ? <TopicList tenant={tenant} namespace={namespace} q={search.q} page={search.page} size={search.size} onSearch={set} /> : null}
      {tab === 'policies' ? <PoliciesPanel tenant={tenant} namespace={namespace} /> : null}
      {tab === 'permissions' ? <NamespacePermissions tenant={tenant} namespace={namespace} role={search.role} onRole={(role) => set({ role })} /> : null}
    </>
  );
}
