/** Message payloads: base64 as the API sends them, shown as text, pretty JSON, hex or base64. */

export type PayloadFormat = 'text' | 'json' | 'hex' | 'base64';
export const PAYLOAD_FORMATS: PayloadFormat[] = ['text', 'json', 'hex', 'base64'];

export function base64ToBytes(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function bytesToBase64(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

export function textToBase64(text: string): string {
  return bytesToBase64(new TextEncoder().encode(text));
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

export function bytesToText(bytes: Uint8Array): string {
  return utf8.decode(bytes);
}

/** Whether the bytes are valid UTF-8 without control characters other than whitespace. */
export function isPrintable(bytes: Uint8Array): boolean {
  try {
    const s = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    // eslint-disable-next-line no-control-regex
    return !/[\u0000-\u0008\u000e-\u001f\u007f]/.test(s);
  } catch {
    return false;
  }
}

export function bytesToHex(bytes: Uint8Array, max = 4096): string {
  const lines: string[] = [];
  const n = Math.min(bytes.length, max);
  for (let off = 0; off < n; off += 16) {
    const row = bytes.subarray(off, Math.min(off + 16, n));
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${off.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${ascii}`);
  }
  if (bytes.length > max) lines.push(`… ${bytes.length - max} more bytes`);
  return lines.join('\n');
}

/** Pretty JSON, or null when the text is not JSON. */
export function prettyJson(text: string): string | null {
  const t = text.trim();
  if (!t || (t[0] !== '{' && t[0] !== '[' && t[0] !== '"' && !/^(-?\d|true|false|null)/.test(t))) return null;
  try {
    return JSON.stringify(JSON.parse(t), null, 2);
  } catch {
    return null;
  }
}

/** The payload shown in a format; JSON falls back to text, text of binary data to hex. */
export function renderPayload(b64: string, format: PayloadFormat): { text: string; shownAs: PayloadFormat } {
  if (format === 'base64') return { text: b64, shownAs: 'base64' };
  let bytes: Uint8Array;
  try {
    bytes = base64ToBytes(b64);
  } catch {
    return { text: b64, shownAs: 'base64' };
  }
  if (format === 'hex') return { text: bytesToHex(bytes), shownAs: 'hex' };
  if (!isPrintable(bytes)) return { text: bytesToHex(bytes), shownAs: 'hex' };
  const text = bytesToText(bytes);
  if (format === 'json') {
    const pretty = prettyJson(text);
    if (pretty !== null) return { text: pretty, shownAs: 'json' };
  }
  return { text, shownAs: 'text' };
}

/** A one-line preview of a payload. */
export function previewPayload(b64: string, max = 160): string {
  try {
    const bytes = base64ToBytes(b64);
    if (!isPrintable(bytes)) return `<${bytes.length} bytes binary>`;
    const t = bytesToText(bytes.subarray(0, max * 4)).replace(/\s+/g, ' ');
    return t.length > max ? `${t.slice(0, max)}…` : t;
  } catch {
    return b64.slice(0, max);
  }
}

/** Decoded text of a payload for filtering ('' for binary). */
export function payloadText(b64: string): string {
  try {
    const bytes = base64ToBytes(b64);
    return isPrintable(bytes) ? bytesToText(bytes) : '';
  } catch {
    return '';
  }
}
