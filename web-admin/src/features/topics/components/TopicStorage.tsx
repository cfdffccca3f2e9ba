import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Curl } from '../../../components/Curl';
import { ErrorNotice, Loading, Notice } from '../../../components/Notice';
import { send } from '../../../lib/api/client';
import type { InternalStats } from '../../../lib/api/types';
import { formatBytes, formatCount, formatTime } from '../../../lib/format';
import { topicResource } from '../../../lib/permissions';
import { useAllowed } from '../../../lib/useAllowed';
import {
  fetchInternalStats,
  fetchLastMessageId,
  fetchOffloadStatus,
  fetchPartitionedInternalStats,
  partitionName,
  topicKeys,
  triggerOffloadSpec,
  type TopicRef,
} from '../api';

function Segments({ stats }: { stats: InternalStats }) {
  return (
    <div className="table-wrap">
      <table>
        <thead>
          <tr>
            <th scope="col">Segment (ledger id)</th>
            <th scope="col" className="num">Entries</th>
            <th scope="col" className="num">Size</th>
            <th scope="col">Tier</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {stats.ledgers.map((l, i) => (
            <tr key={l.ledgerId}>
              <td className="mono">{l.ledgerId}</td>
              <td className="num">{formatCount(l.entries)}</td>
              <td className="num">{formatBytes(l.size)}</td>
              <td>
                {l.offloaded ? <span className="badge set">object store</span> : <span className="badge">local disk</span>}
                {i === stats.ledgers.length - 1 ? <span className="badge ok"> open</span> : null}
              </td>
              <td>{formatTime(l.timestamp)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Offload of one partition (or a non-partitioned topic): status and the trigger. */
function Offload({ t, canOffload }: { t: TopicRef; canOffload: boolean }) {
  const qc = useQueryClient();
  const status = useQuery({ queryKey: topicKeys.offload(t), queryFn: () => fetchOffloadStatus(t), refetchInterval: (q) => (q.state.data?.status === 'RUNNING' ? 1000 : 10_000), enabled: canOffload });
  const m = useMutation({
    mutationFn: async () => send(triggerOffloadSpec(t, await fetchLastMessageId(t))),
    onSuccess: () => qc.invalidateQueries({ queryKey: topicKeys.detail(t) }),
  });
  if (!canOffload) return null;
  const s = status.data;
  return (
    <div className="row">
      <span>
        Offload:{' '}
        <span className={`badge ${s?.status === 'ERROR' ? 'danger' : s?.status === 'SUCCESS' ? 'ok' : ''}`}>{s?.status ?? '…'}</span>
        {s?.lastError ? <span className="muted"> {s.lastError}</span> : null}
      </span>
      <button type="button" className="small" disabled={m.isPending || s?.status === 'RUNNING'} onClick={() => m.mutate()} aria-label={`Offload sealed segments of ${t.topic}`}>
        Offload sealed segments
      </button>
      <ErrorNotice error={m.error ?? status.error} action="Offload" />
      <Curl spec={[{ method: 'GET', path: '/admin/v2/persistent/{tenant}/{namespace}/{topic}/lastMessageId', params: { ...t } }, triggerOffloadSpec(t, { ledgerId: 0, entryId: 0, partitionIndex: -1 })]} label={`offload ${t.topic} (body: the last message id)`} />
    </div>
  );
}

export function TopicStorage({ t, partitions }: { t: TopicRef; partitions: number }) {
  const q = useQuery({
    queryKey: topicKeys.internal(t),
    refetchInterval: 5_000,
    queryFn: async (): Promise<[string, InternalStats][]> =>
      partitions > 0 ? Object.entries((await fetchPartitionedInternalStats(t)).partitions).sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true })) : [[t.topic, await fetchInternalStats(t)]],
  });
  const { allowed } = useAllowed([{ operation: 'OffloadTopic', resource: topicResource(t.tenant, t.namespace, t.topic) }]);
  if (q.isPending) return <Loading what="Reading internal stats" />;
  if (q.error) return <ErrorNotice error={q.error} action="Reading internal stats" />;
  return (
    <div className="stack">
      <Notice>
        Each partition's log is a sequence of segments (Pulsar's ledgers). Sealed segments move to the object store under the namespace's offload policy; the open segment
        is always on local disk.
      </Notice>
      {q.data.map(([name, s], i) => {
        const local = name.slice(name.lastIndexOf('/') + 1);
        return (
          <section key={name} className="card stack" aria-label={`Segments of ${local}`}>
            <h3>{local}</h3>
            <p className="muted">
              {formatCount(s.numberOfEntries)} entries, {formatBytes(s.totalSize)}, last entry {s.lastConfirmedEntry}
            </p>
            <Segments stats={s} />
            <Offload t={{ ...t, topic: partitions > 0 ? partitionName(t.topic, i) : t.topic }} canOffload={allowed('OffloadTopic', topicResource(t.tenant, t.namespace, t.topic))} />
          </section>
        );
      })}
      <Curl
        spec={{ method: 'GET', path: partitions > 0 ? '/admin/v2/persistent/{tenant}/{namespace}/{topic}/partitioned-internalStats' : '/admin/v2/persistent/{tenant}/{namespace}/{topic}/internalStats', params: { ...t } }}
        label="read internal stats"
      />
    </div>
  );
}
