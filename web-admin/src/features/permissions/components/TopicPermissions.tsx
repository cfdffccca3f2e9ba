import { useQuery, useQueryClient } from '@tanstack/react-query';
import { ErrorNotice, Loading, Notice } from '../../../components/Notice';
import { get } from '../../../lib/api/client';
import type { TenantInfo } from '../../../lib/api/types';
import { consumersOf, TOPIC_OPERATIONS, topicResource } from '../../../lib/permissions';
import { useAllowed } from '../../../lib/useAllowed';
import { fetchSubscriptionRoles, fetchTopicGrants, grantTopicSpec, permissionKeys, revokeTopicSpec } from '../api';
import { GrantForm } from './GrantForm';
import { GrantsTable } from './GrantsTable';
import { RoleCheck } from './RoleCheck';

export function TopicPermissions({ tenant, namespace, topic, role, onRole }: { tenant: string; namespace: string; topic: string; role?: string; onRole: (r?: string) => void }) {
  const qc = useQueryClient();
  const res = topicResource(tenant, namespace, topic);
  const { allowed, loading } = useAllowed([
    { operation: 'GetPermissions', resource: res },
    { operation: 'GrantPermission', resource: res },
  ]);
  const canRead = allowed('GetPermissions', res);
  const grants = useQuery({ queryKey: permissionKeys.topic(tenant, namespace, topic), queryFn: () => fetchTopicGrants(tenant, namespace, topic), enabled: canRead });
  const subRoles = useQuery({ queryKey: permissionKeys.subscriptions(tenant, namespace), queryFn: () => fetchSubscriptionRoles(tenant, namespace), enabled: canRead });
  const tenantInfo = useQuery({ queryKey: ['tenants', 'detail', tenant], queryFn: () => get<TenantInfo>('/admin/v2/tenants/{tenant}', { tenant }), enabled: canRead });
  if (loading) return <Loading />;
  if (!canRead) return <Notice>Only the tenant's admins can see and change permissions.</Notice>;
  const refresh = () => qc.invalidateQueries({ queryKey: permissionKeys.all });
  const consumers = grants.data && tenantInfo.data ? consumersOf(grants.data, tenantInfo.data.adminRoles ?? [], subRoles.data ?? {}) : null;
  return (
    <div className="stack">
      <h2>Who can consume this topic?</h2>
      {consumers ? (
        <div className="table-wrap">
          <table>
            <caption className="sr-only">Roles that can consume this topic</caption>
            <thead>
              <tr>
                <th scope="col">Role</th>
                <th scope="col">Because</th>
                <th scope="col">Except subscriptions</th>
              </tr>
            </thead>
            <tbody>
              {consumers.map((c) => (
                <tr key={c.role}>
                  <td className="mono">{c.role}</td>
                  <td>{c.why}</td>
                  <td className="mono">{c.except.join(', ') || '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <Loading />
      )}
      <p className="muted">Superusers can always consume. Subscription role lists keep a role out of the subscriptions that do not list it.</p>
      <h2>Grants in effect (namespace and topic)</h2>
      <ErrorNotice error={grants.error} />
      {grants.data ? (
        <GrantsTable grants={grants.data} caption="Grants on this topic" revokeSpec={(r) => revokeTopicSpec(tenant, namespace, topic, r)} onDone={refresh} canRevoke={() => allowed('GrantPermission', res)} />
      ) : null}
      <p className="muted">Revoking here removes a topic-level grant; namespace grants are revoked on the namespace.</p>
      {allowed('GrantPermission', res) ? <GrantForm idPrefix="topic-grant" what="topic" specFor={(r, a) => grantTopicSpec(tenant, namespace, topic, r, a)} onDone={refresh} /> : null}
      <h2>What can a role do on this topic?</h2>
      <RoleCheck resource={res} operations={TOPIC_OPERATIONS} role={role} onRole={onRole} />
    </div>
  );
}
