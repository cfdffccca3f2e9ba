import { useQuery } from '@tanstack/react-query';
import { Link } from '@tanstack/react-router';
import { Chart, shortBytes, useRolling } from '../../../components/Chart';
import { PageHeader, Tiles } from '../../../components/Layout';
import { ErrorNotice, Loading, Notice } from '../../../components/Notice';
import { formatBytes, formatCount, formatRate, formatThroughput } from '../../../lib/format';
import { useAllowed } from '../../../lib/useAllowed';
import { clusterKeys, fetchBrokers, fetchClusters, fetchHealth, fetchLoadReport } from '../api';
import { useRuntimeConfig } from '../hooks';
import { GoTo } from '../../../components/GoTo';
import { BrokerTier } from './BrokerTier';

const CHECKS = [{ operation: 'Metrics', resource: '' }];
const REFRESH_MS = 3_000;

function Brokers({ cluster }: { cluster: string }) {
  const q = useQuery({ queryKey: clusterKeys.brokers(cluster), queryFn: () => fetchBrokers(cluster) });
  if (q.error) return <ErrorNotice error={q.error} />;
  return <span className="mono">{q.data ? q.data.join(', ') : '…'}</span>;
}

function Totals() {
  const q = useQuery({ queryKey: clusterKeys.loadReport(), queryFn: fetchLoadReport, refetchInterval: REFRESH_MS });
  const r = q.data;
  const rates = useRolling(r ? [r.msgRateIn ?? 0, r.msgRateOut ?? 0] : undefined, q.dataUpdatedAt);
  const tput = useRolling(r ? [r.msgThroughputIn ?? 0, r.msgThroughputOut ?? 0] : undefined, q.dataUpdatedAt);
  const backlog = useRolling(r ? [r.msgBacklog ?? 0] : undefined, q.dataUpdatedAt);
  const storage = useRolling(r ? [r.localStorageSize ?? 0, r.offloadedStorageSize ?? 0] : undefined, q.dataUpdatedAt);
  if (q.error) return <ErrorNotice error={q.error} action="Reading the broker totals" />;
  if (!r) return <Loading what="Reading the broker totals" />;
  return (
    <>
      <Tiles
        items={[
          { label: 'Topics loaded', value: formatCount(r.numTopics) },
          { label: 'Partitions', value: formatCount(r.numPartitions) },
          { label: 'Subscriptions', value: formatCount(r.numSubscriptions) },
          { label: 'Consumers', value: formatCount(r.numConsumers) },
          { label: 'Rate in', value: formatRate(r.msgRateIn) },
          { label: 'Rate out', value: formatRate(r.msgRateOut) },
          { label: 'Backlog', value: `${formatCount(r.msgBacklog)} msg` },
          { label: 'Storage, local disk', value: formatBytes(r.localStorageSize) },
          { label: 'Storage, object store', value: formatBytes(r.offloadedStorageSize) },
        ]}
      />
      <div className="charts">
        <Chart title="Message rate (msg/s)" series={[{ label: 'in', color: '--chart-1' }, { label: 'out', color: '--chart-2' }]} data={rates} format={(v) => formatRate(v)} />
        <Chart title="Throughput" series={[{ label: 'in', color: '--chart-1' }, { label: 'out', color: '--chart-2' }]} data={tput} format={formatThroughput} axis={shortBytes} />
        <Chart title="Backlog (messages)" series={[{ label: 'backlog', color: '--chart-3' }]} data={backlog} format={formatCount} />
        <Chart title="Storage" series={[{ label: 'local disk', color: '--chart-1' }, { label: 'object store', color: '--chart-2' }]} data={storage} format={formatBytes} axis={shortBytes} />
      </div>
      <p className="muted">Updated every {REFRESH_MS / 1000} s. Totals of this broker's loaded topics.</p>
    </>
  );
}

export function OverviewPage() {
  const clusters = useQuery({ queryKey: clusterKeys.clusters(), queryFn: fetchClusters });
  const health = useQuery({ queryKey: clusterKeys.health(), queryFn: fetchHealth, refetchInterval: 10_000 });
  const runtime = useRuntimeConfig();
  const { allowed, loading } = useAllowed(CHECKS);
  // The bundle table is this broker's cluster's (another cluster's answers 404).
  const localCluster = runtime.data?.clusterName ?? (clusters.data?.length === 1 ? clusters.data[0] : undefined);
  return (
    <>
      <PageHeader title="Cluster overview" />
      <Tiles
        items={[
          { label: 'Cluster', value: runtime.data?.clusterName ?? clusters.data?.join(', ') ?? '…' },
          {
            label: 'Health',
            value: health.error ? (
              <span className="badge danger">unhealthy</span>
            ) : health.data ? (
              <span className="badge ok">{String(health.data)}</span>
            ) : (
              '…'
            ),
          },
          { label: 'Authentication', value: runtime.data ? (runtime.data.authenticationEnabled === 'true' ? 'on' : 'off') : '…' },
        ]}
      />
      <ErrorNotice error={clusters.error} action="Listing clusters" />
      <h2>Brokers</h2>
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Cluster</th>
              <th scope="col">Active brokers</th>
            </tr>
          </thead>
          <tbody>
            {(clusters.data ?? []).map((c) => (
              <tr key={c}>
                <td>{c}</td>
                <td>
                  <Brokers cluster={c} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>Broker tier</h2>
      {localCluster ? <BrokerTier cluster={localCluster} /> : runtime.error ? <ErrorNotice error={runtime.error} action="Reading the cluster name" /> : <Loading />}
      <h2>Totals</h2>
      {loading ? (
        <Loading />
      ) : allowed('Metrics', '') ? (
        <Totals />
      ) : (
        <Notice>
          Cluster-wide totals cover every tenant and need a superuser. Your tenants and topics have their own live stats:{' '}
          <Link to="/tenants">see your tenants</Link>.
        </Notice>
      )}
      <h2>Go to</h2>
      <GoTo />
    </>
  );
}
