import { QueryClient } from '@tanstack/react-query';
import { ApiError } from './api/client';

/** Client errors (4xx) are answers, not failures: never retried. */
export function shouldRetry(failureCount: number, error: unknown): boolean {
  if (error instanceof ApiError && error.status >= 400 && error.status < 500) return false;
  return failureCount < 2;
}

export function createQueryClient() {
  return new QueryClient({
    defaultOptions: {
      queries: { retry: shouldRetry, staleTime: 2_000, refetchOnWindowFocus: false },
      mutations: { retry: false },
    },
  });
}
