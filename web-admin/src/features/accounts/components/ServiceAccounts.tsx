import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { ConfirmDialog, Dialog } from '../../../components/Dialog';
import { CopyButton } from '../../../components/Copy';
import { Curl } from '../../../components/Curl';
import { ErrorNotice, Loading, Notice } from '../../../components/Notice';
import { send } from '../../../lib/api/client';
import type { MintedToken } from '../../../lib/api/types';
import { formatTime } from '../../../lib/format';
import { tenantResource } from '../../../lib/permissions';
import { useAllowed } from '../../../lib/useAllowed';
import { accountKeys, createAccountSpec, deleteAccountSpec, EXPIRIES, fetchAccounts, fetchTokens, mintTokenSpec, revokeTokenSpec, validAccountName } from '../api';

function MintToken({ tenant, name }: { tenant: string; name: string }) {
  const qc = useQueryClient();
  const [expiry, setExpiry] = useState(EXPIRIES[3].seconds);
  const [minted, setMinted] = useState<MintedToken | null>(null);
  const m = useMutation({
    mutationFn: () => send<MintedToken>(mintTokenSpec(tenant, name, expiry)),
    onSuccess: (t) => {
      setMinted(t);
      qc.invalidateQueries({ queryKey: accountKeys.tokens(tenant, name) });
    },
  });
  return (
    <>
      <form
        className="inline"
        aria-label={`Mint a token for ${name}`}
        onSubmit={(e) => {
          e.preventDefault();
          m.mutate();
        }}
      >
        <div className="field">
          <label htmlFor={`expiry-${name}`}>Token expires in</label>
          <select id={`expiry-${name}`} value={expiry} onChange={(e) => setExpiry(Number(e.target.value))}>
            {EXPIRIES.map((x) => (
              <option key={x.seconds} value={x.seconds}>
                {x.label}
              </option>
            ))}
          </select>
        </div>
        <button type="submit" className="primary" disabled={m.isPending}>
          Mint token
        </button>
      </form>
      <ErrorNotice error={m.error} action="Minting a token" />
      <Curl spec={mintTokenSpec(tenant, name, expiry)} label="mint token" />
      <Dialog open={!!minted} title={`Token for ${minted?.role ?? name}`} onClose={() => setMinted(null)}>
        {minted ? (
          <div className="stack">
            <Notice kind="warn">This is the only time the token is shown. Copy it now and give it to the application; Magnetar keeps only its id.</Notice>
            <div className="token-box">
              <pre role="textbox" aria-readonly="true" aria-multiline="true" tabIndex={0} aria-label="New token" data-testid="minted-token">
                {minted.token}
              </pre>
              <CopyButton text={minted.token} label="Copy token" />
            </div>
            <p>
              Role <span className="mono">{minted.role}</span>, id <span className="mono">{minted.id}</span>, expires {formatTime(minted.expiresAt, 's')}. Grant the role
              permissions on a namespace or topic to let it produce or consume.
            </p>
            <div className="dialog-actions">
              <button type="button" className="primary" onClick={() => setMinted(null)}>
                I copied the token
              </button>
            </div>
          </div>
        ) : null}
      </Dialog>
    </>
  );
}

