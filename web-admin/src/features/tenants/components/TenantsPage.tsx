import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link, useNavigate } from '@tanstack/react-router';
import { Curl } from '../../../components/Curl';
import { Dialog } from '../../../components/Dialog';
import { GoTo } from '../../../components/GoTo';
import { PageHeader } from '../../../components/Layout';
import { ErrorNotice, Loading, Notice } from '../../../components/Notice';
import { send } from '../../../lib/api/client';
import type { TenantInfo } from '../../../lib/api/types';
import { useAllowed } from '../../../lib/useAllowed';
import { createTenantSpec, fetchTenants, tenantKeys } from '../api';
import { TenantFields } from './TenantForm';

function CreateTenant({ open, onClose }: { open: boolean; onClose: () => void }) {
  const qc = useQueryClient();
  const navigate = useNavigate();
  const [name, setName] = useState('');
  const [info, setInfo] = useState<TenantInfo>({ adminRoles: [], allowedClusters: [] });
  const spec = createTenantSpec(name || '{tenant}', info);
  const m = useMutation({
    mutationFn: () => send(createTenantSpec(name, info)),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: tenantKeys.all });
      onClose();
      navigate({ to: '/tenants/$tenant', params: { tenant: name } });
    },
  });
  return (
    <Dialog open={open} title="Create a tenant" onClose={onClose}>
      <form
        className="stack"
        onSubmit={(e) => {
          e.preventDefault();
          m.mutate();
        }}
      >
        <div className="field">
          <label htmlFor="tenant-name">Tenant name</label>
          <input id="tenant-name" required value={name} onChange={(e) => setName(e.target.value.trim())} pattern="[A-Za-z0-9_.=:\-]+" />
        </div>
        <TenantFields value={info} onChange={setInfo} idPrefix="create-tenant" />
        <ErrorNotice error={m.error} action="Creating the tenant" />
        <Curl spec={spec} label="create tenant" />
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={!name || m.isPending}>
            Create tenant
          </button>
        </div>
      </form>
    </Dialog>
  );
}

export function TenantsPage() {
  const q = useQuery({ queryKey: tenantKeys.list(), queryFn: fetchTenants });
  const { allowed } = useAllowed([{ operation: 'CreateTenant', resource: '' }]);
  const [creating, setCreating] = useState(false);
  return (
    <>
      <PageHeader
        title="Tenants"
        actions={
          allowed('CreateTenant', '') ? (
            <button type="button" className="primary" onClick={() => setCreating(true)}>
              Create tenant
            </button>
          ) : null
        }
      >
        <p className="muted">The tenants you administer.</p>
      </PageHeader>
      {q.isPending ? <Loading /> : null}
      <ErrorNotice error={q.error} action="Listing tenants" />
      {q.data && q.data.length === 0 ? (
        <Notice>
          You administer no tenant. If you were granted access to a namespace or topic, open it by name below.
        </Notice>
      ) : null}
      {q.data && q.data.length > 0 ? (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Tenant</th>
              </tr>
            </thead>
            <tbody>
              {q.data.map((t) => (
                <tr key={t}>
                  <td>
                    <Link to="/tenants/$tenant" params={{ tenant: t }}>
                      {t}
                    </Link>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <Curl spec={{ method: 'GET', path: '/admin/v2/tenants' }} label="list tenants" />
      <h2>Open by name</h2>
      <GoTo />
      {creating ? <CreateTenant open={creating} onClose={() => setCreating(false)} /> : null}
    </>
  );
}
