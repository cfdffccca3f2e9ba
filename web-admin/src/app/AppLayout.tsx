import { useEffect } from 'react';
import { Link, Outlet, useNavigate } from '@tanstack/react-router';
import { ErrorNotice, Loading } from '../components/Notice';
import { needsSignIn, useSession } from '../lib/sessionContext';
import { useTheme } from '../lib/themeContext';
import { formatTime } from '../lib/format';

/** The shell of every signed-in page: navigation, who is signed in, theme; sign-in when needed. */
export function AppLayout() {
  const session = useSession();
  const navigate = useNavigate();
  const { theme, toggle } = useTheme();
  const signIn = needsSignIn(session);
  useEffect(() => {
    if (!signIn) return;
    // The page the user asked for, read once from the address bar (not from the router state,
    // which already points at /signin while the redirect is under way).
    const here = window.location.pathname + window.location.search;
    navigate({ to: '/signin', search: { redirect: here.startsWith('/signin') ? undefined : here }, replace: true });
  }, [signIn, navigate]);
  if (signIn) return null;
  if (session.loading) return <Loading what="Connecting to Magnetar" />;
  if (!session.whoami) return <ErrorNotice error={session.error} action="Connecting to the broker" />;
  const who = session.whoami;
  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <aside className="sidebar">
        <Link to="/" className="brand" aria-label="Magnetar console home">
          <svg width="20" height="20" viewBox="0 0 32 32" aria-hidden="true">
            <circle cx="16" cy="16" r="14" fill="currentColor" opacity="0.85" />
            <circle cx="16" cy="16" r="5" fill="var(--surface)" />
          </svg>
          Magnetar
        </Link>
        <nav aria-label="Main">
          <ul>
            <li>
              <Link to="/" activeOptions={{ exact: true }} activeProps={{ 'aria-current': 'page' }}>
                Overview
              </Link>
            </li>
            <li>
              <Link to="/tenants" activeProps={{ 'aria-current': 'page' }}>
                Tenants
              </Link>
            </li>
          </ul>
        </nav>
        <div className="who">
          {who.authenticationEnabled ? (
            <>
              <span>
                Signed in as <strong className="mono">{who.role}</strong>
                {who.superuser ? ' (superuser)' : ''}
              </span>
              {who.expiresAt ? <span>Token expires {formatTime(who.expiresAt, 's')}</span> : null}
            </>
          ) : (
            <span>Authentication is off: every action is allowed.</span>
          )}
          <div className="row">
            <button type="button" className="small" onClick={toggle} aria-pressed={theme === 'dark'}>
              Dark theme
            </button>
            {who.authenticationEnabled ? (
              <button type="button" className="small" onClick={() => session.signOut()}>
                Sign out
              </button>
            ) : null}
          </div>
        </div>
      </aside>
      <main id="main" tabIndex={-1}>
        <Outlet />
      </main>
    </div>
  );
}