function Tokens({ tenant, name }: { tenant: string; name: string }) {
  const qc = useQueryClient();
  const q = useQuery({ queryKey: accountKeys.tokens(tenant, name), queryFn: () => fetchTokens(tenant, name) });
  const [revoking, setRevoking] = useState<string | null>(null);
  const m = useMutation({
    mutationFn: (id: string) => send(revokeTokenSpec(tenant, name, id)),
    onSuccess: () => {
      setRevoking(null);
      qc.invalidateQueries({ queryKey: accountKeys.tokens(tenant, name) });
    },
  });
  if (q.isPending) return <Loading what="Listing tokens" />;
  if (q.error) return <ErrorNotice error={q.error} />;
  return (
    <>
      {q.data.length ? (
        <div className="table-wrap">
          <table>
            <caption className="sr-only">Tokens of {name}</caption>
            <thead>
              <tr>
                <th scope="col">Token id</th>
                <th scope="col">Created</th>
                <th scope="col">Expires</th>
                <th scope="col">
                  <span className="sr-only">Revoke</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {q.data.map((t) => (
                <tr key={t.id}>
                  <td className="mono">{t.id}</td>
                  <td>{formatTime(t.createdAt)}</td>
                  <td>{t.expiresAt ? formatTime(t.expiresAt) : 'never'}</td>
                  <td>
                    <button type="button" className="small danger" onClick={() => setRevoking(t.id)} aria-label={`Revoke token ${t.id}`}>
                      Revoke
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p className="muted">No live tokens.</p>
      )}
      {revoking ? (
        <ConfirmDialog open title="Revoke the token?" confirmLabel="Revoke token" busy={m.isPending} onClose={() => setRevoking(null)} onConfirm={() => m.mutate(revoking)}>
          <p>
            Token <span className="mono">{revoking}</span> of <span className="mono">{name}</span> is refused by every broker within seconds; open connections using it are closed.
          </p>
          <ErrorNotice error={m.error} action="Revoking the token" />
          <Curl spec={revokeTokenSpec(tenant, name, revoking)} label="revoke token" />
        </ConfirmDialog>
      ) : null}
    </>
  );
}

export function ServiceAccounts({ tenant, account, onAccount }: { tenant: string; account?: string; onAccount: (a?: string) => void }) {
  const qc = useQueryClient();
  const res = tenantResource(tenant);
  const { allowed, loading } = useAllowed([
    { operation: 'ListServiceAccounts', resource: res },
    { operation: 'CreateServiceAccount', resource: res },
  ]);
  const canList = allowed('ListServiceAccounts', res);
  const q = useQuery({ queryKey: accountKeys.list(tenant), queryFn: () => fetchAccounts(tenant), enabled: canList });
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [deleting, setDeleting] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: () => send(createAccountSpec(tenant, name, description)),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: accountKeys.list(tenant) });
      onAccount(name);
      setName('');
      setDescription('');
    },
  });
  const del = useMutation({
    mutationFn: (n: string) => send(deleteAccountSpec(tenant, n)),
    onSuccess: () => {
      setDeleting(null);
      onAccount(undefined);
      qc.invalidateQueries({ queryKey: accountKeys.list(tenant) });
    },
  });
  if (loading) return <Loading />;
  if (!canList) return <Notice>Only the tenant's admins manage its service accounts.</Notice>;
  return (
    <div className="stack">
      <p className="muted">
        A service account is an identity for an application, with role <span className="mono">name@{tenant}</span>. Grant that role permissions, then mint a token for the
        application.
      </p>
      {allowed('CreateServiceAccount', res) ? (
        <form
          className="inline card"
          aria-label="Create a service account"
          onSubmit={(e) => {
            e.preventDefault();
            create.mutate();
          }}
        >
          <div className="field">
            <label htmlFor="account-name">Account name</label>
            <input id="account-name" required value={name} onChange={(e) => setName(e.target.value.trim())} aria-invalid={!!name && !validAccountName(name)} aria-describedby="account-name-hint" />
            <span className="hint" id="account-name-hint">
              lowercase letters, digits, - and _
            </span>
          </div>
          <div className="field">
            <label htmlFor="account-description">Description</label>
            <input id="account-description" value={description} onChange={(e) => setDescription(e.target.value)} />
          </div>
          <button type="submit" className="primary" disabled={!validAccountName(name) || create.isPending}>
            Create service account
          </button>
          <div style={{ flexBasis: '100%' }}>
            <ErrorNotice error={create.error} action="Creating the account" />
            <Curl spec={createAccountSpec(tenant, name || '{name}', description)} label="create service account" />
          </div>
        </form>
      ) : null}
      {q.isPending ? <Loading /> : null}
      <ErrorNotice error={q.error} />
      {q.data && !q.data.length ? <Notice>No service accounts yet.</Notice> : null}
      {q.data?.map((a) => (
        <section key={a.name} className="card stack" aria-label={`Service account ${a.name}`}>
          <div className="row" style={{ justifyContent: 'space-between' }}>
            <h3 style={{ margin: 0 }}>
              {a.name} <span className="badge mono">{a.role}</span>
            </h3>
            <div className="row">
              <button type="button" className="small" aria-expanded={account === a.name} onClick={() => onAccount(account === a.name ? undefined : a.name)}>
                {account === a.name ? 'Hide tokens' : `Tokens of ${a.name}`}
              </button>
              <button type="button" className="small danger" onClick={() => setDeleting(a.name)} aria-label={`Delete service account ${a.name}`}>
                Delete
              </button>
            </div>
          </div>
          {a.description ? <p className="muted">{a.description}</p> : null}
          {account === a.name ? (
            <>
              <Tokens tenant={tenant} name={a.name} />
              <MintToken tenant={tenant} name={a.name} />
            </>
          ) : null}
        </section>
      ))}
      {deleting ? (
        <ConfirmDialog open title={`Delete service account ${deleting}?`} confirmLabel="Delete account" busy={del.isPending} onClose={() => setDeleting(null)} onConfirm={() => del.mutate(deleting)}>
          <p>Every token of the account is revoked; applications using them are refused within seconds. Its grants stay until revoked.</p>
          <ErrorNotice error={del.error} action="Deleting the account" />
          <Curl spec={deleteAccountSpec(tenant, deleting)} label="delete service account" />
        </ConfirmDialog>
      ) : null}
      <Curl spec={{ method: 'GET', path: '/admin/v2/tenants/{tenant}/service-accounts', params: { tenant } }} label="list service accounts" />
    </div>
  );
}
