import { useRef } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import { formatTime } from '../../../lib/format';
import { previewPayload } from '../../../lib/payload';
import { chunkLabel, encryptedLabel, type ShownMessage } from './MessageDetail';

const ROW = 32;

/** Messages as rows (virtualized); a row opens the message. */
export function MessageList({ messages, label, selected, onSelect }: { messages: ShownMessage[]; label: string; selected?: string; onSelect: (id: string) => void }) {
  const scroller = useRef<HTMLDivElement>(null);
  const v = useVirtualizer({ count: messages.length, getScrollElement: () => scroller.current, estimateSize: () => ROW, overscan: 10 });
  return (
    <div className="vlist msg-list" ref={scroller} role="list" aria-label={label} style={{ height: Math.min(messages.length * ROW + 2, 420) }}>
      <div style={{ height: v.getTotalSize(), position: 'relative' }}>
        {v.getVirtualItems().map((row) => {
          const m = messages[row.index];
          return (
            <div key={row.key} role="listitem" className="vrow msg-row" style={{ top: row.start, height: ROW, background: selected === m.messageId ? 'var(--accent-soft)' : undefined }}>
              <button type="button" className="link mono id" onClick={() => onSelect(m.messageId)} aria-label={`Open message ${m.messageId}`}>
                {m.messageId}
              </button>
              <span className="muted">{formatTime(m.publishTime)}</span>
              {m.key ? <span className="badge mono">{m.key}</span> : null}
              {m.chunk ? <span className="badge">{chunkLabel(m.chunk)}</span> : null}
              {m.encryptionContext ? <span className="badge">{encryptedLabel(m.encryptionContext)}</span> : null}
              <span className="preview mono">{previewPayload(m.payload)}</span>
            </div>
          );
        })}
      </div>
    </div>
  );
}
