import { useState } from 'react';
import { useMutation } from '@tanstack/react-query';
import { Curl } from '../../../components/Curl';
import { ErrorNotice, Notice } from '../../../components/Notice';
import { send } from '../../../lib/api/client';
import { produceSpec, type ProduceForm, type TopicRef } from '../api';

interface ProduceResult {
  messagePublishResults: { messageId: string; errorCode: number; errorMsg?: string }[];
}

export function ProduceView({ t, partitions }: { t: TopicRef; partitions: number }) {
  const [f, setF] = useState<ProduceForm>({ key: '', properties: '', payload: '', delayMs: '', partition: '' });
  const spec = produceSpec(t, f);
  const m = useMutation({ mutationFn: () => send<ProduceResult>(spec!) });
  const set = (k: keyof ProduceForm) => (e: { target: { value: string } }) => setF({ ...f, [k]: e.target.value });
  return (
    <form
      className="stack card"
      aria-label="Produce a message"
      onSubmit={(e) => {
        e.preventDefault();
        m.mutate();
      }}
    >
      <div className="row">
        <div className="field">
          <label htmlFor="produce-key">Key</label>
          <input id="produce-key" value={f.key} onChange={set('key')} />
        </div>
        <div className="field">
          <label htmlFor="produce-delay">Deliver after (ms)</label>
          <input id="produce-delay" type="number" min={0} value={f.delayMs} onChange={set('delayMs')} aria-describedby="produce-delay-hint" />
          <span className="hint" id="produce-delay-hint">
            Delayed delivery applies to Shared and Key_Shared subscriptions.
          </span>
        </div>
        {partitions > 0 ? (
          <div className="field">
            <label htmlFor="produce-partition">Partition</label>
            <select id="produce-partition" value={f.partition} onChange={set('partition')}>
              <option value="">by key (or round robin)</option>
              {Array.from({ length: partitions }, (_, i) => (
                <option key={i} value={i}>
                  {i}
                </option>
              ))}
            </select>
          </div>
        ) : null}
      </div>
      <div className="field">
        <label htmlFor="produce-properties">Properties (name=value, one per line)</label>
        <textarea id="produce-properties" value={f.properties} onChange={set('properties')} style={{ minHeight: '3.5rem' }} aria-invalid={!spec} />
      </div>
      <div className="field">
        <label htmlFor="produce-payload">Payload (text)</label>
        <textarea id="produce-payload" value={f.payload} onChange={set('payload')} />
      </div>
      {!spec ? <Notice kind="error">Each property line needs a name, an equals sign and a value.</Notice> : null}
      <ErrorNotice error={m.error} action="Producing" />
      {m.data ? (
        <Notice kind="ok">
          Produced: {m.data.messagePublishResults.map((r) => (r.errorCode === 0 ? r.messageId : `error ${r.errorCode}: ${r.errorMsg ?? ''}`)).join(', ')}
        </Notice>
      ) : null}
      <div>
        <button type="submit" className="primary" disabled={!spec || m.isPending}>
          Produce message
        </button>
      </div>
      {spec ? <Curl spec={spec} label="produce" /> : null}
    </form>
  );
}
