import type { ReactNode } from 'react';
import { ApiError } from '../lib/api/client';

/** An error where it happened, with the API's reason; 403 says what is not allowed. */
export function ErrorNotice({ error, action }: { error: unknown; action?: string }) {
  if (!error) return null;
  let text: string;
  if (error instanceof ApiError) {
    const prefix = error.status === 403 ? 'Not allowed' : error.status === 404 ? 'Not found' : `Error ${error.status}`;
    text = `${prefix}: ${error.reason}`;
  } else text = error instanceof Error ? error.message : String(error);
  return (
    <div className="notice error" role="alert">
      {action ? <strong>{action} failed. </strong> : null}
      {text}
    </div>
  );
}

export function Notice({ kind = 'info', children }: { kind?: 'info' | 'ok' | 'warn' | 'error'; children: ReactNode }) {
  return (
    <div className={`notice ${kind}`} role={kind === 'error' ? 'alert' : 'status'}>
      {children}
    </div>
  );
}

export function Loading({ what = 'Loading' }: { what?: string }) {
  return (
    <p className="spinner" role="status" aria-live="polite">
      {what}…
    </p>
  );
}
