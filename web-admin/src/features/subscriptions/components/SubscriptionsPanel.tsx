import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { ConfirmDialog } from '../../../components/Dialog';
import { Curl } from '../../../components/Curl';
import { ErrorNotice, Notice } from '../../../components/Notice';
import { get, send, type RequestSpec } from '../../../lib/api/client';
import type { BrowsePage, SubscriptionStats } from '../../../lib/api/types';
import { formatCount, formatRate, formatTime } from '../../../lib/format';
import { messageOffset, parseMessageIdText } from '../../../lib/messageId';
import { topicResource } from '../../../lib/permissions';
import { toLocalInput } from '../../../lib/search';
import { useAllowed } from '../../../lib/useAllowed';
import {
  clearBacklogSpec,
  createSubscriptionSpec,
  describeEffect,
  expireSpec,
  resetToIdSpec,
  resetToTimeSpec,
  skipSpec,
  unsubscribeSpec,
  type SubAction,
  type TopicRef,
} from '../api';

const ACTIONS: { action: SubAction; label: string; op: string }[] = [
  { action: 'skip', label: 'Skip messages', op: 'SkipMessages' },
  { action: 'clear', label: 'Clear backlog', op: 'SkipMessages' },
  { action: 'resetTime', label: 'Reset cursor to a time', op: 'ResetCursor' },
  { action: 'resetId', label: 'Reset cursor to a message id', op: 'ResetCursor' },
  { action: 'expire', label: 'Expire messages', op: 'ExpireMessages' },
  { action: 'unsubscribe', label: 'Unsubscribe', op: 'DeleteSubscription' },
];

const offsetOf = (id: string) => {
  const m = parseMessageIdText(id);
  return m ? messageOffset(m) : null;
};

/** Backlog after moving a non-partitioned topic's cursor to `from` (messages from there to the last). */
async function estimateBacklog(t: TopicRef, from: string): Promise<number | null> {
  const p = { tenant: t.tenant, namespace: t.namespace, topic: t.topic };
  const [page, last] = await Promise.all([
    get<BrowsePage>('/admin/v2/persistent/{tenant}/{namespace}/{topic}/messages', p, { from, limit: 1 }),
    get<{ ledgerId: number; entryId: number; batchIndex?: number }>('/admin/v2/persistent/{tenant}/{namespace}/{topic}/lastMessageId', p),
  ]);
  if (last.ledgerId < 0) return 0;
  const first = page.messages[0] ? offsetOf(page.messages[0].messageId) : null;
  if (first === null) return 0;
  return Math.max(0, messageOffset(last) - first + 1);
}

