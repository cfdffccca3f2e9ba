import { describe, expect, it } from 'vitest';
import { clean, describePosition, positionOf, validateNamespace, validateSignIn, validateTopic } from './search';

describe('URL state', () => {
  it('keeps valid topic view parameters and drops the rest', () => {
    expect(validateTopic({ tab: 'messages', mode: 'tail', from: 'latest-20', format: 'json', partition: '2', key: 'k', junk: 'x' })).toEqual({
      tab: 'messages',
      mode: 'tail',
      from: 'latest-20',
      format: 'json',
      partition: 2,
      key: 'k',
      prop: undefined,
      text: undefined,
      msg: undefined,
      role: undefined,
    });
    expect(validateTopic({ tab: 'nope', format: 'xml', partition: '-3' })).toMatchObject({ tab: undefined, format: undefined, partition: undefined });
  });
  it('pages and page sizes of the topic list', () => {
    expect(validateNamespace({ q: 'orders-*', page: '3', size: '500' })).toMatchObject({ q: 'orders-*', page: 3, size: 500 });
    expect(validateNamespace({ page: '0', size: '7' })).toMatchObject({ page: undefined, size: undefined });
  });
  it('never redirects off the origin after sign-in', () => {
    expect(validateSignIn({ redirect: '/tenants/acme' }).redirect).toBe('/tenants/acme');
    expect(validateSignIn({ redirect: '//evil.example' }).redirect).toBeUndefined();
    expect(validateSignIn({ redirect: 'https://evil.example' }).redirect).toBeUndefined();
  });
  it('clean drops empty values', () => {
    expect(clean({ a: 1, b: undefined, c: '' })).toEqual({ a: 1 });
  });
  it('message positions round-trip through the form', () => {
    expect(positionOf('earliest', '')).toBe('earliest');
    expect(positionOf('latest', '20')).toBe('latest-20');
    expect(positionOf('latest', '-1')).toBeNull();
    expect(positionOf('id', ' 3:4:1 ')).toBe('3:4:1');
    expect(positionOf('id', '3:4:-1:7')).toBe('3:4:-1:7');
    expect(positionOf('id', '3:4:-1:x')).toBeNull();
    expect(positionOf('id', '3-4')).toBeNull();
    expect(positionOf('time', '1700000000000')).toBe('time:1700000000000');
    expect(positionOf('time', '')).toBeNull();
    expect(describePosition('latest-20')).toEqual({ kind: 'latest', value: '20' });
    expect(describePosition('5:6')).toEqual({ kind: 'id', value: '5:6' });
    expect(describePosition('time:1700000000000').kind).toBe('time');
    expect(describePosition('o:0=5')).toEqual({ kind: 'earliest', value: '' });
  });
});
