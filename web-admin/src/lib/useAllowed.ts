import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from './api/client';
import { allowedFrom, chunkChecks, type Allowed, type Check } from './permissions';
import { useSession } from './sessionContext';

export const allowedKey = (token: string | null, role: string | undefined, checks: Check[]) =>
  ['allowed', token ?? '', role ?? '', checks] as const;

export async function fetchAllowed(checks: Check[], role?: string): Promise<boolean[]> {
  const out: boolean[] = [];
  for (const chunk of chunkChecks(checks)) {
    const r = await unwrap(api.POST('/admin/v2/auth/allowed', { body: { role, checks: chunk } }));
    out.push(...r.results);
  }
  return out;
}

/**
 * Asks the API which of `checks` the signed-in role (or `role`) may do. Until the answer
 * arrives every check reads as "no": controls appear once allowed, never disappear.
 */
export function useAllowed(checks: Check[], role?: string): { allowed: Allowed; loading: boolean; error: unknown } {
  const { token } = useSession();
  const q = useQuery({
    queryKey: allowedKey(token, role, checks),
    queryFn: () => fetchAllowed(checks, role),
    enabled: checks.length > 0 && (role === undefined || role.trim() !== ''),
    staleTime: 30_000,
  });
  return { allowed: allowedFrom(checks, q.data), loading: q.isPending && q.fetchStatus !== 'idle', error: q.error };
}
