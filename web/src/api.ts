/*
 * The server's HTTP API as the UI uses it: same-origin fetch with the session cookie, the CSRF
 * token on every request that changes something, problem+json errors turned into ApiError.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body: unknown = null,
  ) {
    super(message);
  }
}

export interface Session {
  signedIn: boolean;
  name: string | null;
  level: 'public' | 'device' | 'operator' | 'admin';
  via: 'password' | 'key' | 'none';
  csrfToken: string | null;
}

let csrfToken: string | null = null;
let onSignedOut: () => void = () => {};

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

/** Called when the server answers 401: the session ended (expired, signed out elsewhere, key revoked). */
export function whenSignedOut(fn: () => void): void {
  onSignedOut = fn;
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  let payload: BodyInit | undefined;
  if (body instanceof FormData) payload = body;
  else if (body instanceof Blob) {
    headers['content-type'] = body.type || 'application/octet-stream';
    payload = body;
  }
  else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['x-csrf-token'] = csrfToken;
  const res = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  const type = res.headers.get('content-type') ?? '';
  const data: unknown = type.includes('json') ? await res.json() : await res.text();
  if (!res.ok) {
    const problem = (typeof data === 'object' && data !== null ? data : {}) as { code?: string; detail?: string; title?: string };
    if (res.status === 401 && !path.startsWith('/api/v1/auth/')) onSignedOut();
    throw new ApiError(res.status, problem.code ?? `http_${res.status}`, problem.detail ?? problem.title ?? res.statusText, data);
  }
  return data as T;
}

export const api = {
  get: <T>(path: string) => request<T>('GET', path),
  post: <T>(path: string, body?: unknown) => request<T>('POST', path, body ?? {}),
  patch: <T>(path: string, body: unknown) => request<T>('PATCH', path, body),
  put: <T>(path: string, body: unknown) => request<T>('PUT', path, body),
  del: <T>(path: string) => request<T>('DELETE', path),
};

/** The WebSocket URL of an API path on this server (the session cookie goes with the upgrade). */
export function wsUrl(path: string): string {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}${path}`;
}

export function errorText(err: unknown): string {
  if (err instanceof ApiError) return `${err.message} (${err.code})`;
  return err instanceof Error ? err.message : String(err);
}

// Shapes of the answers the UI reads.

export interface Person {
  id: string;
  externalId: string | null;
  name: string;
  email: string | null;
  department: string | null;
  type: string | null;
  active: boolean;
  createdAt: number;
  updatedAt: number;
  faceCount?: number;
}

export interface Face {
  id: string;
  personId: string;
  pose: { label: string | null; yawDeg: number | null; pitchDeg: number | null; rollDeg: number | null };
  quality: number | null;
  source: string;
  thumbnailUrl: string | null;
  createdAt: number;
}

export interface Page<T> {
  items: T[];
  total?: number;
  nextCursor?: string | null;
}

export interface FacegateEvent {
  id: number;
  type: string;
  camera_id: string;
  track_id: string | null;
  timestamp: number;
  data: Record<string, unknown>;
}
