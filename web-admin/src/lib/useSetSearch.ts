import { useNavigate } from '@tanstack/react-router';
import { clean } from './search';

/** Merges `changes` into the current route's search parameters (the URL is the state). */
export function useSetSearch<T extends object>(opts: { replace?: boolean } = {}) {
  const navigate = useNavigate();
  return (changes: Partial<T>) =>
    navigate({
      to: '.',
      // The route's validateSearch types the result; this helper is shared by every route.
      search: ((prev: T) => clean({ ...prev, ...changes })) as never,
      replace: opts.replace,
    });
}
