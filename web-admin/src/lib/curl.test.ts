import { describe, expect, it } from 'vitest';
import { toCurl } from './curl';

describe('curl commands', () => {
  it('elides the token and quotes the body', () => {
    expect(
      toCurl(
        { method: 'POST', path: '/admin/v2/namespaces/{tenant}/{namespace}/retention', params: { tenant: 'acme', namespace: 'orders' }, body: { retentionTimeInMinutes: 60, retentionSizeInMB: -1 } },
        { origin: 'http://127.0.0.1:8080' },
      ),
    ).toBe(
      `curl -X POST 'http://127.0.0.1:8080/admin/v2/namespaces/acme/orders/retention' -H "Authorization: Bearer $MAGNETAR_TOKEN" -H 'Content-Type: application/json' -d '{"retentionTimeInMinutes":60,"retentionSizeInMB":-1}'`,
    );
  });
  it('GET with a query, no auth header when authentication is off', () => {
    expect(
      toCurl(
        { method: 'GET', path: '/admin/v2/persistent/{tenant}/{namespace}/{topic}/messages', params: { tenant: 'a', namespace: 'b', topic: 'c d' }, query: { from: 'latest-5', limit: 50, partition: undefined } },
        { origin: 'http://h:1', authenticated: false },
      ),
    ).toBe(`curl 'http://h:1/admin/v2/persistent/a/b/c%20d/messages?from=latest-5&limit=50'`);
  });
  it('escapes single quotes', () => {
    expect(toCurl({ method: 'POST', path: '/topics/persistent/{tenant}/{namespace}/{topic}', params: { tenant: 'a', namespace: 'b', topic: 'c' }, body: { messages: [{ payload: "it's" }] } }, { origin: 'http://h' })).toContain(
      `'{"messages":[{"payload":"it'\\''s"}]}'`,
    );
  });
});
