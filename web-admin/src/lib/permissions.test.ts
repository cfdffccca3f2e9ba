import { describe, expect, it } from 'vitest';
import { allowedFrom, chunkChecks, consumersOf, namespaceResource, topicResource } from './permissions';

describe('permission-dependent views', () => {
  const checks = [
    { operation: 'CreateTopic', resource: namespaceResource('acme', 'orders') },
    { operation: 'ResetCursor', resource: topicResource('acme', 'orders', 'created'), subscription: 'billing' },
  ];
  it('shows only what the API said yes to', () => {
    const allowed = allowedFrom(checks, [false, true]);
    expect(allowed('CreateTopic', 'acme/orders')).toBe(false);
    expect(allowed('ResetCursor', 'persistent://acme/orders/created', 'billing')).toBe(true);
    expect(allowed('ResetCursor', 'persistent://acme/orders/created', 'other')).toBe(false);
  });
  it('shows nothing before the answer', () => {
    expect(allowedFrom(checks, undefined)('ResetCursor', 'persistent://acme/orders/created', 'billing')).toBe(false);
  });
  it('splits checks at the API cap', () => {
    const many = Array.from({ length: 450 }, (_, i) => ({ operation: 'Produce', resource: `persistent://a/b/t${i}` }));
    expect(chunkChecks(many).map((c) => c.length)).toEqual([200, 200, 50]);
  });
  it('who can consume a topic', () => {
    const who = consumersOf({ 'app@acme': ['consume', 'produce'], writer: ['produce'], admin: ['consume'] }, ['admin'], { billing: ['other'] });
    expect(who).toEqual([
      { role: 'admin', why: 'tenant admin', except: [] },
      { role: 'app@acme', why: 'consume grant', except: ['billing'] },
    ]);
  });
});
