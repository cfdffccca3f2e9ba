import { Link } from '@tanstack/react-router';
import type { MessageMode } from '../../../lib/search';
import type { TopicRef } from '../api';
import { BrowseView, type BrowseState } from './BrowseView';
import { ProduceView } from './ProduceView';
import { TailView } from './TailView';

export interface MessagesState extends BrowseState {
  mode?: MessageMode;
}

const MODES: { mode: MessageMode; label: string }[] = [
  { mode: 'browse', label: 'Browse' },
  { mode: 'tail', label: 'Live tail' },
  { mode: 'produce', label: 'Produce' },
];

export function MessagesPanel({ t, partitions, state, onState, canProduce }: { t: TopicRef; partitions: number; state: MessagesState; onState: (s: Partial<MessagesState>) => void; canProduce: boolean }) {
  const mode = state.mode ?? 'browse';
  const modes = MODES.filter((m) => m.mode !== 'produce' || canProduce);
  return (
    <>
      <nav className="subtabs" aria-label="Messages">
        {modes.map((m) => (
          <Link key={m.mode} to="." activeOptions={{ exact: true, includeSearch: true }} search={((prev: Record<string, unknown>) => ({ ...prev, mode: m.mode === 'browse' ? undefined : m.mode })) as never} aria-current={mode === m.mode ? 'page' : undefined}>
            {m.label}
          </Link>
        ))}
      </nav>
      {mode === 'browse' ? <BrowseView t={t} partitions={partitions} state={state} onState={onState} /> : null}
      {mode === 'tail' ? (
        <TailView
          t={t}
          filter={{ key: state.key, prop: state.prop, text: state.text }}
          format={state.format ?? 'text'}
          onFilter={(f) => onState({ key: f.key, prop: f.prop, text: f.text })}
          onFormat={(f) => onState({ format: f })}
        />
      ) : null}
      {mode === 'produce' && canProduce ? <ProduceView t={t} partitions={partitions} /> : null}
    </>
  );
}
