import { useEffect, useRef, useState } from 'react';
import { Notice } from '../../../components/Notice';
import { getToken } from '../../../lib/session';
import { formatCount, formatRate } from '../../../lib/format';
import type { PayloadFormat } from '../../../lib/payload';
import { readerUrl, TailReader, type TailMessage, type TailState, type TailStats } from '../../../lib/wsReader';
import { hasFilter, matchesFilter, type MessageFilter, type TopicRef } from '../api';
import { FilterBar } from './FilterBar';
import { FormatPicker, MessageDetail } from './MessageDetail';
import { MessageList } from './MessageList';

/** Messages kept on screen (newest first); older ones scroll out. */
export const TAIL_KEEP = 500;
const CAPS = [20, 100, 500];

/**
 * The live tail over the WebSocket reader: shows at most `cap` messages a second and counts what
 * it skips beyond that; pause holds the reader's place, resume continues from it.
 */
export function TailView({ t, filter, format, onFilter, onFormat }: { t: TopicRef; filter: MessageFilter; format: PayloadFormat; onFilter: (f: MessageFilter) => void; onFormat: (f: PayloadFormat) => void }) {
  const [messages, setMessages] = useState<TailMessage[]>([]);
  const [stats, setStats] = useState<TailStats>({ received: 0, shown: 0, skipped: 0, rate: 0 });
  const [state, setState] = useState<TailState>('closed');
  const [reason, setReason] = useState<string | undefined>();
  const [cap, setCap] = useState(100);
  const [open, setOpen] = useState<string | undefined>();
  const reader = useRef<TailReader | null>(null);
  const filterRef = useRef(filter);
  filterRef.current = filter;

  const start = (from: 'earliest' | 'latest') => {
    reader.current?.dispose();
    setMessages([]);
    const token = getToken();
    const r = new TailReader(
      { earliest: readerUrl(window.location.origin, t, 'earliest', token), latest: readerUrl(window.location.origin, t, 'latest', token) },
      {
        onMessages(batch, st) {
          setStats(st);
          if (!batch.length) return;
          const kept = batch.filter((m) => matchesFilter(m, filterRef.current));
          if (kept.length) setMessages((prev) => [...kept.reverse(), ...prev].slice(0, TAIL_KEEP));
        },
        onState(s, why) {
          setState(s);
          setReason(why);
        },
      },
      cap,
    );
    reader.current = r;
    r.start(from);
  };

  useEffect(() => () => reader.current?.dispose(), []);
  useEffect(() => reader.current?.setCap(cap), [cap]);

  const live = state === 'live' || state === 'connecting';
  const shownMsg = messages.find((m) => m.messageId === open);
  return (
    <div className="stack">
      <div className="row">
        <button type="button" className="primary" onClick={() => start('latest')} disabled={live}>
          Start tail
        </button>
        <button type="button" onClick={() => start('earliest')} disabled={live}>
          Tail from earliest
        </button>
        {state === 'paused' ? (
          <button type="button" onClick={() => reader.current?.resume()}>
            Resume
          </button>
        ) : (
          <button type="button" onClick={() => reader.current?.pause()} disabled={state !== 'live'}>
            Pause
          </button>
        )}
        <button type="button" onClick={() => reader.current?.stop()} disabled={state === 'closed' || state === 'error'}>
          Stop
        </button>
        <div className="field">
          <label htmlFor="tail-cap">Show at most</label>
          <select id="tail-cap" value={cap} onChange={(e) => setCap(Number(e.target.value))}>
            {CAPS.map((c) => (
              <option key={c} value={c}>
                {c} msg/s
              </option>
            ))}
          </select>
        </div>
        <FormatPicker value={format} onChange={onFormat} />
      </div>
      <FilterBar value={filter} onChange={onFilter} />
      <p role="status" aria-live="polite" data-testid="tail-status">
        Tail {state}
        {reason && state === 'error' ? `: ${reason}` : ''}. Received {formatCount(stats.received)} ({formatRate(stats.rate)}), shown {formatCount(stats.shown)}
        {stats.skipped ? `, skipped ${formatCount(stats.skipped)} beyond ${cap} msg/s` : ''}
        {hasFilter(filter) ? ' (filtered)' : ''}.
      </p>
      {stats.skipped ? <Notice kind="warn">The topic runs faster than the tail shows: {formatCount(stats.skipped)} message(s) were counted but not shown. Use Browse to read every message.</Notice> : null}
      {messages.length ? <MessageList messages={messages} label="Live messages" selected={open} onSelect={setOpen} /> : <p className="muted">No message yet.</p>}
      {shownMsg ? <MessageDetail m={shownMsg} format={format} onClose={() => setOpen(undefined)} /> : null}
      <p className="muted">
        The tail is a Pulsar WebSocket reader: <code className="mono">/ws/v2/reader/persistent/{t.tenant}/{t.namespace}/{t.topic}?messageId=latest</code>. It creates no durable subscription.
      </p>
    </div>
  );
}
