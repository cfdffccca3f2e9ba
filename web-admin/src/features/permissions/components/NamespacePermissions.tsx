import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Curl } from '../../../components/Curl';
import { ErrorNotice, Loading, Notice } from '../../../components/Notice';
import { send } from '../../../lib/api/client';
import { NAMESPACE_OPERATIONS, namespaceResource } from '../../../lib/permissions';
import { useAllowed } from '../../../lib/useAllowed';
import {
  fetchNamespaceGrants,
  fetchSubscriptionRoles,
  grantNamespaceSpec,
  permissionKeys,
  revokeNamespaceSpec,
  setSubscriptionRolesSpec,
} from '../api';
import { GrantForm } from './GrantForm';
import { GrantsTable } from './GrantsTable';
import { RoleCheck } from './RoleCheck';

function SubscriptionRoles({ tenant, namespace, canGrant }: { tenant: string; namespace: string; canGrant: boolean }) {
  const qc = useQueryClient();
  const q = useQuery({ queryKey: permissionKeys.subscriptions(tenant, namespace), queryFn: () => fetchSubscriptionRoles(tenant, namespace) });
  const [sub, setSub] = useState('');
  const [roles, setRoles] = useState('');
  const list = roles.split(/[\s,]+/).filter(Boolean);
  const m = useMutation({
    mutationFn: () => send(setSubscriptionRolesSpec(tenant, namespace, sub, list)),
    onSuccess: () => qc.invalidateQueries({ queryKey: permissionKeys.subscriptions(tenant, namespace) }),
  });
  return (
    <div className="stack">
      {q.isPending ? <Loading /> : null}
      <ErrorNotice error={q.error} />
      {q.data ? (
        Object.keys(q.data).length ? (
          <div className="table-wrap">
            <table>
              <caption className="sr-only">Subscription role lists</caption>
              <thead>
                <tr>
                  <th scope="col">Subscription</th>
                  <th scope="col">Only these roles may consume it</th>
                </tr>
              </thead>
              <tbody>
                {Object.entries(q.data).map(([s, r]) => (
                  <tr key={s}>
                    <td className="mono">{s}</td>
                    <td className="mono">{r.join(', ')}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <Notice>No subscription is restricted: every role with consume may use any subscription.</Notice>
        )
      ) : null}
      {canGrant ? (
        <form
          className="inline"
          aria-label="Set a subscription's role list"
          onSubmit={(e) => {
            e.preventDefault();
            m.mutate();
          }}
        >
          <div className="field">
            <label htmlFor="subroles-sub">Subscription</label>
            <input id="subroles-sub" required value={sub} onChange={(e) => setSub(e.target.value.trim())} />
          </div>
          <div className="field">
            <label htmlFor="subroles-roles">Roles (empty lifts the restriction)</label>
            <input id="subroles-roles" value={roles} onChange={(e) => setRoles(e.target.value)} />
          </div>
          <button type="submit" disabled={!sub || m.isPending}>
            Set role list
          </button>
          <div style={{ flexBasis: '100%' }}>
            <ErrorNotice error={m.error} action="Setting the role list" />
            <Curl spec={setSubscriptionRolesSpec(tenant, namespace, sub || '{subscription}', list)} label="set subscription role list" />
          </div>
        </form>
      ) : null}
    </div>
  );
}

export function NamespacePermissions({ tenant, namespace, role, onRole }: { tenant: string; namespace: string; role?: string; onRole: (r?: string) => void }) {
  const qc = useQueryClient();
  const res = namespaceResource(tenant, namespace);
  const { allowed, loading } = useAllowed([
    { operation: 'GetPermissions', resource: res },
    { operation: 'GrantPermission', resource: res },
  ]);
  const canRead = allowed('GetPermissions', res);
  const canGrant = allowed('GrantPermission', res);
  const q = useQuery({ queryKey: permissionKeys.namespace(tenant, namespace), queryFn: () => fetchNamespaceGrants(tenant, namespace), enabled: canRead });
  const refresh = () => qc.invalidateQueries({ queryKey: permissionKeys.all });
  if (loading) return <Loading />;
  if (!canRead) return <Notice>Only the tenant's admins can see and change permissions.</Notice>;
  return (
    <div className="stack">
      <h2>Namespace grants</h2>
      <p className="muted">Grants on the namespace apply to all its topics. Tenant admins may do everything without a grant.</p>
      {q.isPending ? <Loading /> : null}
      <ErrorNotice error={q.error} />
      {q.data ? <GrantsTable grants={q.data} caption="Namespace grants" revokeSpec={(r) => revokeNamespaceSpec(tenant, namespace, r)} onDone={refresh} canRevoke={() => canGrant} /> : null}
      {canGrant ? <GrantForm idPrefix="ns-grant" what="namespace" specFor={(r, a) => grantNamespaceSpec(tenant, namespace, r, a)} onDone={refresh} /> : null}
      <h2>Subscription role lists</h2>
      <SubscriptionRoles tenant={tenant} namespace={namespace} canGrant={canGrant} />
      <h2>What can a role do here?</h2>
      <RoleCheck resource={res} operations={NAMESPACE_OPERATIONS} role={role} onRole={onRole} />
    </div>
  );
}
