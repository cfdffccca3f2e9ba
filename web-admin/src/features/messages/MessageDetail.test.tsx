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
