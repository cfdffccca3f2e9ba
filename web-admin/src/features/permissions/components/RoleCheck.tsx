import { useState } from 'react';
import { ErrorNotice, Loading } from '../../../components/Notice';
import { useAllowed } from '../../../lib/useAllowed';

/** "What can role X do here": asks the API to evaluate operations for another role. */
export function RoleCheck({ resource, operations, role, onRole, subscription }: { resource: string; operations: { operation: string; label: string; subscription?: boolean }[]; role?: string; onRole: (r?: string) => void; subscription?: string }) {
  const [text, setText] = useState(role ?? '');
  const checks = role ? operations.map((o) => ({ operation: o.operation, resource, subscription: o.subscription ? (subscription ?? 'any-subscription') : undefined })) : [];
  const { allowed, loading, error } = useAllowed(checks, role);
  return (
    <div className="stack">
      <form
        className="inline"
        aria-label="What can a role do here"
        onSubmit={(e) => {
          e.preventDefault();
          onRole(text || undefined);
        }}
      >
        <div className="field">
          <label htmlFor="role-check">What can this role do here?</label>
          <input id="role-check" value={text} onChange={(e) => setText(e.target.value.trim())} placeholder="app@acme" />
        </div>
        <button type="submit">Check role</button>
      </form>
      {role ? (
        loading ? (
          <Loading what={`Asking what ${role} may do`} />
        ) : error ? (
          <ErrorNotice error={error} action="Checking the role" />
        ) : (
          <div className="table-wrap">
            <table>
              <caption className="sr-only">What {role} may do</caption>
              <thead>
                <tr>
                  <th scope="col">{role} may…</th>
                  <th scope="col">Allowed</th>
                </tr>
              </thead>
              <tbody>
                {checks.map((c, i) => {
                  const ok = allowed(c.operation, c.resource, c.subscription);
                  return (
                    <tr key={c.operation}>
                      <td>{operations[i].label}</td>
                      <td>
                        <span className={`badge ${ok ? 'ok' : 'danger'}`}>{ok ? 'yes' : 'no'}</span>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )
      ) : null}
    </div>
  );
}
