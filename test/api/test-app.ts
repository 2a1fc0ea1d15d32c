import { createApp, type App } from '../../src/app.ts';
import { parseConfig, type Config } from '../../src/config/config.ts';

/** A real server on a random port over a data folder, as `npm start` runs it (one vision worker). */
export interface TestApp {
  app: App;
  base: string;
  config: Config;
  /** The admin key printed at first start (undefined on a restart over the same data). */
  printedKey: string | undefined;
  logs: string[];
}

export async function startTestApp(dataDir: string, overrides: Record<string, unknown> = {}): Promise<TestApp> {
  const config = parseConfig({
    dataDir,
    server: { logLevel: 'silent' },
    vision: { workers: 1 },
    // Saves happen at close in these tests; the timer must not race them.
    gallery: { saveEveryMs: 3_600_000 },
    ...overrides,
  });
  const logs: string[] = [];
  const app = await createApp(config, (m) => logs.push(m));
  const base = await app.server.listen({ port: 0, host: '127.0.0.1' });
  return { app, base, config, printedKey: /fg_[A-Za-z0-9_-]+/.exec(logs.join('\n'))?.[0], logs };
}

/** A parsed JSON answer; tests read it loosely and assert on its fields. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

/** fetch + JSON, with the key as a bearer token. */
export function client(base: string, key: string) {
  return async function call(method: string, path: string, body?: unknown | FormData): Promise<{ status: number; type: string; json: Json }> {
    const headers: Record<string, string> = { authorization: `Bearer ${key}` };
    let payload: RequestInit['body'];
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = typeof body === 'string' ? body : JSON.stringify(body);
    }
    const res = await fetch(`${base}${path}`, { method, headers, body: payload });
    const text = await res.text();
    const type = res.headers.get('content-type') ?? '';
    return { status: res.status, type, json: text && type.includes('json') ? JSON.parse(text) : text };
  };
}

/** A multipart form with the given files under `field` (default "image"). */
export function imageForm(files: Buffer[], field = 'image', fields: Record<string, string> = {}): FormData {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  files.forEach((bytes, i) => form.append(field, new Blob([new Uint8Array(bytes)], { type: 'image/jpeg' }), `photo-${i}.jpg`));
  return form;
}

export async function createKey(call: ReturnType<typeof client>, scope: 'device' | 'operator' | 'admin'): Promise<string> {
  const res = await call('POST', '/api/v1/keys', { name: `${scope} test key`, scopes: [scope] });
  if (res.status !== 201) throw new Error(`could not create a ${scope} key: ${res.status}`);
  return res.json.key as string;
}
