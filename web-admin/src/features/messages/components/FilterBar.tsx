import { useState } from 'react';
import type { MessageFilter } from '../api';

/** Key, property and payload filters, kept in the URL. */
export function FilterBar({ value, onChange }: { value: MessageFilter; onChange: (f: MessageFilter) => void }) {
  const [draft, setDraft] = useState(value);
  return (
    <form
      className="inline"
      role="search"
      aria-label="Filter messages"
      onSubmit={(e) => {
        e.preventDefault();
        onChange(draft);
      }}
    >
      <div className="field">
        <label htmlFor="filter-key">Key contains</label>
        <input id="filter-key" value={draft.key ?? ''} onChange={(e) => setDraft({ ...draft, key: e.target.value || undefined })} />
      </div>
      <div className="field">
        <label htmlFor="filter-prop">Property (name or name=value)</label>
        <input id="filter-prop" value={draft.prop ?? ''} onChange={(e) => setDraft({ ...draft, prop: e.target.value || undefined })} />
      </div>
      <div className="field">
        <label htmlFor="filter-text">Payload contains</label>
        <input id="filter-text" value={draft.text ?? ''} onChange={(e) => setDraft({ ...draft, text: e.target.value || undefined })} />
      </div>
      <button type="submit">Apply filter</button>
      <button
        type="button"
        onClick={() => {
          setDraft({});
          onChange({});
        }}
      >
        Clear filter
      </button>
    </form>
  );
}
