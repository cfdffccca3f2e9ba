import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, render, screen } from '@testing-library/react';
import { MessageDetail } from './components/MessageDetail';

const CHUNK = {
  messageId: '12:3:-1',
  payload: btoa('slice'),
  properties: {},
  publishTime: '2026-12-03T10:00:00Z',
  size: 5,
  chunk: { uuid: 'chunky-0-7', index: 1, count: 4 },
};

describe('a chunk of a chunked message', () => {
  afterEach(cleanup);

  it('is labelled in the detail with its place and its message', () => {
    render(<MessageDetail m={CHUNK} format="text" onClose={() => {}} />);
    expect(screen.getByText('Chunked message')).toBeTruthy();
    expect(screen.getByText(/chunk 2 of 4 of message/)).toBeTruthy();
    expect(screen.getByText('chunky-0-7')).toBeTruthy();
  });

  it('is labelled in the detail only when it is one', () => {
    render(<MessageDetail m={{ ...CHUNK, chunk: null }} format="text" onClose={() => {}} />);
    expect(screen.queryByText('Chunked message')).toBeNull();
  });
});

describe('an end-to-end encrypted message', () => {
  afterEach(cleanup);

  it('says it is encrypted, with its batch size and key names', () => {
    const sealed = { ...CHUNK, chunk: null, encryptionContext: { keys: { 'orders-key': {} }, batchSize: 10 } };
    render(<MessageDetail m={sealed} format="text" onClose={() => {}} />);
    expect(screen.getByText('End-to-end encrypted')).toBeTruthy();
    expect(screen.getByText(/encrypted batch of 10 with key/)).toBeTruthy();
    expect(screen.getByText('orders-key')).toBeTruthy();
  });

  it('is not labelled encrypted otherwise', () => {
    render(<MessageDetail m={{ ...CHUNK, chunk: null }} format="text" onClose={() => {}} />);
    expect(screen.queryByText('End-to-end encrypted')).toBeNull();
  });
});

describe('binary keys and ordering keys', () => {
  afterEach(cleanup);

  it('shows a binary key and an ordering key as hex', () => {
    const keyed = { ...CHUNK, chunk: null, key: 'AP8C', keyBase64: true, orderingKey: 'CQk=' };
    render(<MessageDetail m={keyed} format="text" onClose={() => {}} />);
    expect(screen.getByText('Key (binary, hex)')).toBeTruthy();
    expect(screen.getByText('00 ff 02')).toBeTruthy();
    expect(screen.getByText('Ordering key (hex)')).toBeTruthy();
    expect(screen.getByText('09 09')).toBeTruthy();
  });

  it('shows a text key as it is, and no ordering key when there is none', () => {
    render(<MessageDetail m={{ ...CHUNK, chunk: null, key: 'AP8C' }} format="text" onClose={() => {}} />);
    expect(screen.getByText('Key')).toBeTruthy();
    expect(screen.getByText('AP8C')).toBeTruthy();
    expect(screen.queryByText('Ordering key (hex)')).toBeNull();
  });
});
