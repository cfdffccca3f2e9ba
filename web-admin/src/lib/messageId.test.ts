import { describe, expect, it } from 'vitest';
import { messageIdFromBase64, messageIdText, messageIdToBase64, messageOffset, parseMessageIdText } from './messageId';

describe('message ids', () => {
  it('carries the batch index of a batched message in every form', () => {
    const id = { ledgerId: 0, entryId: 10, partition: -1, batchIndex: 4 };
    expect(messageIdText(id)).toBe('0:10:-1:4');
    expect(parseMessageIdText('0:10:-1:4')).toEqual(id);
    expect(messageIdFromBase64(messageIdToBase64(id))).toEqual(id);
    expect(messageOffset(id)).toBe(14);
    expect(messageOffset({ ledgerId: 5, entryId: 2 })).toBe(7);
  });
  it('decodes Pulsar WebSocket ids', () => {
    expect(messageIdFromBase64('CAAQAw==')).toEqual({ ledgerId: 0, entryId: 3, partition: -1 });
    expect(messageIdFromBase64('CAMQADAA')).toEqual({ ledgerId: 3, entryId: 0, partition: -1 });
    expect(messageIdToBase64({ ledgerId: 0, entryId: 3, partition: -1 })).toBe('CAAQAw==');
  });
  it('round-trips large ids and partitions', () => {
    const id = { ledgerId: 123456789012, entryId: 70000, partition: 5 };
    expect(messageIdFromBase64(messageIdToBase64(id))).toEqual(id);
    expect(messageIdText(id)).toBe('123456789012:70000:5');
  });
  it('parses the text form', () => {
    expect(parseMessageIdText('1:2')).toEqual({ ledgerId: 1, entryId: 2, partition: -1 });
    expect(parseMessageIdText('1:2:3')).toEqual({ ledgerId: 1, entryId: 2, partition: 3 });
    expect(parseMessageIdText('1:x')).toBeNull();
    expect(parseMessageIdText('1:x:2:3')).toBeNull();
    expect(messageIdFromBase64('!!')).toBeNull();
    expect(messageIdFromBase64('CAA=')).toBeNull();
  });
});
