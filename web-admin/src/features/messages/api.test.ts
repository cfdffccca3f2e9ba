import { describe, expect, it } from 'vitest';
import { textToBase64 } from '../../lib/payload';
import { matchesFilter, parseProperties, produceSpec } from './api';

const msg = { key: 'order-17', properties: { region: 'eu', kind: 'created' }, payload: textToBase64('{"total": 42}') };

describe('message filter', () => {
  it('key, property and payload text', () => {
    expect(matchesFilter(msg, {})).toBe(true);
    expect(matchesFilter(msg, { key: 'ORDER' })).toBe(true);
    expect(matchesFilter(msg, { key: 'invoice' })).toBe(false);
    expect(matchesFilter(msg, { prop: 'region' })).toBe(true);
    expect(matchesFilter(msg, { prop: 'region=eu' })).toBe(true);
    expect(matchesFilter(msg, { prop: 'region=us' })).toBe(false);
    expect(matchesFilter(msg, { text: '"total"' })).toBe(true);
    expect(matchesFilter(msg, { text: 'refund' })).toBe(false);
    expect(matchesFilter({ ...msg, key: null }, { key: 'o' })).toBe(false);
  });
});

describe('produce form', () => {
  const t = { tenant: 'acme', namespace: 'orders', topic: 'created' };
  it('properties from lines', () => {
    expect(parseProperties('a=1\nb = two\n')).toEqual({ a: '1', b: 'two' });
    expect(parseProperties('a=1, b=2')).toEqual({ a: '1', b: '2' });
    expect(parseProperties('novalue')).toBeNull();
  });
  it('builds the REST produce request', () => {
    expect(produceSpec(t, { key: 'k', properties: 'p=v', payload: 'hi', delayMs: '5000', partition: '' })).toEqual({
      method: 'POST',
      path: '/topics/persistent/{tenant}/{namespace}/{topic}',
      params: t,
      body: { messages: [{ payload: 'hi', key: 'k', properties: { p: 'v' }, deliverAfterMs: 5000 }] },
    });
    expect(produceSpec(t, { key: '', properties: '', payload: 'x', delayMs: '', partition: '2' })?.path).toBe('/topics/persistent/{tenant}/{namespace}/{topic}/partitions/{partition}');
    expect(produceSpec(t, { key: '', properties: 'bad', payload: 'x', delayMs: '', partition: '' })).toBeNull();
  });
});
