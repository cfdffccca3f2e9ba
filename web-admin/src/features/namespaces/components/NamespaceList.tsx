import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link, useNavigate } from '@tanstack/react-router';
import { ConfirmDialog } from '../../../components/Dialog';
import { Curl } from '../../../components/Curl';
import { ErrorNotice, Loading, Notice } from '../../../components/Notice';
import { get, send } from '../../../lib/api/client';
import { namespaceResource, tenantResource } from '../../../lib/permissions';
import { useAllowed } from '../../../lib/useAllowed';
import { createNamespaceSpec, deleteNamespaceSpec, fetchNamespaces, namespaceKeys } from '../api';

function DeleteNamespace({ tenant, namespace, onClose }: { tenant: string; namespace: string; onClose: () => void }) {
  const qc = useQueryClient();
  const topics = useQuery({
    queryKey: ['topics', 'all', tenant, namespace],
    queryFn: () => get<string[]>('/admin/v2/namespaces/{tenant}/{namespace}/topics', { tenant, namespace }),
  });
  const m = useMutation({
    mutationFn: () => send(deleteNamespaceSpec({ tenant, namespace }, true)),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: namespaceKeys.list(tenant) });
      onClose();
    },
  });
  return (
    <ConfirmDialog open title={`Delete namespace ${tenant}/${namespace}?`} confirmLabel="Delete namespace" busy={m.isPending} onClose={onClose} onConfirm={() => m.mutate()}>
      {topics.isPending ? <Loading what="Listing its topics" /> : null}
      {topics.data ? (
        topics.data.length ? (
          <>
            <p>
              This deletes <strong>{topics.data.length}</strong> topic partition(s) and all their messages:
            </p>
            <pre style={{ maxHeight: '12rem' }}>{topics.data.slice(0, 200).join('\n') + (topics.data.length > 200 ? `\n… ${topics.data.length - 200} more` : '')}</pre>
          </>
        ) : (
          <p>The namespace has no topics.</p>
        )
      ) : null}
      <ErrorNotice error={topics.error} />
      <ErrorNotice error={m.error} action="Deleting the namespace" />
      <Curl spec={deleteNamespaceSpec({ tenant, namespace }, true)} label="delete namespace" />
    </ConfirmDialog>
  );
}

export function NamespaceList({ tenant }: { tenant: string }) {
  const qc = useQueryClient();
  const navigate = useNavigate();
  const q = useQuery({ queryKey: namespaceKeys.list(tenant), queryFn: () => fetchNamespaces(tenant) });
  const names = (q.data ?? []).map((n) => n.split('/')[1] ?? n);
  const { allowed } = useAllowed([
    { operation: 'CreateNamespace', resource: tenantResource(tenant) },
    ...names.slice(0, 150).map((n) => ({ operation: 'DeleteNamespace', resource: namespaceResource(tenant, n) })),
  ]);
  const [name, setName] = useState('');
  const [deleting, setDeleting] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: () => send(createNamespaceSpec({ tenant, namespace: name })),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: namespaceKeys.list(tenant) });
      navigate({ to: '/tenants/$tenant/namespaces/$namespace', params: { tenant, namespace: name } });
    },
  });
  return (
    <div className="stack">
      {allowed('CreateNamespace', tenantResource(tenant)) ? (
        <form
          className="inline card"
          onSubmit={(e) => {
            e.preventDefault();
            create.mutate();
          }}
        >
          <div className="field">
            <label htmlFor="new-namespace">New namespace</label>
            <input id="new-namespace" required value={name} onChange={(e) => setName(e.target.value.trim())} placeholder="orders" />
          </div>
          <button type="submit" className="primary" disabled={!name || create.isPending}>
            Create namespace
          </button>
          <div style={{ flexBasis: '100%' }}>
            <ErrorNotice error={create.error} action="Creating the namespace" />
            <Curl spec={createNamespaceSpec({ tenant, namespace: name || '{namespace}' })} label="create namespace" />
          </div>
        </form>
      ) : null}
      {q.isPending ? <Loading /> : null}
      <ErrorNotice error={q.error} action="Listing namespaces" />
      {q.data && !q.data.length ? <Notice>No namespaces yet.</Notice> : null}
      {q.data && q.data.length ? (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Namespace</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {names.map((n) => (
                <tr key={n}>
                  <td>
                    <Link to="/tenants/$tenant/namespaces/$namespace" params={{ tenant, namespace: n }}>
                      {tenant}/{n}
                    </Link>
                  </td>
                  <td>
                    {allowed('DeleteNamespace', namespaceResource(tenant, n)) ? (
                      <button type="button" className="small danger" onClick={() => setDeleting(n)} aria-label={`Delete namespace ${tenant}/${n}`}>
                        Delete
                      </button>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <Curl spec={{ method: 'GET', path: '/admin/v2/namespaces/{tenant}', params: { tenant } }} label="list namespaces" />
      {deleting ? <DeleteNamespace tenant={tenant} namespace={deleting} onClose={() => setDeleting(null)} /> : null}
    </div>
  );
}
