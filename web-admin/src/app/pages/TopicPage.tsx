import { useParams, useSearch } from '@tanstack/react-router';
import { useSetSearch } from '../../lib/useSetSearch';
import { PageHeader } from '../../components/Layout';
import { ErrorNotice, Loading } from '../../components/Notice';
import { Tabs } from '../../components/Tabs';
import { MessagesPanel, type MessagesState } from '../../features/messages';
import { TopicPermissions } from '../../features/permissions';
import { SubscriptionsPanel } from '../../features/subscriptions';
import { TopicOverview, TopicStorage, usePartitionCount, useTopicStats } from '../../features/topics';
import { type TopicSearch, type TopicTab } from '../../lib/search';
import { topicResource } from '../../lib/permissions';
import { useAllowed } from '../../lib/useAllowed';

export function TopicPage() {
  const { tenant, namespace, topic } = useParams({ strict: false }) as { tenant: string; namespace: string; topic: string };
  const search = useSearch({ strict: false }) as TopicSearch;
  const t = { tenant, namespace, topic };
  const res = topicResource(tenant, namespace, topic);
  const parts = usePartitionCount(t);
  const partitions = parts.data?.partitions;
  const { allowed } = useAllowed([
    { operation: 'GetTopicStats', resource: res },
    { operation: 'PeekMessages', resource: res },
    { operation: 'Read', resource: res },
    { operation: 'Produce', resource: res },
    { operation: 'GetInternalStats', resource: res },
    { operation: 'GetPermissions', resource: res },
  ]);
  const stats = useTopicStats(t, allowed('GetTopicStats', res) ? partitions : undefined);
  const tabs: { tab: TopicTab; label: string }[] = [
    { tab: 'overview', label: 'Overview' },
    { tab: 'subscriptions', label: 'Subscriptions' },
    ...(allowed('PeekMessages', res) || allowed('Read', res) || allowed('Produce', res) ? [{ tab: 'messages' as const, label: 'Messages' }] : []),
    ...(allowed('GetInternalStats', res) ? [{ tab: 'storage' as const, label: 'Storage' }] : []),
    ...(allowed('GetPermissions', res) ? [{ tab: 'permissions' as const, label: 'Permissions' }] : []),
  ];
  const tab = search.tab ?? 'overview';
  const set = useSetSearch<TopicSearch>({ replace: false });
  return (
    <>
      <PageHeader
        title={`Topic ${topic}`}
        crumbs={[
          { label: 'Tenants', to: '/tenants' },
          { label: tenant, to: '/tenants/$tenant', params: { tenant } },
          { label: namespace, to: '/tenants/$tenant/namespaces/$namespace', params: { tenant, namespace } },
          { label: topic },
        ]}
      >
        <p className="muted mono">
          persistent://{tenant}/{namespace}/{topic}
          {partitions ? ` (${partitions} partitions)` : ''}
        </p>
      </PageHeader>
      <Tabs tabs={tabs} current={tab} label="Topic" />
      {parts.isPending ? <Loading /> : null}
      <ErrorNotice error={parts.error} action="Reading the topic" />
      {partitions !== undefined ? (
        <>
          {tab === 'overview' ? <TopicOverview t={t} partitions={partitions} partition={search.partition} onPartition={(partition) => set({ partition })} /> : null}
          {tab === 'subscriptions' ? (
            stats.data ? (
              <SubscriptionsPanel t={t} subscriptions={stats.data.total.subscriptions ?? {}} partitioned={partitions > 0} />
            ) : (
              <>
                {stats.isPending ? <Loading /> : null}
                <ErrorNotice error={stats.error} action="Reading subscriptions" />
              </>
            )
          ) : null}
          {tab === 'messages' ? (
            <MessagesPanel t={t} partitions={partitions} state={search as MessagesState} onState={(s) => set(s as Partial<TopicSearch>)} canProduce={allowed('Produce', res)} />
          ) : null}
          {tab === 'storage' ? <TopicStorage t={t} partitions={partitions} /> : null}
          {tab === 'permissions' ? <TopicPermissions tenant={tenant} namespace={namespace} topic={topic} role={search.role} onRole={(role) => set({ role })} /> : null}
        </>
      ) : null}
    </>
  );
}
