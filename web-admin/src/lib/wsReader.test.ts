import { describe, expect, it } from 'vitest';
import { frameMessageId, RateMeter, RateSampler, readerUrl, SERVER_CAP, skippedCount } from './wsReader';

describe('live tail', () => {
  it('shows at most the cap per second and counts the rest', () => {
    const s = new RateSampler(100);
    let shown = 0;
    // 5,000 messages in one second, then 5,000 in the next.
    for (let i = 0; i < 5000; i++) if (s.offer(i * 0.2)) shown++;
    for (let i = 0; i < 5000; i++) if (s.offer(1000 + i * 0.2)) shown++;
    expect(shown).toBe(200);
    expect(s.skipped).toBe(9800);
  });
  it('measures the rate over the last second', () => {
    const m = new RateMeter();
    for (let i = 0; i < 3000; i++) m.mark(i);
    expect(m.rate(3000)).toBe(1000);
  });
  it('builds reader URLs with the token and a start after a message', () => {
    const u = new URL(readerUrl('http://127.0.0.1:8080', { tenant: 'acme', namespace: 'orders', topic: 'created' }, { after: '0:3:-1' }, 'tok'));
    expect(u.protocol).toBe('ws:');
    expect(u.pathname).toBe('/ws/v2/reader/persistent/acme/orders/created');
    expect(u.searchParams.get('messageId')).toBe('CAAQAw==');
    expect(u.searchParams.get('token')).toBe('tok');
    expect(u.searchParams.get('maxMessagesPerSecond')).toBe(String(SERVER_CAP));
    expect(new URL(readerUrl('https://h', { tenant: 'a', namespace: 'b', topic: 'c' }, 'latest', null)).searchParams.get('messageId')).toBe('latest');
  });
  it('finds the message id of a frame without parsing it', () => {
    expect(frameMessageId('{"messageId":"CAAQAw==","payload":"aGk=","properties":{}}')).toBe('CAAQAw==');
    expect(frameMessageId('{"payload":"x","messageId":"CAMQADAA"}')).toBe('CAMQADAA');
    expect(frameMessageId('{"error":"bad","errorCode":3}')).toBeNull();
  });
  it('reads the skipped counts the broker sends', () => {
    expect(skippedCount('{"type":"skipped","count":4500}')).toBe(4500);
    expect(skippedCount('{"count":12,"type":"skipped"}')).toBe(12);
    expect(skippedCount('{"count":12,"type":"other","note":"skipped"}')).toBeNull();
    expect(skippedCount('{"messageId":"CAAQAw==","payload":"aGk="}')).toBeNull();
  });
});
