import { useMemo, useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { ConfirmDialog } from '../../../components/Dialog';
import { Curl } from '../../../components/Curl';
import { ErrorNotice, Loading, Notice } from '../../../components/Notice';
import { send } from '../../../lib/api/client';
import type { BundleView, Takeover } from '../../../lib/api/types';
import { formatCount } from '../../../lib/format';
import { namespaceResource } from '../../../lib/permissions';
import { useAllowed } from '../../../lib/useAllowed';
import { clusterKeys, fetchBrokers, fetchBundles, takeoverSpec, unloadBundleSpec } from '../api';
import { parseBundle, summarizeTier, unavailableHeadline, type BundleRef } from '../tier';

export const TIER_REFRESH_MS = 5_000;
const OP = 'UnloadNamespace';

type Action = { kind: 'unload' | 'takeover'; row: BundleView; ref: BundleRef };

/** `tenant/namespace` of a `tenant/namespace/range` bundle name. */
const namespaceOf = (bundle: string) => bundle.slice(0, bundle.lastIndexOf('/'));

function useInvalidateTier(cluster: string) {
  const qc = useQueryClient();
  return () =>
    Promise.all([
      qc.invalidateQueries({ queryKey: clusterKeys.bundles(cluster) }),
      qc.invalidateQueries({ queryKey: clusterKeys.brokers(cluster) }),
    ]);
}

function UnloadDialog({ cluster, row, bundle, onClose }: { cluster: string; row: BundleView; bundle: BundleRef; onClose: () => void }) {
  const invalidate = useInvalidateTier(cluster);
  const spec = unloadBundleSpec(bundle);
  const m = useMutation({ mutationFn: () => send(spec), onSuccess: invalidate });
  return (
    <ConfirmDialog
      open
      title={`Unload ${row.bundle}`}
      confirmLabel={m.isSuccess ? 'Done' : 'Unload'}
      busy={m.isPending}
      onClose={onClose}
      onConfirm={() => (m.isSuccess ? onClose() : m.mutate())}
    >
      <Notice kind="warn">
        Hands the bundle over to another broker: {row.owner ?? 'its owner'} stops serving it, flushes and uploads the tail
        of its partitions and checkpoints their cursors, then the least-loaded live broker takes it. Clients of its topics
        reconnect; nothing is lost.
      </Notice>
      {m.isSuccess ? <Notice kind="ok">Unloaded. The table shows the new owner within {TIER_REFRESH_MS / 1000} s.</Notice> : null}
      <ErrorNotice error={m.error} action="Unloading the bundle" />
      <Curl spec={spec} label="unload bundle" />
    </ConfirmDialog>
  );
}

function TakeoverResult({ t }: { t: Takeover }) {
  return (
    <div className="stack" aria-label="Takeover result" role="group">
      <Notice kind="ok">
        {t.bundle} taken over from {t.previousOwner}: <strong>{t.newOwner}</strong> owns it now.
      </Notice>
      {t.partitions.length ? (
        <div className="table-wrap">
          <table>
            <caption className="sr-only">Where each partition continues</caption>
            <thead>
              <tr>
                <th scope="col">Partition</th>
                <th scope="col" className="num">
                  Continues from offset
                </th>
                <th scope="col" className="num">
                  Cursors rewound
                </th>
              </tr>
            </thead>
            <tbody>
              {t.partitions.map((p) => (
                <tr key={p.topic}>
                  <td className="mono">{p.topic}</td>
                  <td className="num">{formatCount(p.continuesFromOffset)}</td>
                  <td className="num">{formatCount(p.cursorsRewound)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p className="muted">No partition of the bundle had been stored.</p>
      )}
      <Notice kind="warn">
        <strong>May be lost: </strong>
        {t.mayLose}
      </Notice>
    </div>
  );
}

function TakeoverDialog({ cluster, row, bundle, onClose }: { cluster: string; row: BundleView; bundle: BundleRef; onClose: () => void }) {
  const invalidate = useInvalidateTier(cluster);
  const spec = takeoverSpec(cluster, bundle);
  const m = useMutation({ mutationFn: () => send<Takeover>(spec), onSuccess: invalidate });
  const owner = row.owner ?? 'the previous owner';
  return (
    <ConfirmDialog
      open
      title={`Force takeover of ${row.bundle}`}
      confirmLabel={m.isSuccess ? 'Done' : 'Take over and accept data loss'}
      busy={m.isPending}
      onClose={onClose}
      onConfirm={() => (m.isSuccess ? onClose() : m.mutate())}
    >
      {m.data ? (
        <TakeoverResult t={m.data} />
      ) : (
        <Notice kind="warn">
          <strong>Data loss.</strong> {owner} stopped renewing its lease while it held this bundle, so its partitions are
          not served. Taking over gives the bundle to a live broker now: each partition continues from the end of what the
          object store holds, and whatever {owner} acknowledged to producers but had not uploaded yet is lost. Subscriptions
          whose position was past that point are moved back to it. To lose nothing, restart {owner} on its volume instead.
        </Notice>
      )}
      <ErrorNotice error={m.error} action="Force takeover" />
      <Curl spec={spec} label="force takeover" />
    </ConfirmDialog>
  );
}

function UnavailableBanner({ unavailable, owners }: { unavailable: BundleView[]; owners: string[] }) {
  return (
    <div className="notice warn" role="alert">
      <strong>{unavailableHeadline(unavailable.length, owners.length)}</strong>
      {owners.length ? <> ({owners.join(', ')})</> : null}. Their partitions are not served until that broker returns, or
      until an operator forces a takeover.
      <ul>
        {unavailable.map((r) => (
          <li key={r.bundle}>
            <span className="mono">{r.bundle}</span>
            {r.owner ? <> held by {r.owner}</> : null}
          </li>
        ))}
      </ul>
    </div>
  );
}

/**
 * The broker tier of `cluster`: bundles per broker and the ownership table, refreshed every
 * few seconds, unavailable bundles first; unload and forced takeover where the API allows them.
 */
export function BrokerTier({ cluster }: { cluster: string }) {
  const bundles = useQuery({ queryKey: clusterKeys.bundles(cluster), queryFn: () => fetchBundles(cluster), refetchInterval: TIER_REFRESH_MS });
  const brokers = useQuery({ queryKey: clusterKeys.brokers(cluster), queryFn: () => fetchBrokers(cluster), refetchInterval: TIER_REFRESH_MS });
  const summary = useMemo(() => summarizeTier(bundles.data ?? [], brokers.data ?? []), [bundles.data, brokers.data]);
  // One check per namespace with a bundle, stable across refreshes while the names stay the same.
  const nsKey = [...new Set(summary.rows.flatMap((r) => (parseBundle(r.bundle) ? [namespaceOf(r.bundle)] : [])))].sort().join('\n');
  const checks = useMemo(() => (nsKey ? nsKey.split('\n').map((resource) => ({ operation: OP, resource })) : []), [nsKey]);
  const { allowed } = useAllowed(checks);
  const [action, setAction] = useState<Action | null>(null);

  if (!bundles.data) {
    return bundles.error ? <ErrorNotice error={bundles.error} action="Reading the bundle ownership" /> : <Loading what="Reading the bundle ownership" />;
  }
  if (bundles.data.length === 0) {
    return <p className="muted">Single broker: the tier is off. This broker serves every bundle itself.</p>;
  }
  const may = (b: BundleRef | null): b is BundleRef => !!b && allowed(OP, namespaceResource(b.tenant, b.namespace));
  const anyAction = summary.rows.some((r) => may(parseBundle(r.bundle)));
  return (
    <div className="stack">
      {summary.unavailable.length ? <UnavailableBanner unavailable={summary.unavailable} owners={summary.deadOwners} /> : null}
      {/* A failed refresh keeps the last table on screen, under the reason. */}
      <ErrorNotice error={bundles.error} action="Refreshing the bundle ownership" />
      <ErrorNotice error={brokers.error} action="Listing the live brokers" />
      <div className="table-wrap">
        <table>
          <caption className="sr-only">Bundles owned per broker</caption>
          <thead>
            <tr>
              <th scope="col">Broker</th>
              <th scope="col">Lease</th>
              <th scope="col" className="num">
                Bundles owned
              </th>
            </tr>
          </thead>
          <tbody>
            {summary.brokers.map((b) => (
              <tr key={b.broker}>
                <td className="mono">{b.broker}</td>
                <td>{b.live ? <span className="badge ok">live</span> : <span className="badge danger">expired</span>}</td>
                <td className="num">{formatCount(b.owned)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div className="table-wrap">
        <table>
          <caption className="sr-only">Bundle ownership</caption>
          <thead>
            <tr>
              <th scope="col">Bundle</th>
              <th scope="col">State</th>
              <th scope="col">Owner</th>
              <th scope="col" className="num">
                Epoch
              </th>
              {anyAction ? <th scope="col">Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {summary.rows.map((r) => {
              const b = parseBundle(r.bundle);
              const ok = may(b);
              return (
                <tr key={r.bundle}>
                  <td className="mono">{r.bundle}</td>
                  <td>
                    {r.state}
                    {r.unavailable ? (
                      <>
                        {' '}
                        <span className="badge danger">unavailable</span>
                      </>
                    ) : null}
                  </td>
                  <td className="mono">{r.owner ?? '—'}</td>
                  <td className="num">{r.epoch}</td>
                  {anyAction ? (
                    <td>
                      {ok && r.unavailable ? (
                        <button type="button" className="small danger" aria-label={`Force takeover of ${r.bundle}`} onClick={() => setAction({ kind: 'takeover', row: r, ref: b })}>
                          Force takeover
                        </button>
                      ) : ok && r.state === 'owned' ? (
                        <button type="button" className="small" aria-label={`Unload ${r.bundle}`} onClick={() => setAction({ kind: 'unload', row: r, ref: b })}>
                          Unload
                        </button>
                      ) : null}
                    </td>
                  ) : null}
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <p className="muted">
        {formatCount(summary.rows.length)} bundles, updated every {TIER_REFRESH_MS / 1000} s. An unavailable bundle is held by a
        broker whose lease expired: restart that broker on its volume to lose nothing.
      </p>
      {action?.kind === 'unload' ? <UnloadDialog cluster={cluster} row={action.row} bundle={action.ref} onClose={() => setAction(null)} /> : null}
      {action?.kind === 'takeover' ? <TakeoverDialog cluster={cluster} row={action.row} bundle={action.ref} onClose={() => setAction(null)} /> : null}
    </div>
  );
}
