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
 * is open, so the read-only case is mapped the same way — storage_read_only — but not tested here.)
 */
function tryMount(dir: string): string | null {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', dir], { stdio: 'pipe' });
    return null;
  } catch (err) {
    return (err as Error).message.split('\n')[0]!;
  }
}

const mountPoint = mkdtempSync(join(tmpdir(), 'facegate-tmpfs-'));
const mountProblem = tryMount(mountPoint);
if (mountProblem) {
  if (process.env.CI) throw new Error(`cannot mount a tmpfs for the storage fault tests (${mountProblem}); CI runs as root`);
  console.warn(`\n!!! cannot mount a tmpfs (${mountProblem}): skipping the disk-full and read-only tests (run as root)\n`);
}

describe.skipIf(mountProblem !== null)('storage faults: disk full', () => {
  let t: TestApp;
  let call: ReturnType<typeof client>;
  const dataDir = join(mountPoint, 'data');

  beforeAll(async () => {
    t = await startTestApp(dataDir);
    call = client(t.base, t.printedKey!);
  });
  afterAll(async () => {
    await t?.app.close().catch(() => undefined);
    execFileSync('umount', ['-l', mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  });

  it('disk full: 503 storage_full, nothing half-written, works again once space is freed', async () => {
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
      expect((await call('GET', '/api/v1/system/health')).status).toBe(200);
    } finally {
      execFileSync('sh', ['-c', `rm -f ${filler}-*`]);
    }
    const after = await call('POST', '/api/v1/people', { name: 'After' });
    expect(after.status).toBe(201);
    expect((await call('GET', `/api/v1/people/${after.json.id}`)).status).toBe(200);
  });
});
