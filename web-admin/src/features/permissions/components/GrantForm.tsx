import { useState } from 'react';
import { useMutation } from '@tanstack/react-query';
import { Curl } from '../../../components/Curl';
import { ErrorNotice } from '../../../components/Notice';
import { send, type RequestSpec } from '../../../lib/api/client';
import { ACTIONS } from '../api';

/** Grants a role actions (replaces what it had at this level). */
export function GrantForm({ idPrefix, specFor, onDone, what }: { idPrefix: string; specFor: (role: string, actions: string[]) => RequestSpec; onDone: () => void; what: string }) {
  const [role, setRole] = useState('');
  const [actions, setActions] = useState<string[]>(['produce', 'consume']);
  const m = useMutation({
    mutationFn: () => send(specFor(role, actions)),
    onSuccess: () => {
      setRole('');
      onDone();
    },
  });
  return (
    <form
      className="inline card"
      aria-label={`Grant permissions on the ${what}`}
      onSubmit={(e) => {
        e.preventDefault();
        m.mutate();
      }}
    >
      <div className="field">
        <label htmlFor={`${idPrefix}-role`}>Role</label>
        <input id={`${idPrefix}-role`} required value={role} onChange={(e) => setRole(e.target.value.trim())} placeholder="app@acme" />
      </div>
      <fieldset>
        <legend>Actions</legend>
        <div className="row">
          {ACTIONS.map((a) => (
            <label key={a} className="row">
              <input type="checkbox" checked={actions.includes(a)} onChange={(e) => setActions(e.target.checked ? [...actions, a] : actions.filter((x) => x !== a))} />
              {a}
            </label>
          ))}
        </div>
      </fieldset>
      <button type="submit" className="primary" disabled={!role || !actions.length || m.isPending}>
        Grant on the {what}
      </button>
      <div style={{ flexBasis: '100%' }}>
        <ErrorNotice error={m.error} action="Granting" />
        <Curl spec={specFor(role || '{role}', actions)} label={`grant on the ${what}`} />
      </div>
    </form>
  );
}
