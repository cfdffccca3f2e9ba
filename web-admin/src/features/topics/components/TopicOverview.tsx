import { useState } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useNavigate } from '@tanstack/react-router';
import { Chart, shortBytes, useRolling } from '../../../components/Chart';
import { ConfirmDialog } from '../../../components/Dialog';
import { Curl } from '../../../components/Curl';
import { Tiles } from '../../../components/Layout';
import { ErrorNotice, Loading } from '../../../components/Notice';
import { send } from '../../../lib/api/client';
import type { TopicStats } from '../../../lib/api/types';
import { formatBytes, formatCount, formatRate, formatThroughput } from '../../../lib/format';
import { topicResource } from '../../../lib/permissions';
import { useAllowed } from '../../../lib/useAllowed';
import { deleteTopicSpec, topicKeys, updatePartitionsSpec, type TopicRef } from '../api';
import { STATS_REFRESH_MS, useTopicStats } from '../hooks';
import { durabilityText, replicasText } from '../durability';

function backlogOf(s: TopicStats): number {
  return Object.values(s.subscriptions ?? {}).reduce((a, sub) => a + sub.msgBacklog, 0);
}

function StatsCharts({ stats, at, label }: { stats: TopicStats; at: number; label: string }) {
  const rates = useRolling([stats.msgRateIn, stats.msgRateOut], at);
  const tput = useRolling([stats.msgThroughputIn, stats.msgThroughputOut], at);
  const backlog = useRolling([backlogOf(stats)], at);
  const storage = useRolling([stats.storageSize - stats.offloadedStorageSize, stats.offloadedStorageSize], at);
  return (
    <div className="charts">
      <Chart title={`Message rate, ${label} (msg/s)`} series={[{ label: 'in', color: '--chart-1' }, { label: 'out', color: '--chart-2' }]} data={rates} format={(v) => formatRate(v)} />
      <Chart title={`Throughput, ${label}`} series={[{ label: 'in', color: '--chart-1' }, { label: 'out', color: '--chart-2' }]} data={tput} format={formatThroughput} axis={shortBytes} />
      <Chart title={`Backlog, ${label}`} series={[{ label: 'messages', color: '--chart-3' }]} data={backlog} format={formatCount} />
      <Chart title={`Storage, ${label}`} series={[{ label: 'local disk', color: '--chart-1' }, { label: 'object store', color: '--chart-2' }]} data={storage} format={formatBytes} axis={shortBytes} />
    </div>
  );
}

function AddPartitions({ t, current }: { t: TopicRef; current: number }) {
  const qc = useQueryClient();
  const [n, setN] = useState(String(current + 1));
  const m = useMutation({
    mutationFn: () => send(updatePartitionsSpec(t, Number(n))),
    onSuccess: () => qc.invalidateQueries({ queryKey: topicKeys.detail(t) }),
  });
  return (
    <form
      className="inline"
      onSubmit={(e) => {
        e.preventDefault();
        m.mutate();
      }}
    >
      <div className="field">
        <label htmlFor="partition-count">Partitions (may only grow)</label>
        <input id="partition-count" type="number" min={current + 1} value={n} onChange={(e) => setN(e.target.value)} style={{ width: '7rem' }} />
      </div>
      <button type="submit" disabled={m.isPending || Number(n) <= current}>
        Add partitions
      </button>
      <div style={{ flexBasis: '100%' }}>
        <ErrorNotice error={m.error} action="Adding partitions" />
        <Curl spec={updatePartitionsSpec(t, Number(n))} label="add partitions" />
      </div>
    </form>
  );
}

