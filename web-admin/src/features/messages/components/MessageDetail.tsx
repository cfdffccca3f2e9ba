import { CopyButton } from '../../../components/Copy';
import { formatTime } from '../../../lib/format';
import { PAYLOAD_FORMATS, renderPayload, type PayloadFormat } from '../../../lib/payload';

export interface ShownMessage {
  messageId: string;
  payload: string;
  key?: string | null;
  /** The key is a binary key's base64 text (the Java client's `keyBytes`, KEY_VALUE keys). */
  keyBase64?: boolean;
  /** Pulsar's ordering key, base64: Key_Shared routes by it before the key. */
  orderingKey?: string | null;
  properties: Record<string, string>;
  publishTime: string;
  eventTime?: string | null;
  size?: number;
  /** A chunk of a message its producer sent in chunks (shown as stored, not joined). */
  chunk?: { uuid: string; index: number; count: number } | null;
  /** Set on an end-to-end encrypted message: the payload is encrypted, an encrypted batch is one message. */
  encryptionContext?: { keys: Record<string, unknown>; batchSize?: number | null } | null;
}

/** "encrypted batch of 10" / "encrypted": the broker holds no key, so the payload is shown as stored. */
export function encryptedLabel(e: { batchSize?: number | null }): string {
  return e.batchSize ? `encrypted batch of ${e.batchSize}` : 'encrypted';
}

/** Bytes given in base64 as hex pairs ("00 ff 02"), the first 32 and an ellipsis after; the text itself when it is not base64. */
export function hexOf(b64: string): string {
  let bytes: string;
  try {
    bytes = atob(b64);
  } catch {
    return b64;
  }
  const shown = Array.from(bytes.slice(0, 32), (c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join(' ');
  return bytes.length > 32 ? `${shown} …` : shown;
}

/** "chunk 2 of 4": chunks are numbered from 1 for people (from 0 on the wire). */
export function chunkLabel(c: { index: number; count: number }): string {
  return `chunk ${c.index + 1} of ${c.count}`;
}

export function FormatPicker({ value, onChange }: { value: PayloadFormat; onChange: (f: PayloadFormat) => void }) {
  return (
    <div className="field">
      <label htmlFor="payload-format">Show payloads as</label>
      <select id="payload-format" value={value} onChange={(e) => onChange(e.target.value as PayloadFormat)}>
        {PAYLOAD_FORMATS.map((f) => (
          <option key={f} value={f}>
            {f === 'json' ? 'pretty JSON' : f}
          </option>
        ))}
      </select>
    </div>
  );
}

export function MessageDetail({ m, format, onClose }: { m: ShownMessage; format: PayloadFormat; onClose: () => void }) {
  const { text, shownAs } = renderPayload(m.payload, format);
  return (
    <section className="card stack" aria-label={`Message ${m.messageId}`}>
      <div className="row" style={{ justifyContent: 'space-between' }}>
        <h3 style={{ margin: 0 }}>
          Message <span className="mono">{m.messageId}</span>
        </h3>
        <button type="button" className="small" onClick={onClose}>
          Close message
        </button>
      </div>
      <dl className="tiles" style={{ margin: 0 }}>
        <div className="tile">
          <dt>{m.keyBase64 && m.key ? 'Key (binary, hex)' : 'Key'}</dt>
          <dd className="mono">{m.key ? (m.keyBase64 ? hexOf(m.key) : m.key) : '—'}</dd>
        </div>
        {m.orderingKey ? (
          <div className="tile">
            <dt>Ordering key (hex)</dt>
            <dd className="mono">{hexOf(m.orderingKey)}</dd>
          </div>
        ) : null}
        <div className="tile">
          <dt>Published</dt>
          <dd>{formatTime(m.publishTime)}</dd>
        </div>
        <div className="tile">
          <dt>Event time</dt>
          <dd>{m.eventTime ? formatTime(m.eventTime) : '—'}</dd>
        </div>
        {m.chunk ? (
          <div className="tile">
            <dt>Chunked message</dt>
            <dd>
              {chunkLabel(m.chunk)} of message <span className="mono">{m.chunk.uuid}</span>; its payload is that slice of the message as sent
            </dd>
          </div>
        ) : null}
        {m.encryptionContext ? (
          <div className="tile">
            <dt>End-to-end encrypted</dt>
            <dd>
              {encryptedLabel(m.encryptionContext)} with key{Object.keys(m.encryptionContext.keys).length === 1 ? '' : 's'}{' '}
              <span className="mono">{Object.keys(m.encryptionContext.keys).join(', ')}</span>; only its consumers can decrypt the payload
            </dd>
          </div>
        ) : null}
        {m.size !== undefined ? (
          <div className="tile">
            <dt>Size</dt>
            <dd>{m.size} B</dd>
          </div>
        ) : null}
      </dl>
      {Object.keys(m.properties).length ? (
        <div className="table-wrap">
          <table>
            <caption className="sr-only">Properties</caption>
            <thead>
              <tr>
                <th scope="col">Property</th>
                <th scope="col">Value</th>
              </tr>
            </thead>
            <tbody>
              {Object.entries(m.properties).map(([k, v]) => (
                <tr key={k}>
                  <td className="mono">{k}</td>
                  <td className="mono">{v}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p className="muted">No properties.</p>
      )}
      <div>
        <div className="row" style={{ justifyContent: 'space-between' }}>
          <span>
            Payload {shownAs !== format ? <span className="muted">(shown as {shownAs}: not {format === 'json' ? 'JSON' : 'text'})</span> : null}
          </span>
          <CopyButton text={text} label="Copy payload" />
        </div>
        <pre role="textbox" aria-readonly="true" aria-multiline="true" tabIndex={0} aria-label="Payload">
          {text}
        </pre>
      </div>
    </section>
  );
}
