import { describe, expect, it } from 'vitest';
import { base64ToBytes, bytesToHex, isPrintable, prettyJson, previewPayload, renderPayload, textToBase64 } from './payload';

describe('payload decoding', () => {
  it('text and UTF-8', () => {
    const b64 = textToBase64('héllo wörld');
    expect(renderPayload(b64, 'text')).toEqual({ text: 'héllo wörld', shownAs: 'text' });
    expect(renderPayload(b64, 'base64').text).toBe(b64);
  });
  it('pretty JSON, falling back to text', () => {
    const b64 = textToBase64('{"order":1,"items":["a"]}');
    expect(renderPayload(b64, 'json')).toEqual({ text: '{\n  "order": 1,\n  "items": [\n    "a"\n  ]\n}', shownAs: 'json' });
    expect(renderPayload(textToBase64('not json'), 'json')).toEqual({ text: 'not json', shownAs: 'text' });
    expect(prettyJson('42')).toBe('42');
    expect(prettyJson('')).toBeNull();
  });
  it('binary shows as hex', () => {
    const b64 = btoa(String.fromCharCode(0, 1, 2, 255, 65));
    expect(isPrintable(base64ToBytes(b64))).toBe(false);
    const r = renderPayload(b64, 'text');
    expect(r.shownAs).toBe('hex');
    expect(r.text).toBe(`00000000  ${'00 01 02 ff 41'.padEnd(47)}  ....A`);
    expect(previewPayload(b64)).toBe('<5 bytes binary>');
  });
  it('hex dump of 16-byte rows', () => {
    const bytes = new TextEncoder().encode('0123456789abcdefXYZ');
    expect(bytesToHex(bytes).split('\n')).toHaveLength(2);
  });
  it('previews are one line and bounded', () => {
    expect(previewPayload(textToBase64('a\nb\n  c'))).toBe('a b c');
    expect(previewPayload(textToBase64('x'.repeat(500)), 10)).toBe('xxxxxxxxxx…');
  });
});
