/**
 * URL state: the typed search parameters of each view. Whatever a user sees is reproducible from
 * the address: tab, filters, page, message position, payload format. Validators drop unknown or
 * malformed values instead of failing, so a hand-edited link still opens.
 */
import { parseMessageIdText } from './messageId';
import { PAYLOAD_FORMATS, type PayloadFormat } from './payload';

type Raw = Record<string, unknown>;

function str(v: unknown, max = 500): string | undefined {
  if (typeof v === 'number') v = String(v);
  return typeof v === 'string' && v !== '' ? v.slice(0, max) : undefined;
}

function int(v: unknown, min: number, max: number): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : NaN;
  return Number.isInteger(n) && n >= min && n <= max ? n : undefined;
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[]): T | undefined {
  return typeof v === 'string' && (allowed as readonly string[]).includes(v) ? (v as T) : undefined;
}

export interface SignInSearch {
  redirect?: string;
}
export function validateSignIn(s: Raw): SignInSearch {
  const r = str(s.redirect, 2000);
  // Only paths of this origin: never an open redirect.
  return { redirect: r && r.startsWith('/') && !r.startsWith('//') ? r : undefined };
}

export const TENANT_TABS = ['namespaces', 'accounts', 'settings'] as const;
export type TenantTab = (typeof TENANT_TABS)[number];
export interface TenantSearch {
  tab?: TenantTab;
  account?: string;
}
export function validateTenant(s: Raw): TenantSearch {
  return { tab: oneOf(s.tab, TENANT_TABS), account: str(s.account, 64) };
}

export const NAMESPACE_TABS = ['topics', 'policies', 'permissions'] as const;
export type NamespaceTab = (typeof NAMESPACE_TABS)[number];
export const PAGE_SIZES = [50, 100, 500, 1000] as const;
export interface NamespaceSearch {
  tab?: NamespaceTab;
  q?: string;
  page?: number;
  size?: number;
  role?: string;
}
export function validateNamespace(s: Raw): NamespaceSearch {
  const size = int(s.size, 1, 1000);
  return {
    tab: oneOf(s.tab, NAMESPACE_TABS),
    q: str(s.q, 200),
    page: int(s.page, 1, 1_000_000),
    size: size !== undefined && (PAGE_SIZES as readonly number[]).includes(size) ? size : undefined,
    role: str(s.role, 200),
  };
}

export const TOPIC_TABS = ['overview', 'subscriptions', 'messages', 'storage', 'permissions'] as const;
export type TopicTab = (typeof TOPIC_TABS)[number];
export const MESSAGE_MODES = ['browse', 'tail', 'produce'] as const;
export type MessageMode = (typeof MESSAGE_MODES)[number];
export interface TopicSearch {
  tab?: TopicTab;
  partition?: number;
  mode?: MessageMode;
  /** Browse position: earliest | latest-N | L:E[:P] | time:<ms> | a next token. */
  from?: string;
  format?: PayloadFormat;
  key?: string;
  prop?: string;
  text?: string;
  /** The message shown in detail (its id). */
  msg?: string;
  role?: string;
}
export function validateTopic(s: Raw): TopicSearch {
  return {
    tab: oneOf(s.tab, TOPIC_TABS),
    partition: int(s.partition, 0, 100_000),
    mode: oneOf(s.mode, MESSAGE_MODES),
    from: str(s.from, 4000),
    format: oneOf(s.format, PAYLOAD_FORMATS),
    key: str(s.key, 200),
    prop: str(s.prop, 200),
    text: str(s.text, 200),
    msg: str(s.msg, 100),
    role: str(s.role, 200),
  };
}

/** Removes undefined values (so links do not carry `?x=undefined`). */
export function clean<T extends object>(s: T): Partial<T> {
  return Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined && v !== '')) as Partial<T>;
}

/** A browse position from the form's fields. */
export type PositionKind = 'earliest' | 'latest' | 'id' | 'time';
export function positionOf(kind: PositionKind, value: string): string | null {
  switch (kind) {
    case 'earliest':
      return 'earliest';
    case 'latest': {
      const n = Number(value || '50');
      return Number.isInteger(n) && n >= 0 ? `latest-${n}` : null;
    }
    case 'id':
      return parseMessageIdText(value) ? value.trim() : null;
    case 'time': {
      const t = value.trim() === '' ? NaN : /^\d+$/.test(value.trim()) ? Number(value) : Date.parse(value);
      return Number.isFinite(t) ? `time:${t}` : null;
    }
  }
}

/** The form's fields for a browse position (inverse of positionOf). */
export function describePosition(from: string | undefined): { kind: PositionKind; value: string } {
  if (!from || from === 'earliest') return { kind: 'earliest', value: '' };
  if (from === 'latest') return { kind: 'latest', value: '0' };
  const latest = /^latest-(\d+)$/.exec(from);
  if (latest) return { kind: 'latest', value: latest[1] };
  const time = /^time:(\d+)$/.exec(from);
  if (time) return { kind: 'time', value: toLocalInput(Number(time[1])) };
  if (/^\d+:\d+(:-?\d+)?$/.test(from)) return { kind: 'id', value: from };
  return { kind: 'earliest', value: '' };
}

/** An epoch ms as the value of a datetime-local input (local time, seconds). */
export function toLocalInput(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
