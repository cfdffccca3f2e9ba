import { get, type RequestSpec } from '../../lib/api/client';
import type { BrowsePage } from '../../lib/api/types';
import { payloadText } from '../../lib/payload';

export interface TopicRef {
  tenant: string;
  namespace: string;
  topic: string;
}

/** Messages read per page (the API allows up to 500). */
export const BROWSE_LIMIT = 50;

export const messageKeys = {
  all: ['messages'] as const,
  browse: (t: TopicRef, from: string, partition: number | undefined) => [...messageKeys.all, 'browse', t.tenant, t.namespace, t.topic, from, partition ?? -1] as const,
};

export const browseSpec = (t: TopicRef, from: string, partition?: number): RequestSpec => ({
  method: 'GET',
  path: '/admin/v2/persistent/{tenant}/{namespace}/{topic}/messages',
  params: { tenant: t.tenant, namespace: t.namespace, topic: t.topic },
  query: { from, limit: BROWSE_LIMIT, partition },
});

export const fetchBrowse = (t: TopicRef, from: string, partition?: number, signal?: AbortSignal) =>
  get<BrowsePage>(
    '/admin/v2/persistent/{tenant}/{namespace}/{topic}/messages',
    { tenant: t.tenant, namespace: t.namespace, topic: t.topic },
    { from, limit: BROWSE_LIMIT, partition },
    signal,
  );

export interface ProduceForm {
  key: string;
  properties: string;
  payload: string;
  delayMs: string;
  partition: string;
}

/** `k=v` lines (or `k=v, k2=v2`) → a map; null when a line has no `=`. */
export function parseProperties(text: string): Record<string, string> | null {
  const out: Record<string, string> = {};
  for (const raw of text.split(/[\n,]/)) {
    const line = raw.trim();
    if (!line) continue;
    const i = line.indexOf('=');
    if (i <= 0) return null;
    out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

export function produceSpec(t: TopicRef, f: ProduceForm): RequestSpec | null {
  const properties = parseProperties(f.properties);
  if (properties === null) return null;
  const msg: Record<string, unknown> = { payload: f.payload };
  if (f.key) msg.key = f.key;
  if (Object.keys(properties).length) msg.properties = properties;
  const delay = Number(f.delayMs);
  if (f.delayMs && Number.isFinite(delay) && delay > 0) msg.deliverAfterMs = delay;
  const p = { tenant: t.tenant, namespace: t.namespace, topic: t.topic };
  return f.partition !== ''
    ? { method: 'POST', path: '/topics/persistent/{tenant}/{namespace}/{topic}/partitions/{partition}', params: { ...p, partition: f.partition }, body: { messages: [msg] } }
    : { method: 'POST', path: '/topics/persistent/{tenant}/{namespace}/{topic}', params: p, body: { messages: [msg] } };
}

export interface MessageFilter {
  key?: string;
  /** `name=value` or just `name`. */
  prop?: string;
  text?: string;
}

export interface FilterableMessage {
  key?: string | null;
  properties: Record<string, string>;
  payload: string;
}

/** Whether a message passes the filter: key contains, property present (and equal), payload text contains. */
export function matchesFilter(m: FilterableMessage, f: MessageFilter): boolean {
  if (f.key && !(m.key ?? '').toLowerCase().includes(f.key.toLowerCase())) return false;
  if (f.prop) {
    const i = f.prop.indexOf('=');
    const name = (i >= 0 ? f.prop.slice(0, i) : f.prop).trim();
    if (!(name in m.properties)) return false;
    if (i >= 0 && m.properties[name] !== f.prop.slice(i + 1).trim()) return false;
  }
  if (f.text && !payloadText(m.payload).toLowerCase().includes(f.text.toLowerCase())) return false;
  return true;
}

export const hasFilter = (f: MessageFilter) => !!(f.key || f.prop || f.text);