function ActionDialog({ t, sub, stats, action, partitioned, onClose }: { t: TopicRef; sub: string; stats: SubscriptionStats; action: SubAction; partitioned: boolean; onClose: () => void }) {
  const qc = useQueryClient();
  const [n, setN] = useState('10');
  const [time, setTime] = useState(() => toLocalInput(Date.now() - 3600_000));
  const [id, setId] = useState('');
  const [seconds, setSeconds] = useState('3600');
  const [done, setDone] = useState<string | null>(null);
  const ms = Date.parse(time);
  const parsedId = parseMessageIdText(id);
  const from = action === 'resetTime' && Number.isFinite(ms) ? `time:${ms}` : action === 'resetId' && parsedId ? id.trim() : null;
  const estimate = useQuery({
    queryKey: ['subscriptions', 'estimate', t.tenant, t.namespace, t.topic, from],
    queryFn: () => estimateBacklog(t, from!),
    enabled: !!from && !partitioned,
  });
  const spec: RequestSpec | null =
    action === 'skip'
      ? skipSpec(t, sub, Number(n))
      : action === 'clear'
        ? clearBacklogSpec(t, sub)
        : action === 'resetTime'
          ? Number.isFinite(ms)
            ? resetToTimeSpec(t, sub, ms)
            : null
          : action === 'resetId'
            ? parsedId
              ? resetToIdSpec(t, sub, parsedId)
              : null
            : action === 'expire'
              ? expireSpec(t, sub, Number(seconds))
              : unsubscribeSpec(t, sub);
  const before = stats.msgBacklog;
  const m = useMutation({
    mutationFn: () => send(spec!),
    onSuccess: async () => {
      await qc.invalidateQueries({ queryKey: ['topics', 'detail', t.tenant, t.namespace, t.topic] });
      setDone(action === 'unsubscribe' ? `Subscription ${sub} deleted.` : `Done. The backlog was ${formatCount(before)}; the table shows the new value.`);
    },
  });
  const label = ACTIONS.find((a) => a.action === action)!.label;
  const effect = describeEffect(action, before, {
    n: Number(n),
    time: ms,
    id,
    seconds: Number(seconds),
    consumers: stats.consumers?.length ?? 0,
    estimate: partitioned ? null : (estimate.data ?? null),
  });
  return (
    <ConfirmDialog open title={`${label}: ${sub}`} confirmLabel={done ? 'Done' : label} busy={m.isPending || !spec} onClose={onClose} onConfirm={() => (done ? onClose() : m.mutate())}>
      {action === 'skip' ? (
        <div className="field">
          <label htmlFor="skip-n">Messages to skip</label>
          <input id="skip-n" type="number" min={1} value={n} onChange={(e) => setN(e.target.value)} />
        </div>
      ) : null}
      {action === 'resetTime' ? (
        <div className="field">
          <label htmlFor="reset-time">Reset to publish time (local)</label>
          <input id="reset-time" type="datetime-local" step={1} value={time} onChange={(e) => setTime(e.target.value)} />
        </div>
      ) : null}
      {action === 'resetId' ? (
        <div className="field">
          <label htmlFor="reset-id">Message id (ledgerId:entryId[:partition[:batchIndex]])</label>
          <input id="reset-id" value={id} onChange={(e) => setId(e.target.value)} placeholder="0:42:-1" aria-invalid={!!id && !parsedId} />
        </div>
      ) : null}
      {action === 'expire' ? (
        <div className="field">
          <label htmlFor="expire-seconds">Expire messages older than (seconds)</label>
          <input id="expire-seconds" type="number" min={0} value={seconds} onChange={(e) => setSeconds(e.target.value)} />
        </div>
      ) : null}
      <Notice kind="warn">{effect}</Notice>
      {done ? <Notice kind="ok">{done}</Notice> : null}
      <ErrorNotice error={m.error} action={label} />
      {spec ? <Curl spec={spec} label={label.toLowerCase()} /> : null}
    </ConfirmDialog>
  );
}

function CreateSubscription({ t }: { t: TopicRef }) {
  const qc = useQueryClient();
  const [name, setName] = useState('');
  const [from, setFrom] = useState<'earliest' | 'latest'>('latest');
  const m = useMutation({
    mutationFn: () => send(createSubscriptionSpec(t, name, from)),
    onSuccess: () => {
      setName('');
      qc.invalidateQueries({ queryKey: ['topics', 'detail', t.tenant, t.namespace, t.topic] });
    },
  });
  return (
    <form
      className="inline card"
      onSubmit={(e) => {
        e.preventDefault();
        m.mutate();
      }}
    >
      <div className="field">
        <label htmlFor="new-sub">New subscription</label>
        <input id="new-sub" required value={name} onChange={(e) => setName(e.target.value.trim())} />
      </div>
      <div className="field">
        <label htmlFor="new-sub-from">Starting at</label>
        <select id="new-sub-from" value={from} onChange={(e) => setFrom(e.target.value as 'earliest' | 'latest')}>
          <option value="latest">the next message (latest)</option>
          <option value="earliest">the first retained message (earliest)</option>
        </select>
      </div>
      <button type="submit" disabled={!name || m.isPending}>
        Create subscription
      </button>
      <div style={{ flexBasis: '100%' }}>
        <ErrorNotice error={m.error} action="Creating the subscription" />
        <Curl spec={createSubscriptionSpec(t, name || '{subscription}', from)} label="create subscription" />
      </div>
    </form>
  );
}

