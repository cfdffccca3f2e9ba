import type { RequestSpec } from '../../lib/api/client';
import type { MessageId } from '../../lib/messageId';

export interface TopicRef {
  tenant: string;
  namespace: string;
  topic: string;
}

const sp = (t: TopicRef, subscription: string) => ({ tenant: t.tenant, namespace: t.namespace, topic: t.topic, subscription });
const S = '/admin/v2/persistent/{tenant}/{namespace}/{topic}/subscription/{subscription}' as const;

export const createSubscriptionSpec = (t: TopicRef, sub: string, from: 'earliest' | 'latest'): RequestSpec => ({
  method: 'PUT',
  path: S,
  params: sp(t, sub),
  body: from === 'earliest' ? { ledgerId: -1, entryId: -1, partitionIndex: -1 } : undefined,
});
export const skipSpec = (t: TopicRef, sub: string, n: number): RequestSpec => ({ method: 'POST', path: `${S}/skip/{n}`, params: { ...sp(t, sub), n } });
export const clearBacklogSpec = (t: TopicRef, sub: string): RequestSpec => ({ method: 'POST', path: `${S}/skip_all`, params: sp(t, sub) });
export const resetToTimeSpec = (t: TopicRef, sub: string, ms: number): RequestSpec => ({ method: 'POST', path: `${S}/resetcursor/{timestamp}`, params: { ...sp(t, sub), timestamp: ms } });
export const resetToIdSpec = (t: TopicRef, sub: string, id: MessageId): RequestSpec => ({
  method: 'POST',
  path: `${S}/resetcursor`,
  params: sp(t, sub),
  body: { ledgerId: id.ledgerId, entryId: id.entryId, partitionIndex: id.partition, ...(id.batchIndex !== undefined ? { batchIndex: id.batchIndex } : {}) },
});
export const expireSpec = (t: TopicRef, sub: string, seconds: number): RequestSpec => ({ method: 'POST', path: `${S}/expireMessages/{seconds}`, params: { ...sp(t, sub), seconds } });
export const unsubscribeSpec = (t: TopicRef, sub: string): RequestSpec => ({ method: 'DELETE', path: S, params: sp(t, sub), query: { force: true } });

export type SubAction = 'skip' | 'clear' | 'resetTime' | 'resetId' | 'expire' | 'unsubscribe';

/** What an action will do, in words, from the subscription's current backlog. */
export function describeEffect(action: SubAction, backlog: number, arg: { n?: number; time?: number; id?: string; seconds?: number; consumers?: number; estimate?: number | null }): string {
  const plural = (n: number) => `${n.toLocaleString('en-US')} message${n === 1 ? '' : 's'}`;
  switch (action) {
    case 'skip': {
      const n = Math.min(arg.n ?? 0, backlog);
      return `Acknowledges the next ${plural(n)} without delivering them; the backlog goes from ${backlog.toLocaleString('en-US')} to ${(backlog - n).toLocaleString('en-US')}.`;
    }
    case 'clear':
      return `Acknowledges all ${plural(backlog)} in the backlog; consumers receive only messages published from now on.`;
    case 'resetTime':
    case 'resetId': {
      const where = action === 'resetTime' ? `the first message published at or after ${new Date(arg.time ?? 0).toLocaleString()}` : `message ${arg.id}`;
      const est = arg.estimate;
      return `Moves the cursor to ${where}; everything from there is delivered again${
        est !== null && est !== undefined ? `: the backlog goes from ${backlog.toLocaleString('en-US')} to about ${est.toLocaleString('en-US')}` : ''
      }. Connected consumers are disconnected and resume there.`;
    }
    case 'expire':
      return `Acknowledges the messages of the backlog (now ${plural(backlog)}) published more than ${arg.seconds ?? 0} seconds ago.`;
    case 'unsubscribe':
      return `Deletes the subscription and its cursor: its backlog of ${plural(backlog)} is no longer kept for it${
        arg.consumers ? `, and its ${arg.consumers} connected consumer(s) are disconnected` : ''
      }.`;
  }
}
