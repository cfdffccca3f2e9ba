import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useNavigate } from '@tanstack/react-router';
import { ConfirmDialog } from '../../../components/Dialog';
import { Curl } from '../../../components/Curl';
import { ErrorNotice, Loading, Notice } from '../../../components/Notice';
import { get, send } from '../../../lib/api/client';
import type { TenantInfo } from '../../../lib/api/types';
import { useAllowed } from '../../../lib/useAllowed';
import { deleteTenantSpec, fetchTenant, tenantKeys, updateTenantSpec } from '../api';
import { TenantFields } from './TenantForm';

/** What deleting a tenant removes: its namespaces and their topics. */
function DeletePreview({ tenant }: { tenant: string }) {
  const q = useQuery({
    queryKey: [...tenantKeys.detail(tenant), 'delete-preview'],
    queryFn: async () => {
      const namespaces = await get<string[]>('/admin/v2/namespaces/{tenant}', { tenant });
      const counts = await Promise.all(
        namespaces.map(async (ns) => {
          const [, n] = ns.split('/');
          const topics = await get<string[]>('/admin/v2/namespaces/{tenant}/{namespace}/topics', { tenant, namespace: n });
          return { ns, topics: topics.length };
        }),
      );
      return counts;
    },
  });
  if (q.isPending) return <Loading what="Listing what will be deleted" />;
  if (q.error) return <ErrorNotice error={q.error} />;
  if (!q.data.length) return <p>The tenant has no namespaces.</p>;
  return (
    <>
      <p>
        This deletes <strong>{q.data.length}</strong> namespace(s) and <strong>{q.data.reduce((a, b) => a + b.topics, 0)}</strong> topic
        partition(s) with all their messages:
      </p>
      <ul>
        {q.data.map((d) => (
          <li key={d.ns}>
            {d.ns}: {d.topics} topic partition(s)
          </li>
        ))}
      </ul>
    </>
  );
}

export function TenantSettings({ tenant }: { tenant: string }) {
  const qc = useQueryClient();
  const navigate = useNavigate();
  const q = useQuery({ queryKey: tenantKeys.detail(tenant), queryFn: () => fetchTenant(tenant) });
  const { allowed } = useAllowed([
    { operation: 'UpdateTenant', resource: tenant },
    { operation: 'DeleteTenant', resource: tenant },
  ]);
  const [draft, setDraft] = useState<TenantInfo | null>(null);
  const [deleting, setDeleting] = useState(false);
  const info = draft ?? q.data;
  const save = useMutation({
    mutationFn: () => send(updateTenantSpec(tenant, info!)),
    onSuccess: () => {
      setDraft(null);
      qc.invalidateQueries({ queryKey: tenantKeys.all });
    },
  });
  const del = useMutation({
    mutationFn: () => send(deleteTenantSpec(tenant, true)),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: tenantKeys.all });
      navigate({ to: '/tenants' });
    },
  });
  if (q.isPending) return <Loading />;
  if (q.error) return <ErrorNotice error={q.error} />;
  const canEdit = allowed('UpdateTenant', tenant);
  return (
    <div className="stack">
      <h2>Settings</h2>
      {canEdit ? (
        <form
          className="stack card"
          onSubmit={(e) => {
            e.preventDefault();
            save.mutate();
          }}
        >
          <TenantFields key={q.dataUpdatedAt} value={info!} onChange={setDraft} idPrefix="edit-tenant" />
          <ErrorNotice error={save.error} action="Saving the tenant" />
          {save.isSuccess && !draft ? <Notice kind="ok">Saved.</Notice> : null}
          <Curl spec={updateTenantSpec(tenant, info!)} label="update tenant" />
          <div>
            <button type="submit" className="primary" disabled={!draft || save.isPending}>
              Save tenant
            </button>
          </div>
        </form>
      ) : (
        <dl>
          <dt>Admin roles</dt>
          <dd className="mono">{(q.data.adminRoles ?? []).join(', ') || '—'}</dd>
          <dt>Allowed clusters</dt>
          <dd>{(q.data.allowedClusters ?? []).join(', ') || '—'}</dd>
        </dl>
      )}
      {allowed('DeleteTenant', tenant) ? (
        <div className="card stack">
          <h3>Delete the tenant</h3>
          <div>
            <button type="button" className="danger" onClick={() => setDeleting(true)}>
              Delete tenant {tenant}
            </button>
          </div>
          <Curl spec={deleteTenantSpec(tenant, true)} label="delete tenant" />
        </div>
      ) : null}
      <ConfirmDialog
        open={deleting}
        title={`Delete tenant ${tenant}?`}
        confirmLabel="Delete tenant"
        busy={del.isPending}
        onClose={() => setDeleting(false)}
        onConfirm={() => del.mutate()}
      >
        {deleting ? <DeletePreview tenant={tenant} /> : null}
        <ErrorNotice error={del.error} action="Deleting the tenant" />
      </ConfirmDialog>
    </div>
  );
}
