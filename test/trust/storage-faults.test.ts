import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, startTestApp, type TestApp } from '../api/test-app.ts';

/*
 * The data folder on a small tmpfs of its own (mounting needs root, as CI runs): the disk filling
 * up gives a 503 with a code that names the cause, no crash and no half-written change, and
 * requests succeed again once space is freed. (A read-only remount is refused while the database
 * is open: the read-only database is tested in read-only.test.ts, with the server run as nobody.)
 */
function tryMount(dir: string): string | null {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', dir], { stdio: 'pipe' });
    return null;
  } catch (err) {
    return (err as Error).message.split('\n')[0]!;
  }
}

describe('storage faults: disk full', () => {
  let t: TestApp | undefined;
  let call: ReturnType<typeof client>;
  let mountPoint = '';
  let mountProblem: string | null = null;
  let dataDir = '';

  // Mounted here, not at load, so that a run filtered to other tests leaves no mount behind.
  beforeAll(async () => {
    mountPoint = mkdtempSync(join(tmpdir(), 'facegate-tmpfs-'));
    mountProblem = tryMount(mountPoint);
    if (mountProblem) {
      if (process.env.CI) throw new Error(`cannot mount a tmpfs for the storage fault tests (${mountProblem}); CI runs as root`);
      console.warn(`\n!!! cannot mount a tmpfs (${mountProblem}): skipping the disk-full test (run as root)\n`);
      return;
    }
    dataDir = join(mountPoint, 'data');
    t = await startTestApp(dataDir);
    call = client(t.base, t.printedKey!);
  });
  afterAll(async () => {
    await t?.app.close().catch(() => undefined);
    if (!mountProblem) execFileSync('umount', ['-l', mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  });

  it('disk full: 503 storage_full, nothing half-written, works again once space is freed', async (ctx) => {
    if (mountProblem) {
      ctx.skip();
      return;
    }
    expect((await call('POST', '/api/v1/people', { name: 'Before' })).status).toBe(201);
    const filler = join(mountPoint, 'filler');
    try {
      // Fill the disk to the last byte.
      for (let i = 0; ; i++) {
        try {
          writeFileSync(`${filler}-${i}`, Buffer.alloc(1024 * 1024, 1));
        } catch {
          for (let k = 0; ; k++) {
            try {
              writeFileSync(`${filler}-small-${k}`, Buffer.alloc(4096, 1));
            } catch {
              break;
            }
          }
          break;
        }
      }
      const statuses: Array<{ status: number; code: string }> = [];
      for (let i = 0; i < 30; i++) {
        const res = await call('POST', '/api/v1/people', { name: `Full ${i}`, metadata: { note: 'x'.repeat(2000) } });
        statuses.push({ status: res.status, code: res.json.code });
      }
      const refused = statuses.filter((s) => s.status !== 201);
      expect(refused.length).toBeGreaterThan(0);
      expect(refused.every((s) => s.status === 503 && ['storage_full', 'storage_unavailable'].includes(s.code))).toBe(true);
      const health = await call('GET', '/api/v1/system/health');
      expect(health.status).toBe(200);
      // The health check names the cause of the last refusal (the disk is never reported by the API otherwise).
      expect(health.json.status).toBe('degraded');
      expect(health.json.store.lastRefusal.code).toBe(refused.at(-1)!.code);
      expect(health.json.store.status).toBe(refused.at(-1)!.code === 'storage_full' ? 'full' : 'unavailable');
    } finally {
      execFileSync('sh', ['-c', `rm -f ${filler}-*`]);
    }
    const after = await call('POST', '/api/v1/people', { name: 'After' });
    expect(after.status).toBe(201);
    expect((await call('GET', `/api/v1/people/${after.json.id}`)).status).toBe(200);
    expect((await call('GET', '/api/v1/system/health')).json.store).toEqual({ status: 'ok' });
  });
});
