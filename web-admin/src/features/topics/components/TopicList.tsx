import { useDeferredValue, useMemo, useRef, useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link, useNavigate } from '@tanstack/react-router';
import { useVirtualizer } from '@tanstack/react-virtual';
import { Curl } from '../../../components/Curl';
import { ErrorNotice, Loading, Notice } from '../../../components/Notice';
import { send } from '../../../lib/api/client';
import { formatCount } from '../../../lib/format';
import { namespaceResource } from '../../../lib/permissions';
import { PAGE_SIZES } from '../../../lib/search';
import { useAllowed } from '../../../lib/useAllowed';
import { createTopicSpec, fetchTopicEntries, filterTopics, pageOf, topicKeys } from '../api';

const ROW = 34;

function CreateTopic({ tenant, namespace }: { tenant: string; namespace: string }) {
  const qc = useQueryClient();
  const navigate = useNavigate();
  const [name, setName] = useState('');
  const [partitions, setPartitions] = useState('0');
  const spec = createTopicSpec({ tenant, namespace, topic: name || '{topic}' }, Number(partitions) || 0);
  const m = useMutation({
    mutationFn: () => send(createTopicSpec({ tenant, namespace, topic: name }, Number(partitions) || 0)),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: topicKeys.list(tenant, namespace) });
      navigate({ to: '/tenants/$tenant/namespaces/$namespace/topics/$topic', params: { tenant, namespace, topic: name } });
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
        <label htmlFor="new-topic">New topic</label>
        <input id="new-topic" required value={name} onChange={(e) => setName(e.target.value.trim())} placeholder="created" />
      </div>
      <div className="field">
        <label htmlFor="new-topic-partitions">Partitions</label>
        <input id="new-topic-partitions" type="number" min={0} max={10000} value={partitions} onChange={(e) => setPartitions(e.target.value)} aria-describedby="new-topic-partitions-hint" style={{ width: '7rem' }} />
      </div>
      <button type="submit" className="primary" disabled={!name || m.isPending}>
        Create topic
      </button>
      <span id="new-topic-partitions-hint" className="hint muted" style={{ flexBasis: '100%' }}>
        0 creates a non-partitioned topic.
      </span>
      <div style={{ flexBasis: '100%' }}>
        <ErrorNotice error={m.error} action="Creating the topic" />
        <Curl spec={spec} label="create topic" />
      </div>
    </form>
  );
}

/**
 * The namespace's topics: filtered and paged through the URL (`q`, `page`, `size`), rows
 * virtualized so even a page of 1,000 renders only what is on screen.
 */
export function TopicList({
  tenant,
  namespace,
  q,
  page,
  size,
  onSearch,
}: {
  tenant: string;
  namespace: string;
  q?: string;
  page?: number;
  size?: number;
  onSearch: (s: { q?: string; page?: number; size?: number }) => void;
}) {
  const list = useQuery({ queryKey: topicKeys.list(tenant, namespace), queryFn: () => fetchTopicEntries(tenant, namespace) });
  const { allowed } = useAllowed([{ operation: 'CreateTopic', resource: namespaceResource(tenant, namespace) }]);
  const [text, setText] = useState(q ?? '');
  const deferred = useDeferredValue(q);
  const filtered = useMemo(() => filterTopics(list.data ?? [], deferred), [list.data, deferred]);
  const pageSize = size ?? 100;
  const current = pageOf(filtered, page ?? 1, pageSize);
  const scroller = useRef<HTMLDivElement>(null);
  const virtual = useVirtualizer({ count: current.items.length, getScrollElement: () => scroller.current, estimateSize: () => ROW, overscan: 12 });

  return (
    <div className="stack">
      {allowed('CreateTopic', namespaceResource(tenant, namespace)) ? <CreateTopic tenant={tenant} namespace={namespace} /> : null}
      <form
        className="inline"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          onSearch({ q: text || undefined, page: undefined });
        }}
      >
        <div className="field">
          <label htmlFor="topic-filter">Filter topics</label>
          <input
            id="topic-filter"
            type="search"
            value={text}
            onChange={(e) => {
              setText(e.target.value);
              onSearch({ q: e.target.value || undefined, page: undefined });
            }}
            placeholder="name or pattern, e.g. orders-*"
          />
        </div>
        <div className="field">
          <label htmlFor="topic-page-size">Per page</label>
          <select id="topic-page-size" value={pageSize} onChange={(e) => onSearch({ size: Number(e.target.value), page: undefined })}>
            {PAGE_SIZES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
      </form>
      {list.isPending ? <Loading what="Listing topics" /> : null}
      <ErrorNotice error={list.error} action="Listing topics" />
      {list.data ? (
        <>
          <p className="muted" role="status" aria-live="polite">
            {formatCount(filtered.length)} of {formatCount(list.data.length)} topics
            {current.pages > 1 ? `, page ${current.page} of ${current.pages}` : ''}
          </p>
          {current.items.length === 0 ? (
            <Notice>{list.data.length ? 'No topic matches the filter.' : 'No topics yet.'}</Notice>
          ) : (
            <div className="vlist" ref={scroller} role="list" aria-label="Topics" style={{ height: Math.min(current.items.length * ROW + 2, 560) }}>
              <div style={{ height: virtual.getTotalSize(), position: 'relative' }}>
                {virtual.getVirtualItems().map((row) => {
                  const t = current.items[row.index];
                  return (
                    <div key={t.name} role="listitem" className="vrow" style={{ top: row.start, height: ROW }}>
                      <Link to="/tenants/$tenant/namespaces/$namespace/topics/$topic" params={{ tenant, namespace, topic: t.name }}>
                        {t.name}
                      </Link>
                      {t.partitions > 0 ? <span className="badge">{t.partitions} partitions</span> : null}
                    </div>
                  );
                })}
              </div>
            </div>
          )}
          {current.pages > 1 ? (
            <nav className="row" aria-label="Topic pages">
              <button type="button" disabled={current.page <= 1} onClick={() => onSearch({ page: current.page - 1 })}>
                Previous page
              </button>
              <span>
                Page {current.page} of {current.pages}
              </span>
              <button type="button" disabled={current.page >= current.pages} onClick={() => onSearch({ page: current.page + 1 })}>
                Next page
              </button>
            </nav>
          ) : null}
        </>
      ) : null}
      <Curl
        spec={[
          { method: 'GET', path: '/admin/v2/persistent/{tenant}/{namespace}', params: { tenant, namespace } },
          { method: 'GET', path: '/admin/v2/persistent/{tenant}/{namespace}/partitioned', params: { tenant, namespace } },
        ]}
        label="list topics"
      />
    </div>
  );
}
