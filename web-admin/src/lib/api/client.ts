/**
 * The one API client: openapi-fetch typed from the broker's /openapi.json (generated into
 * schema.gen.ts at build time). Every request carries the session's token; a 401 sends the app
 * back to sign-in; errors become `ApiError` with the API's `reason`.
 */
import createClient from 'openapi-fetch';
import type { paths } from './schema.gen';
import { getToken, UNAUTHENTICATED_EVENT } from '../session';

export type Paths = paths;
export type Method = 'GET' | 'PUT' | 'POST' | 'DELETE';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly method: string,
    readonly path: string,
  ) {
    super(reason);
    this.name = 'ApiError';
  }
  get isForbidden() {
    return this.status === 403;
  }
}

export const api = createClient<paths>({
  baseUrl: typeof window !== 'undefined' ? window.location.origin : '',
  // Looked up per call (not captured once), so tests can stub it.
  fetch: (request: Request) => globalThis.fetch(request),
});

api.use({
  onRequest({ request }) {
    const token = getToken();
    if (token) request.headers.set('Authorization', `Bearer ${token}`);
    return request;
  },
});

/** The `reason` of an error body, or a description of the status. */
export async function reasonOf(response: Response): Promise<string> {
  try {
    const text = await response.clone().text();
    try {
      const body = JSON.parse(text);
      if (body && typeof body.reason === 'string') return body.reason;
    } catch {
      /* not JSON */
    }
    if (text && text.length < 300) return text;
  } catch {
    /* no body */
  }
  return `HTTP ${response.status} ${response.statusText}`.trim();
}

function fail(status: number, reason: string, method: string, path: string): never {
  if (status === 401) window.dispatchEvent(new CustomEvent(UNAUTHENTICATED_EVENT, { detail: reason }));
  throw new ApiError(status, reason, method, path);
}

/** Unwraps an openapi-fetch result: the data, or an `ApiError`. */
export async function unwrap<T>(
  p: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  const { data, error, response } = await p;
  if (!response.ok || error !== undefined) {
    const url = new URL(response.url || '/', window.location.origin);
    fail(response.status, await reasonOf(response), 'request', url.pathname);
  }
  return data as T;
}

/** A request as data: sent by `send`, shown as curl by `toCurl` (lib/curl.ts). */
export interface RequestSpec {
  method: Method;
  /** A path of the API, with `{param}` placeholders. */
  path: keyof paths & string;
  params?: Record<string, string | number>;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
}

/** The concrete path and query string of a request. */
export function urlOf(spec: Pick<RequestSpec, 'path' | 'params' | 'query'>): string {
  const path = spec.path.replace(/\{(\w+)\}/g, (_, name: string) => {
    const v = spec.params?.[name];
    if (v === undefined) throw new Error(`missing path parameter ${name} of ${spec.path}`);
    return encodeURIComponent(String(v));
  });
  const q = Object.entries(spec.query ?? {}).filter(([, v]) => v !== undefined && v !== '');
  return q.length ? `${path}?${new URLSearchParams(q.map(([k, v]) => [k, String(v)]))}` : path;
}

/** Sends a request spec; resolves to the JSON answer (or null for 204), rejects with ApiError. */
export async function send<T = unknown>(spec: RequestSpec, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = {};
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (spec.body !== undefined) headers['Content-Type'] = 'application/json';
  const url = urlOf(spec);
  const response = await fetch(url, {
    method: spec.method,
    headers,
    body: spec.body === undefined ? undefined : JSON.stringify(spec.body),
    signal,
  });
  if (!response.ok) fail(response.status, await reasonOf(response), spec.method, url);
  if (response.status === 204) return null as T;
  const text = await response.text();
  if (!text) return null as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    return text as T;
  }
}

/** GET a spec'd path. */
export function get<T>(path: RequestSpec['path'], params?: RequestSpec['params'], query?: RequestSpec['query'], signal?: AbortSignal) {
  return send<T>({ method: 'GET', path, params, query }, signal);
}
