/**
 * Message ids: the admin text form `ledgerId:entryId[:partition[:batchIndex]]` and the WebSocket
 * form, base64 of Pulsar's MessageIdData protobuf (ledgerId = field 1, entryId = 2, partition = 3,
 * batchIndex = 4). A message its producer sent in a batch is `entry of the batch : index`; the
 * broker's log offset of any id is ledgerId + entryId + batchIndex.
 */
import { base64ToBytes, bytesToBase64 } from './payload';

export interface MessageId {
  ledgerId: number;
  entryId: number;
  partition: number;
  /** Present for a message sent in a batch. */
  batchIndex?: number;
}

export function parseMessageIdText(s: string): MessageId | null {
  const m = /^\s*(\d+):(\d+)(?::(-?\d+)(?::(\d+))?)?\s*$/.exec(s);
  if (!m) return null;
  const id: MessageId = { ledgerId: Number(m[1]), entryId: Number(m[2]), partition: m[3] === undefined ? -1 : Number(m[3]) };
  if (m[4] !== undefined) id.batchIndex = Number(m[4]);
  return id;
}

export function messageIdText(id: MessageId): string {
  const batch = id.batchIndex !== undefined && id.batchIndex >= 0 ? `:${id.batchIndex}` : '';
  return `${id.ledgerId}:${id.entryId}:${id.partition}${batch}`;
}

/** The broker's log offset of an id (its position in the partition). */
export function messageOffset(id: Pick<MessageId, 'ledgerId' | 'entryId' | 'batchIndex'>): number {
  return id.ledgerId + id.entryId + Math.max(0, id.batchIndex ?? 0);
}

function putVarint(out: number[], v: number) {
  let n = BigInt.asUintN(64, BigInt(v));
  while (n >= 0x80n) {
    out.push(Number((n & 0x7fn) | 0x80n));
    n >>= 7n;
  }
  out.push(Number(n));
}

export function messageIdToBase64(id: MessageId): string {
  const out: number[] = [];
  putVarint(out, 1 << 3);
  putVarint(out, id.ledgerId);
  putVarint(out, 2 << 3);
  putVarint(out, id.entryId);
  if (id.partition >= 0) {
    putVarint(out, 3 << 3);
    putVarint(out, id.partition);
  }
  if (id.batchIndex !== undefined && id.batchIndex >= 0) {
    putVarint(out, 4 << 3);
    putVarint(out, id.batchIndex);
  }
  return bytesToBase64(new Uint8Array(out));
}

export function messageIdFromBase64(b64: string): MessageId | null {
  let bytes: Uint8Array;
  try {
    bytes = base64ToBytes(b64);
  } catch {
    return null;
  }
  let i = 0;
  const varint = (): bigint | null => {
    let v = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (i >= bytes.length) return null;
      const b = bytes[i++];
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
    return null;
  };
  const id: MessageId = { ledgerId: -1, entryId: -1, partition: -1 };
  let seen = 0;
  while (i < bytes.length) {
    const key = varint();
    if (key === null) return null;
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const v = varint();
      if (v === null) return null;
      const n = Number(BigInt.asIntN(64, v));
      if (field === 1) (id.ledgerId = n), (seen |= 1);
      else if (field === 2) (id.entryId = n), (seen |= 2);
      else if (field === 3) id.partition = Number(BigInt.asIntN(32, v));
      else if (field === 4 && BigInt.asIntN(32, v) >= 0n) id.batchIndex = Number(BigInt.asIntN(32, v));
    } else if (wire === 2) {
      const len = varint();
      if (len === null) return null;
      i += Number(len);
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else return null;
  }
  return seen === 3 ? id : null;
}
