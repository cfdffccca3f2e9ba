import { useState } from 'react';
import { Navigate, useNavigate, useSearch } from '@tanstack/react-router';
import { ErrorNotice, Loading, Notice } from '../../../components/Notice';
import { useSession } from '../../../lib/sessionContext';
import { useTheme } from '../../../lib/themeContext';

/** Sign-in with a token (the standalone `--auth` token, or one an operator minted). */
export function SignInPage() {
  const session = useSession();
  const { redirect } = useSearch({ strict: false }) as { redirect?: string };
  const navigate = useNavigate();
  const { theme, toggle } = useTheme();
  const [token, setToken] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  if (session.loading) return <Loading what="Connecting to Magnetar" />;
  if (session.whoami && (!session.whoami.authenticationEnabled || session.token)) {
    return <Navigate to={(redirect ?? '/') as '/'} />;
  }

  return (
    <main id="main" className="signin">
      <div className="card stack">
        <div className="row" style={{ justifyContent: 'space-between' }}>
          <h1>Sign in to Magnetar</h1>
          <button type="button" className="small" onClick={toggle} aria-pressed={theme === 'dark'}>
            Dark theme
          </button>
        </div>
        {session.ended ? <Notice kind="warn">{session.ended}</Notice> : null}
        <p className="muted">
          Paste the token your operator gave you (for <code>magnetar standalone --auth</code>, the superuser token it
          printed). It is kept for this browser tab only and sent as <code>Authorization: Bearer</code>.
        </p>
        <form
          className="stack"
          onSubmit={async (e) => {
            e.preventDefault();
            setBusy(true);
            setError(null);
            try {
              await session.signIn(token);
              navigate({ to: (redirect ?? '/') as '/' });
            } catch (err) {
              setError(err);
            } finally {
              setBusy(false);
            }
          }}
        >
          <div className="field">
            <label htmlFor="token">Token</label>
            <textarea
              id="token"
              name="token"
              required
              autoComplete="off"
              spellCheck={false}
              value={token}
              onChange={(e) => setToken(e.target.value)}
              placeholder="eyJhbGciOi…"
            />
          </div>
          <ErrorNotice error={error} action="Sign-in" />
          <div>
            <button type="submit" className="primary" disabled={busy || !token.trim()}>
              {busy ? 'Signing in…' : 'Sign in'}
            </button>
          </div>
        </form>
      </div>
    </main>
  );
}
