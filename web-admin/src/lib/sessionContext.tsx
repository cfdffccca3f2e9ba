/**
 * The signed-in session: the token (sessionStorage) and who it is (`GET /admin/v2/auth/whoami`).
 * With authentication off the broker says so and the console goes straight in.
 */
import { createContext, useContext, useEffect, useState, type ReactNode } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { api, ApiError, reasonOf, unwrap } from './api/client';
import type { WhoAmI } from './api/types';
import { clearToken, getToken, setToken, UNAUTHENTICATED_EVENT } from './session';

interface Session {
  token: string | null;
  whoami: WhoAmI | undefined;
  loading: boolean;
  error: unknown;
  /** Why the last session ended (expired or revoked token), shown on the sign-in page. */
  ended: string | null;
  signIn(token: string): Promise<WhoAmI>;
  signOut(): void;
}

const Ctx = createContext<Session | null>(null);

export const whoamiKey = (token: string | null) => ['whoami', token ?? ''] as const;

export function fetchWhoami(): Promise<WhoAmI> {
  return unwrap(api.GET('/admin/v2/auth/whoami'));
}

/** whoami with a candidate token, before it becomes the session's (no sign-out event on 401). */
async function whoamiWith(token: string): Promise<WhoAmI> {
  const r = await fetch('/admin/v2/auth/whoami', { headers: { Authorization: `Bearer ${token}` } });
  if (!r.ok) throw new ApiError(r.status, await reasonOf(r), 'GET', '/admin/v2/auth/whoami');
  return r.json();
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const qc = useQueryClient();
  const [token, setTok] = useState<string | null>(getToken);
  const [ended, setEnded] = useState<string | null>(null);
  const q = useQuery({ queryKey: whoamiKey(token), queryFn: fetchWhoami, staleTime: 60_000, retry: false });

  useEffect(() => {
    const on = (e: Event) => {
      // Without a token a 401 is the normal answer: the layout shows sign-in.
      if (!getToken()) return;
      const reason = (e as CustomEvent<string>).detail;
      setEnded(`Signed out: ${reason || 'the token was refused'}`);
      clearToken();
      setTok(null);
      qc.clear();
    };
    window.addEventListener(UNAUTHENTICATED_EVENT, on);
    return () => window.removeEventListener(UNAUTHENTICATED_EVENT, on);
  }, [qc]);

  const session: Session = {
    token,
    whoami: q.data,
    loading: q.isPending,
    error: q.error,
    ended,
    async signIn(t: string) {
      const candidate = t.trim().replace(/^Bearer\s+/i, '');
      const who = await whoamiWith(candidate);
      if (who.authenticationEnabled && !who.role) throw new ApiError(401, 'the token has no role', 'GET', '/admin/v2/auth/whoami');
      setToken(candidate);
      qc.clear();
      setEnded(null);
      qc.setQueryData(whoamiKey(candidate), who);
      setTok(candidate);
      return who;
    },
    signOut() {
      clearToken();
      setTok(null);
      setEnded(null);
      qc.clear();
    },
  };
  return <Ctx.Provider value={session}>{children}</Ctx.Provider>;
}

export function useSession(): Session {
  const s = useContext(Ctx);
  if (!s) throw new Error('useSession outside SessionProvider');
  return s;
}

/** Whether the session needs a (new) token: authentication is on and there is none that works. */
export function needsSignIn(s: Pick<Session, 'whoami' | 'error' | 'loading'>): boolean {
  if (s.loading) return false;
  if (s.error instanceof ApiError && s.error.status === 401) return true;
  return false;
}
