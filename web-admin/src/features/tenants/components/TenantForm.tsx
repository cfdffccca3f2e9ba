import { useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import { get } from '../../../lib/api/client';
import type { TenantInfo } from '../../../lib/api/types';
import { parseList } from '../api';

/** Admin roles and allowed clusters of a tenant. */
export function TenantFields({ value, onChange, idPrefix }: { value: TenantInfo; onChange: (v: TenantInfo) => void; idPrefix: string }) {
  const clusters = useQuery({ queryKey: ['cluster', 'clusters'], queryFn: () => get<string[]>('/admin/v2/clusters') });
  const [roles, setRoles] = useState((value.adminRoles ?? []).join(', '));
  const allowed = value.allowedClusters ?? [];
  return (
    <>
      <div className="field">
        <label htmlFor={`${idPrefix}-roles`}>Admin roles</label>
        <input
          id={`${idPrefix}-roles`}
          value={roles}
          onChange={(e) => {
            setRoles(e.target.value);
            onChange({ ...value, adminRoles: parseList(e.target.value) });
          }}
          placeholder="acme-admin, ops"
          aria-describedby={`${idPrefix}-roles-hint`}
        />
        <span className="hint" id={`${idPrefix}-roles-hint`}>
          Roles (token subjects) that administer this tenant, comma-separated.
        </span>
      </div>
      <fieldset>
        <legend>Allowed clusters</legend>
        {(clusters.data ?? []).map((c) => (
          <label key={c} className="row">
            <input
              type="checkbox"
              checked={allowed.includes(c)}
              onChange={(e) =>
                onChange({ ...value, allowedClusters: e.target.checked ? [...allowed, c] : allowed.filter((x) => x !== c) })
              }
            />
            {c}
          </label>
        ))}
      </fieldset>
    </>
  );
}
