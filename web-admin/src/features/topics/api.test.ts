import { describe, expect, it } from 'vitest';
import { filterTopics, pageOf, topicEntries } from './api';

describe('topic list', () => {
  const all = ['persistent://a/b/plain', 'persistent://a/b/orders-partition-0', 'persistent://a/b/orders-partition-1', 'persistent://a/b/x-partition-9'];
  it('folds partitions into their parent', () => {
    expect(topicEntries(all, ['persistent://a/b/orders', 'persistent://a/b/empty'])).toEqual([
      { name: 'empty', partitions: 1 },
      { name: 'orders', partitions: 2 },
      { name: 'plain', partitions: 0 },
      { name: 'x-partition-9', partitions: 0 },
    ]);
  });
  it('filters by substring or pattern', () => {
    const list = topicEntries(all, ['persistent://a/b/orders']);
    expect(filterTopics(list, 'ORD').map((t) => t.name)).toEqual(['orders']);
    expect(filterTopics(list, 'x-*-9').map((t) => t.name)).toEqual(['x-partition-9']);
    expect(filterTopics(list, '')).toHaveLength(3);
  });
  it('pages 10,000 topics quickly', () => {
    const names = Array.from({ length: 10_000 }, (_, i) => `persistent://t/ns/topic-${String(i).padStart(5, '0')}`);
    const t0 = performance.now();
    const list = topicEntries(names, []);
    const f = filterTopics(list, 'topic-09');
    const p = pageOf(f, 3, 100);
    expect(performance.now() - t0).toBeLessThan(500);
    expect(f).toHaveLength(1000);
    expect(p.pages).toBe(10);
    expect(p.items[0].name).toBe('topic-09200');
    expect(pageOf(f, 99, 100).page).toBe(10);
  });
});
