/** The `curl` command equivalent to a request spec, with the token elided as $MAGNETAR_TOKEN. */
import { urlOf, type RequestSpec } from './api/client';

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function toCurl(spec: RequestSpec, opts: { origin?: string; authenticated?: boolean } = {}): string {
  const origin = opts.origin ?? (typeof window !== 'undefined' ? window.location.origin : 'http://127.0.0.1:8080');
  const parts = ['curl'];
  if (spec.method !== 'GET') parts.push('-X', spec.method);
  parts.push(quote(origin + urlOf(spec)));
  if (opts.authenticated ?? true) parts.push('-H', '"Authorization: Bearer $MAGNETAR_TOKEN"');
  if (spec.body !== undefined) {
    parts.push('-H', quote('Content-Type: application/json'), '-d', quote(JSON.stringify(spec.body)));
  }
  return parts.join(' ');
}
