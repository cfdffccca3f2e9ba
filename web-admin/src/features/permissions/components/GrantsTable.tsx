import { useState } from 'react';
import { useMutation } from '@tanstack/react-query';
import { ConfirmDialog } from '../../../components/Dialog';
import { Curl } from '../../../components/Curl';
import { ErrorNotice, Notice } from '../../../components/Notice';
import { send, type RequestSpec } from '../../../lib/api/client';
import type { Grants } from '../api';

export function GrantsTable({ grants, caption, revokeSpec, onDone, canRevoke }: { grants: Grants; caption: string; revokeSpec?: (role: string) => RequestSpec; onDone: () => void; canRevoke: (role: string) => boolean }) {
  const [revoking, setRevoking] = useState<string | null>(null);
  const m = useMutation({
    mutationFn: (role: string) => send(revokeSpec!(role)),
    onSuccess: () => {
      setRevoking(null);
      onDone();
    },
  });
  const roles = Object.keys(grants).sort();
  if (!roles.length) return <Notice>No grants.</Notice>;
  return (
    <>
      <div className="table-wrap">
        <table>
          <caption className="sr-only">{caption}</caption>
          <thead>
            <tr>
              <th scope="col">Role</th>
              <th scope="col">Actions</th>
              <th scope="col">
                <span className="sr-only">Revoke</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {roles.map((r) => (
              <tr key={r}>
                <td className="mono">{r}</td>
                <td>{grants[r].join(', ')}</td>
                <td>
                  {revokeSpec && canRevoke(r) ? (
                    <button type="button" className="small danger" onClick={() => setRevoking(r)} aria-label={`Revoke ${r}`}>
                      Revoke
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {revoking && revokeSpec ? (
        <ConfirmDialog open title={`Revoke ${revoking}?`} confirmLabel="Revoke" busy={m.isPending} onClose={() => setRevoking(null)} onConfirm={() => m.mutate(revoking)}>
          <p>
            Role <span className="mono">{revoking}</span> loses {grants[revoking].join(', ')} here. Its open connections are refused at their next request.
          </p>
          <ErrorNotice error={m.error} action="Revoking" />
          <Curl spec={revokeSpec(revoking)} label="revoke" />
        </ConfirmDialog>
      ) : null}
    </>
  );
}
