import { useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import { Curl } from '../../../components/Curl';
import { ErrorNotice, Loading, Notice } from '../../../components/Notice';
import { describePosition, positionOf, type PositionKind } from '../../../lib/search';
import type { PayloadFormat } from '../../../lib/payload';
import { BROWSE_LIMIT, browseSpec, fetchBrowse, hasFilter, matchesFilter, messageKeys, type MessageFilter, type TopicRef } from '../api';
import { FilterBar } from './FilterBar';
import { FormatPicker, MessageDetail } from './MessageDetail';
import { MessageList } from './MessageList';

export interface BrowseState extends MessageFilter {
  from?: string;
  format?: PayloadFormat;
  msg?: string;
  partition?: number;
}

function PositionForm({ from, partitions, partition, onGo }: { from?: string; partitions: number; partition?: number; onGo: (from: string, partition?: number) => void }) {
  const initial = describePosition(from);
  const [kind, setKind] = useState<PositionKind>(initial.kind);
  const [value, setValue] = useState(initial.value || (initial.kind === 'latest' ? '50' : ''));
  const [part, setPart] = useState(partition === undefined ? '' : String(partition));
  const pos = positionOf(kind, value);
  return (
    <form
      className="inline card"
      aria-label="Read from a position"
      onSubmit={(e) => {
        e.preventDefault();
        if (pos) onGo(pos, part === '' ? undefined : Number(part));
      }}
    >
      <div className="field">
        <label htmlFor="browse-kind">Read from</label>
        <select
          id="browse-kind"
          value={kind}
          onChange={(e) => {
            const k = e.target.value as PositionKind;
            setKind(k);
            setValue(k === 'latest' ? '50' : '');
          }}
        >
          <option value="earliest">the earliest message</option>
          <option value="latest">the latest N messages</option>
          <option value="id">a message id</option>
          <option value="time">a publish time</option>
        </select>
      </div>
      {kind === 'latest' ? (
        <div className="field">
          <label htmlFor="browse-n">N</label>
          <input id="browse-n" type="number" min={0} max={10000} value={value} onChange={(e) => setValue(e.target.value)} style={{ width: '6rem' }} />
        </div>
      ) : null}
      {kind === 'id' ? (
        <div className="field">
          <label htmlFor="browse-id">Message id</label>
          <input id="browse-id" value={value} onChange={(e) => setValue(e.target.value)} placeholder="ledgerId:entryId[:partition[:batchIndex]]" aria-invalid={!!value && !pos} />
        </div>
      ) : null}
      {kind === 'time' ? (
        <div className="field">
          <label htmlFor="browse-time">Publish time (local)</label>
          <input id="browse-time" type="datetime-local" step={1} value={value} onChange={(e) => setValue(e.target.value)} />
        </div>
      ) : null}
      {partitions > 0 ? (
        <div className="field">
          <label htmlFor="browse-partition">Partition</label>
          <select id="browse-partition" value={part} onChange={(e) => setPart(e.target.value)}>
            <option value="">all (merged by publish time)</option>
            {Array.from({ length: partitions }, (_, i) => (
              <option key={i} value={i}>
                {i}
              </option>
            ))}
          </select>
        </div>
      ) : null}
      <button type="submit" className="primary" disabled={!pos}>
        Read messages
      </button>
    </form>
  );
}

/** Reads pages of messages from a position; the position, filter, format and open message are in the URL. */
export function BrowseView({ t, partitions, state, onState }: { t: TopicRef; partitions: number; state: BrowseState; onState: (s: Partial<BrowseState>) => void }) {
  const from = state.from ?? 'earliest';
  const format = state.format ?? 'text';
  const q = useQuery({
    queryKey: messageKeys.browse(t, from, state.partition),
    queryFn: ({ signal }) => fetchBrowse(t, from, state.partition, signal),
    staleTime: 10_000,
  });
  const filter: MessageFilter = { key: state.key, prop: state.prop, text: state.text };
  const shown = (q.data?.messages ?? []).filter((m) => matchesFilter(m, filter));
  const open = shown.find((m) => m.messageId === state.msg) ?? q.data?.messages.find((m) => m.messageId === state.msg);
  return (
    <div className="stack">
      <PositionForm key={`${from}|${state.partition}`} from={from} partitions={partitions} partition={state.partition} onGo={(f, p) => onState({ from: f, partition: p, msg: undefined })} />
      <div className="row" style={{ alignItems: 'flex-end' }}>
        <FilterBar value={filter} onChange={(f) => onState({ key: f.key, prop: f.prop, text: f.text })} />
        <FormatPicker value={format} onChange={(f) => onState({ format: f })} />
      </div>
      <p className="muted">Reading never creates or moves a subscription. Each page holds at most {BROWSE_LIMIT} messages (and 4 MiB).</p>
      {q.isPending ? <Loading what="Reading messages" /> : null}
      <ErrorNotice error={q.error} action="Reading messages" />
      {q.data ? (
        <>
          <p role="status" aria-live="polite">
            {q.data.messages.length} message(s) read{hasFilter(filter) ? `, ${shown.length} match the filter` : ''}.
          </p>
          {shown.length ? <MessageList messages={shown} label="Messages read" selected={state.msg} onSelect={(id) => onState({ msg: id })} /> : <Notice>No message at this position{hasFilter(filter) ? ' matches the filter' : ''}.</Notice>}
          <div className="row">
            <button type="button" disabled={!q.data.next} onClick={() => onState({ from: q.data.next ?? undefined, msg: undefined })}>
              Next page
            </button>
            {!q.data.next ? <span className="muted">End of the topic for now.</span> : null}
            <button type="button" onClick={() => q.refetch()}>
              Read again
            </button>
          </div>
          {open ? <MessageDetail m={open} format={format} onClose={() => onState({ msg: undefined })} /> : null}
        </>
      ) : null}
      <Curl spec={browseSpec(t, from, state.partition)} label="read these messages" />
    </div>
  );
}
