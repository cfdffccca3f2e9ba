import { describe, expect, it } from 'vitest';
import { durabilityText, replicasText } from './durability';

describe('durability of a topic', () => {
  it('names the mode, local when the broker does not say', () => {
    expect(durabilityText({})).toBe('local');
    expect(durabilityText({ durability: 'object-store', writeQuorum: 1, ackQuorum: 1 })).toBe('object-store');
    expect(durabilityText({ durability: 'mixed', writeQuorum: 1, ackQuorum: 1 })).toBe('mixed');
  });
  it('gives the quorum of replicated durability, the owner not counted toward the ack quorum', () => {
    expect(durabilityText({ durability: 'replicated', writeQuorum: 2, ackQuorum: 2 })).toBe(
      'replicated: 2 brokers, acknowledged once 1 besides the owner have it',
    );
    expect(durabilityText({ durability: 'replicated', writeQuorum: 3, ackQuorum: 2 })).toBe(
      'replicated: 3 brokers, acknowledged once 2 besides the owner have it',
    );
  });
  it('lists the replica peers', () => {
    expect(replicasText({ replicaPeers: ['b:6651', 'c:6651'] })).toBe('b:6651, c:6651');
    expect(replicasText({})).toBe('—');
  });
});