export function TopicOverview({ t, partitions, partition, onPartition }: { t: TopicRef; partitions: number; partition?: number; onPartition: (p?: number) => void }) {
  const q = useTopicStats(t, partitions);
  const res = topicResource(t.tenant, t.namespace, t.topic);
  const { allowed } = useAllowed([
    { operation: 'UpdatePartitions', resource: res },
    { operation: 'DeleteTopic', resource: res },
  ]);
  const [deleting, setDeleting] = useState(false);
  const qc = useQueryClient();
  const navigate = useNavigate();
  const del = useMutation({
    mutationFn: () => send(deleteTopicSpec(t, partitions > 0)),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: topicKeys.list(t.tenant, t.namespace) });
      navigate({ to: '/tenants/$tenant/namespaces/$namespace', params: { tenant: t.tenant, namespace: t.namespace } });
    },
  });
  if (q.isPending) return <Loading what="Reading stats" />;
  if (q.error) return <ErrorNotice error={q.error} action="Reading stats" />;
  const total = q.data.total;
  const shown = partition !== undefined && q.data.partitions[partition] ? q.data.partitions[partition] : total;
  const subs = Object.keys(total.subscriptions ?? {});
  const replicated = Object.values(q.data.partitions ?? {}).some((p) => p.replicaPeers?.length);
  return (
    <div className="stack">
      <Tiles
        items={[
          { label: 'Partitions', value: partitions || 'not partitioned' },
          { label: 'Rate in', value: formatRate(total.msgRateIn) },
          { label: 'Rate out', value: formatRate(total.msgRateOut) },
          { label: 'Messages in', value: formatCount(total.msgInCounter) },
          { label: 'Subscriptions', value: subs.length },
          { label: 'Backlog', value: `${formatCount(backlogOf(total))} msg` },
          { label: 'Storage, local disk', value: formatBytes(total.storageSize - total.offloadedStorageSize) },
          { label: 'Storage, object store', value: formatBytes(total.offloadedStorageSize) },
          // What acknowledges a message: the broker's WAL (`local`), a committed object or replicas.
          { label: 'Durability', value: durabilityText(total) },
          ...(partitions === 0 && total.replicaPeers?.length ? [{ label: 'Replicas', value: replicasText(total) }] : []),
        ]}
      />
      {partitions > 0 ? (
        <div className="field" style={{ maxWidth: '16rem' }}>
          <label htmlFor="chart-partition">Charts of</label>
          <select id="chart-partition" value={partition ?? ''} onChange={(e) => onPartition(e.target.value === '' ? undefined : Number(e.target.value))}>
            <option value="">the whole topic</option>
            {Array.from({ length: partitions }, (_, i) => (
              <option key={i} value={i}>
                partition {i}
              </option>
            ))}
          </select>
        </div>
      ) : null}
      <StatsCharts key={partition ?? 'all'} stats={shown} at={q.dataUpdatedAt} label={partition !== undefined ? `partition ${partition}` : 'topic'} />
      <p className="muted">Updated every {STATS_REFRESH_MS / 1000} s.</p>
      {partitions > 0 ? (
        <>
          <h2>Partitions</h2>
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Partition</th>
                  <th scope="col" className="num">Rate in</th>
                  <th scope="col" className="num">Rate out</th>
                  <th scope="col" className="num">Backlog</th>
                  <th scope="col" className="num">Local</th>
                  <th scope="col" className="num">Object store</th>
                  {replicated ? <th scope="col">Replicas</th> : null}
                </tr>
              </thead>
              <tbody>
                {Object.entries(q.data.partitions).map(([i, s]) => (
                  <tr key={i}>
                    <td>{i}</td>
                    <td className="num">{formatRate(s.msgRateIn)}</td>
                    <td className="num">{formatRate(s.msgRateOut)}</td>
                    <td className="num">{formatCount(backlogOf(s))}</td>
                    <td className="num">{formatBytes(s.storageSize - s.offloadedStorageSize)}</td>
                    <td className="num">{formatBytes(s.offloadedStorageSize)}</td>
                    {replicated ? <td>{replicasText(s)}</td> : null}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      ) : null}
      <Curl
        spec={
          partitions > 0
            ? { method: 'GET', path: '/admin/v2/persistent/{tenant}/{namespace}/{topic}/partitioned-stats', params: { ...t }, query: { perPartition: true } }
            : { method: 'GET', path: '/admin/v2/persistent/{tenant}/{namespace}/{topic}/stats', params: { ...t } }
        }
        label="read stats"
      />
      {partitions > 0 && allowed('UpdatePartitions', res) ? (
        <>
          <h2>Partitions count</h2>
          <AddPartitions t={t} current={partitions} />
        </>
      ) : null}
      {allowed('DeleteTopic', res) ? (
        <div className="card stack">
          <h3>Delete the topic</h3>
          <div>
            <button type="button" className="danger" onClick={() => setDeleting(true)}>
              Delete topic {t.topic}
            </button>
          </div>
          <Curl spec={deleteTopicSpec(t, partitions > 0)} label="delete topic" />
        </div>
      ) : null}
      <ConfirmDialog open={deleting} title={`Delete topic ${t.topic}?`} confirmLabel="Delete topic" busy={del.isPending} onClose={() => setDeleting(false)} onConfirm={() => del.mutate()}>
        <p>
          This deletes {partitions > 0 ? `its ${partitions} partitions, ` : ''}
          {formatCount(total.msgInCounter)} messages received since load ({formatBytes(total.storageSize)} stored) and its {subs.length} subscription(s)
          {subs.length ? `: ${subs.join(', ')}` : ''}. Connected producers and consumers are disconnected.
        </p>
        <ErrorNotice error={del.error} action="Deleting the topic" />
      </ConfirmDialog>
    </div>
  );
}
