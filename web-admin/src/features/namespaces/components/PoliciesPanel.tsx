import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Curl } from '../../../components/Curl';
import { ErrorNotice, Loading } from '../../../components/Notice';
import { send, type RequestSpec } from '../../../lib/api/client';
import { get } from '../../../lib/api/client';
import type { Policies, RuntimeConfig } from '../../../lib/api/types';
import { namespaceResource } from '../../../lib/permissions';
import { useAllowed } from '../../../lib/useAllowed';
import { fetchPolicies, namespaceKeys } from '../api';
import { effectivePolicies, type EffectivePolicy } from '../effective';
import { AppliedLimits } from './AppliedLimits';
import { usePolicyEditor } from './PolicyEditors';

type Ns = { tenant: string; namespace: string };

function Editor({ row, ns, policies, onDone }: { row: EffectivePolicy; ns: Ns; policies: Policies; onDone: () => void }) {
  const qc = useQueryClient();
  const { fields, set, remove } = usePolicyEditor(row.key, ns, policies);
  const m = useMutation({
    mutationFn: (spec: RequestSpec) => send(spec),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: namespaceKeys.policies(ns.tenant, ns.namespace) });
      onDone();
    },
  });
  return (
    <form
      className="stack"
      aria-label={`Edit ${row.label}`}
      onSubmit={(e) => {
        e.preventDefault();
        m.mutate(set);
      }}
    >
      <div className="row" style={{ alignItems: 'flex-end' }}>
        {fields}
      </div>
      <ErrorNotice error={m.error} action={`Setting ${row.label}`} />
      <div className="row">
        <button type="submit" className="primary" disabled={m.isPending}>
          Set {row.label.toLowerCase()}
        </button>
        {remove ? (
          <button type="button" disabled={m.isPending} onClick={() => m.mutate(remove)}>
            Use the broker default
          </button>
        ) : null}
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
      <Curl spec={remove ? [set, remove] : set} label={`set ${row.label.toLowerCase()}`} />
    </form>
  );
}

export function PoliciesPanel({ tenant, namespace }: Ns) {
  const ns = { tenant, namespace };
  const q = useQuery({ queryKey: namespaceKeys.policies(tenant, namespace), queryFn: () => fetchPolicies(tenant, namespace) });
  const rc = useQuery({ queryKey: ['cluster', 'runtime-config'], queryFn: () => get<RuntimeConfig>('/admin/v2/brokers/configuration/runtime'), staleTime: 300_000 });
  const res = namespaceResource(tenant, namespace);
  const { allowed } = useAllowed([{ operation: 'SetNamespacePolicy', resource: res }]);
  const [editing, setEditing] = useState<string | null>(null);
  if (q.isPending) return <Loading what="Reading the policies" />;
  if (q.error) return <ErrorNotice error={q.error} action="Reading the policies" />;
  const rows = effectivePolicies(q.data, rc.data);
  const canSet = allowed('SetNamespacePolicy', res);
  return (
    <>
      <p className="muted">Each policy shows the value in effect and whether it is set on this namespace or inherited from the broker default.</p>
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Policy</th>
              <th scope="col">Effective value</th>
              <th scope="col">Source</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={row.key}>
                <th scope="row" style={{ background: 'transparent', color: 'var(--text)' }}>
                  {row.label}
                </th>
                <td colSpan={editing === row.key ? 3 : 1}>
                  {editing === row.key ? <Editor row={row} ns={ns} policies={q.data} onDone={() => setEditing(null)} /> : row.value}
                </td>
                {editing === row.key ? null : (
                  <>
                    <td>
                      <span className={`badge ${row.source === 'namespace' ? 'set' : 'inherited'}`}>
                        {row.source === 'namespace' ? 'set here' : 'inherited'}
                      </span>
                    </td>
                    <td>
                      {canSet ? (
                        <button type="button" className="small" onClick={() => setEditing(row.key)} aria-label={`Edit ${row.label}`}>
                          Edit
                        </button>
                      ) : null}
                    </td>
                  </>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <Curl spec={{ method: 'GET', path: '/admin/v2/namespaces/{tenant}/{namespace}', params: ns }} label="read all policies" />
      <AppliedLimits tenant={tenant} namespace={namespace} />
    </>
  );
}
