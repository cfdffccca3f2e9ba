import { describe, expect, it } from 'vitest';
import { describeEffect } from './api';

describe('subscription actions say what they do', () => {
  it('skip and clear count messages', () => {
    expect(describeEffect('skip', 25, { n: 10 })).toContain('from 25 to 15');
    expect(describeEffect('skip', 5, { n: 10 })).toContain('next 5 messages');
    expect(describeEffect('clear', 1, {})).toContain('all 1 message ');
  });
  it('reset shows the backlog it will give', () => {
    expect(describeEffect('resetTime', 0, { time: 0, estimate: 120 })).toContain('from 0 to about 120');
    expect(describeEffect('resetId', 3, { id: '0:5', estimate: null })).not.toContain('about');
  });
  it('unsubscribe names the consumers it disconnects', () => {
    expect(describeEffect('unsubscribe', 7, { consumers: 2 })).toContain('2 connected consumer(s)');
  });
});
