/** The signed-in token, kept for this browser tab's session only (sessionStorage). */
const KEY = 'magnetar.token';

export function getToken(): string | null {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function setToken(token: string): void {
  sessionStorage.setItem(KEY, token.trim().replace(/^Bearer\s+/i, ''));
}

export function clearToken(): void {
  sessionStorage.removeItem(KEY);
}

/** Fired when the API answers 401: the app returns to the sign-in page. */
export const UNAUTHENTICATED_EVENT = 'magnetar:unauthenticated';