export function SubscriptionsPanel({ t, subscriptions, partitioned }: { t: TopicRef; subscriptions: Record<string, SubscriptionStats>; partitioned: boolean }) {
  const res = topicResource(t.tenant, t.namespace, t.topic);
  const names = Object.keys(subscriptions).sort();
  const checks = [
    { operation: 'CreateSubscription', resource: res, subscription: '*' },
    ...names.filter((s) => subscriptions[s].isDurable !== false).flatMap((s) => ACTIONS.map((a) => ({ operation: a.op, resource: res, subscription: s }))),
  ];
  const { allowed } = useAllowed(checks);
  const [open, setOpen] = useState<{ sub: string; action: SubAction } | null>(null);
  return (
    <div className="stack">
      {allowed('CreateSubscription', res, '*') ? <CreateSubscription t={t} /> : null}
      {names.length === 0 ? <Notice>No subscriptions.</Notice> : null}
      {names.map((name) => {
        const s = subscriptions[name];
        // Readers (the console's tail, WebSocket readers) hold a non-durable subscription that
        // ends with their connection: nothing to administer.
        const reader = s.isDurable === false;
        const actions = reader ? [] : ACTIONS.filter((a) => allowed(a.op, res, name));
        return (
          <section key={name} className="card stack" aria-label={`Subscription ${name}`}>
            <div className="row" style={{ justifyContent: 'space-between' }}>
              <h3 style={{ margin: 0 }}>
                {name} <span className="badge">{reader ? 'reader (non-durable)' : s.type}</span>
              </h3>
              <div className="row" role="group" aria-label={`Actions on ${name}`}>
                {actions.map((a) => (
                  <button key={a.action} type="button" className={`small ${a.action === 'unsubscribe' || a.action === 'clear' ? 'danger' : ''}`} onClick={() => setOpen({ sub: name, action: a.action })} aria-label={`${a.label} on ${name}`}>
                    {a.label}
                  </button>
                ))}
              </div>
            </div>
            <dl className="tiles" style={{ margin: 0 }}>
              {[
                ['Backlog', formatCount(s.msgBacklog)],
                ['Unacked', formatCount(s.unackedMessages)],
                ['Delayed', formatCount(s.msgDelayed)],
                ['Rate out', formatRate(s.msgRateOut)],
                ['Redelivery rate', formatRate(s.msgRateRedeliver)],
                ['Expiry rate', formatRate(s.msgRateExpired)],
                ['Last acked', s.lastAckedTimestamp ? formatTime(s.lastAckedTimestamp) : '—'],
              ].map(([k, v]) => (
                <div className="tile" key={k}>
                  <dt>{k}</dt>
                  <dd data-testid={k === 'Backlog' ? `backlog-${name}` : undefined}>{v}</dd>
                </div>
              ))}
            </dl>
            {Object.keys(s.subscriptionProperties ?? {}).length ? (
              <p className="muted" data-testid={`properties-${name}`}>
                Properties:{' '}
                {Object.entries(s.subscriptionProperties ?? {}).map(([k, v]) => (
                  <span key={k} className="badge mono">
                    {k}={v}
                  </span>
                ))}
              </p>
            ) : null}
            {s.consumers?.length ? (
              <div className="table-wrap">
                <table>
                  <caption className="sr-only">Consumers of {name}</caption>
                  <thead>
                    <tr>
                      <th scope="col">Consumer</th>
                      <th scope="col">Address</th>
                      <th scope="col">Connected since</th>
                      <th scope="col">Client</th>
                      <th scope="col" className="num">Unacked</th>
                      <th scope="col" className="num">Permits</th>
                    </tr>
                  </thead>
                  <tbody>
                    {s.consumers.map((c, i) => (
                      <tr key={i}>
                        <td>{c.consumerName}</td>
                        <td className="mono">{c.address}</td>
                        <td>{formatTime(c.connectedSince)}</td>
                        <td className="mono">{c.clientVersion ?? '—'}</td>
                        <td className="num">{formatCount(c.unackedMessages)}</td>
                        <td className="num">{formatCount(c.availablePermits ?? 0)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            ) : (
              <p className="muted">No consumer connected.</p>
            )}
          </section>
        );
      })}
      {open ? <ActionDialog t={t} sub={open.sub} stats={subscriptions[open.sub]} action={open.action} partitioned={partitioned} onClose={() => setOpen(null)} /> : null}
    </div>
  );
}
