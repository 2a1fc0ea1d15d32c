import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, startTestApp, type TestApp } from '../api/test-app.ts';
import { PG_ADMIN_URL, storeBackends, type BackendHandle } from '../store/backends.ts';
import { printedKey, startChildServer, type ChildServer, type ChildUser } from './child-server.ts';

/*
 * A read-only database, for real: the server runs as `nobody` (root ignores file permissions, so
 * the test needs root to drop to another user) over a data folder that user owns, and the folder
 * is then made read-only with chmod, as a restored backup or a wrong deployment leaves it.
 *
 * What SQLite does: a file it may not write is opened read-only without a word (every write then
 * fails with SQLITE_READONLY); a file made read-only while open keeps being written through the
 * descriptor it already has, until the next start. So:
 *  - start-up on a read-only database refuses, with one clear line and exit code 2 (no stack), and
 *    starts normally once permissions are restored;
 *  - under a running server, chmod a-w changes no write, but the health check reports the store as
 *    read_only (the next start would refuse) and ok again once restored.
 * (A read-only remount is refused while the database is open, EBUSY; an ext4 errors=remount-ro
 * fault makes writes fail as SQLITE_IOERR_WRITE — 503 storage_unavailable — and needs an unmount to
 * clear, so it cannot recover under a running server; see README "Faults".)
 */
const NOBODY: ChildUser = { uid: 65534, gid: 65534 };
const isRoot = process.getuid?.() === 0;
if (!isRoot) {
  if (process.env.CI) throw new Error('the read-only database test needs root (to run the server as nobody); CI runs as root');
  console.warn('\n!!! not root: skipping the read-only database tests (run as root; they run the server as nobody)\n');
}

/** chmod every file and folder under (and including) dir. */
function chmodTree(dir: string, fileMode: number, dirMode: number): void {
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    chmodSync(path, statSync(path).isDirectory() ? dirMode : fileMode);
  }
  chmodSync(dir, dirMode);
}

async function stop(server: ChildServer): Promise<void> {
  server.proc.kill('SIGTERM');
  expect((await server.exited).code).toBe(0);
}

/** Starts the server as nobody and expects it to exit before listening; returns its output and exit code. */
async function refusedStart(dataDir: string): Promise<{ code: number | null; output: string }> {
  try {
    const server = await startChildServer(dataDir, { HOME: tmpdir() }, 60_000, NOBODY);
    await stop(server);
  } catch (err) {
    const m = /^server exited \((\d+|[A-Z]+)\) before listening:\n([\s\S]*)$/.exec((err as Error).message);
    if (m) return { code: Number(m[1]), output: m[2]! };
    throw err;
  }
  throw new Error('the server started on a read-only database');
}

describe.skipIf(!isRoot)('read-only database (server run as nobody)', () => {
  let root: string;
  let dataDir: string;
  let key: string;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'facegate-ro-'));
    chmodSync(root, 0o755);
    dataDir = join(root, 'data');
    // The first start creates the database as nobody, in a folder nobody owns.
    chownSync(root, NOBODY.uid, NOBODY.gid);
    const first = await startChildServer(dataDir, { HOME: tmpdir() }, 60_000, NOBODY);
    key = printedKey(first.output());
    expect((await client(first.base, key)('POST', '/api/v1/people', { name: 'Before' })).status).toBe(201);
    await stop(first);
  });
  afterAll(() => {
    if (root) {
      chmodTree(root, 0o644, 0o755);
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('start-up on a read-only database: one clear line, exit 2, nothing changed; starts again once writable', async () => {
    chmodTree(dataDir, 0o444, 0o555);
    const refused = await refusedStart(dataDir);
    expect(refused.code).toBe(2);
    expect(refused.output).toMatch(/facegate: the database is read-only: \S+facegate\.db is not writable by this process, uid 65534 \(EACCES\)/);
    expect(refused.output).toMatch(/then start again \(nothing was changed\)/);
    expect(refused.output).not.toMatch(/^\s+at /m);

    // The file writable but not its folder: SQLite could open it, but cannot create its -wal/-shm.
    chmodTree(dataDir, 0o644, 0o755);
    chmodSync(dataDir, 0o555);
    const folder = await refusedStart(dataDir);
    expect(folder.code).toBe(2);
    expect(folder.output).toMatch(/facegate: the database is read-only: the folder \S+ is not writable by this process, uid 65534 \(EACCES\)/);
    expect(folder.output).not.toMatch(/^\s+at /m);

    chmodSync(dataDir, 0o755);
    const again = await startChildServer(dataDir, { HOME: tmpdir() }, 60_000, NOBODY);
    try {
      const call = client(again.base, key);
      const health = await call('GET', '/api/v1/system/health');
      expect(health.json.store).toEqual({ status: 'ok' });
      expect(health.json.status).toBe('ok');
      const people = await call('GET', '/api/v1/people');
      expect(people.json.items.map((p: { name: string }) => p.name)).toContain('Before');
      expect((await call('POST', '/api/v1/people', { name: 'After restart' })).status).toBe(201);
    } finally {
      await stop(again);
    }
  });

  it('made read-only under a running server: health says read_only (writes go on through the open file), ok again once restored', async () => {
    const server = await startChildServer(dataDir, { HOME: tmpdir() }, 60_000, NOBODY);
    try {
      const call = client(server.base, key);
      expect((await call('GET', '/api/v1/system/health')).json.store.status).toBe('ok');

      chmodTree(dataDir, 0o444, 0o555);
      const health = await call('GET', '/api/v1/system/health');
      expect(health.status).toBe(200);
      expect(health.json.status).toBe('degraded');
      expect(health.json.store.status).toBe('read_only');
      // SQLite checked permissions when it opened the file: its descriptors still write.
      const during = await call('POST', '/api/v1/people', { name: 'During' });
      expect(during.status).toBe(201);

      chmodTree(dataDir, 0o644, 0o755);
      const restored = await call('GET', '/api/v1/system/health');
      expect(restored.json.store).toEqual({ status: 'ok' });
      expect(restored.json.status).toBe('ok');
      expect((await call('GET', `/api/v1/people/${during.json.id}`)).status).toBe(200);
    } finally {
      await stop(server);
    }
  });
});

/*
 * PostgreSQL made read-only under a running server, as a failover to a standby or an operator's
 * `default_transaction_read_only` does it: the setting on our own test database, and its sessions
 * ended so that the pool reconnects into it. Writes answer 503 storage_read_only, the health check
 * says read_only, and both recover by themselves once the setting is reset.
 */
const postgres = (await storeBackends()).find((b) => b.name === 'postgres')!;

describe.skipIf(postgres.skipReason !== null)('read-only database (PostgreSQL, under a running server)', () => {
  let handle: BackendHandle;
  let t: TestApp;
  let dataRoot: string;
  let dbName: string;

  async function admin(text: string): Promise<void> {
    const c = new pg.Client({ connectionString: PG_ADMIN_URL });
    await c.connect();
    try {
      await c.query(text);
    } finally {
      await c.end();
    }
  }
  /** Sets the database's default and ends its sessions, so that the server's pool reconnects under it. */
  async function setReadOnly(on: boolean): Promise<void> {
    await admin(on ? `alter database ${dbName} set default_transaction_read_only = on` : `alter database ${dbName} reset default_transaction_read_only`);
    await admin(`select pg_terminate_backend(pid) from pg_stat_activity where datname = '${dbName}' and pid <> pg_backend_pid()`);
  }
  /** Posts until an answer other than a lost connection (each pooled connection may fail once, 503 storage_unavailable). */
  async function postPerson(call: ReturnType<typeof client>, name: string): ReturnType<ReturnType<typeof client>> {
    for (let attempt = 0; ; attempt++) {
      const res = await call('POST', '/api/v1/people', { name });
      if (attempt >= 4 || res.status !== 503 || res.json.code !== 'storage_unavailable') return res;
    }
  }

  beforeAll(async () => {
    handle = await postgres.create();
    const url = handle.config.database.url!;
    dbName = new URL(url).pathname.slice(1);
    dataRoot = mkdtempSync(join(tmpdir(), 'facegate-ro-pg-'));
    t = await startTestApp(join(dataRoot, 'data'), { database: { url, poolSize: 4 } });
  });
  afterAll(async () => {
    await t?.app.close().catch(() => undefined);
    await handle?.dispose();
    if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
  });

  it('writes answer 503 storage_read_only and health says read_only; both recover by themselves once writable', async () => {
    const call = client(t.base, t.printedKey!);
    expect((await call('POST', '/api/v1/people', { name: 'Before' })).status).toBe(201);

    await setReadOnly(true);
    const answers: Array<{ status: number; code?: string }> = [];
    for (let i = 0; i < 5; i++) {
      const res = await postPerson(call, `Read-only ${i}`);
      answers.push({ status: res.status, code: res.json.code });
    }
    expect(answers).toEqual(Array.from({ length: 5 }, () => ({ status: 503, code: 'storage_read_only' })));
    const health = await call('GET', '/api/v1/system/health');
    expect(health.status).toBe(200);
    expect(health.json.status).toBe('degraded');
    expect(health.json.store.status).toBe('read_only');
    expect(health.json.store.lastRefusal.code).toBe('storage_read_only');
    // Reads still work.
    expect((await call('GET', '/api/v1/people')).json.items.map((p: { name: string }) => p.name)).toEqual(['Before']);

    await setReadOnly(false);
    const after = await postPerson(call, 'After');
    expect(after.status).toBe(201);
    expect((await call('GET', '/api/v1/system/health')).json.store).toEqual({ status: 'ok' });
    expect((await call('GET', '/api/v1/people')).json.items.map((p: { name: string }) => p.name).sort()).toEqual(['After', 'Before']);
  });
});

/*
 * The file system turning read-only under a running server, as ext4 does on an I/O error with
 * errors=remount-ro: a small ext4 image on a loop device, and the kernel's own test switch
 * (/sys/fs/ext4/<dev>/trigger_fs_error). SQLite's writes then fail with SQLITE_IOERR_WRITE (its
 * descriptors stay open, so it never says READONLY): 503 storage_unavailable, reads still answer,
 * the health check names it. The kernel refuses a read-write remount after that, so recovery is a
 * stop, unmount, fsck, mount and start: the database opens and takes writes again, with what
 * reached the disk before the fault.
 */
function mountExt4(image: string, dir: string): string | null {
  try {
    execFileSync('truncate', ['-s', '48M', image]);
    execFileSync('mkfs.ext4', ['-q', '-F', image], { stdio: 'pipe' });
    execFileSync('mount', ['-o', 'loop,errors=remount-ro', image, dir], { stdio: 'pipe' });
  } catch (err) {
    return (err as Error).message.split('\n')[0]!;
  }
  const source = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === dir)?.split(' - ')[1]?.split(' ')[1];
  const trigger = source ? `/sys/fs/ext4/${basename(source)}/trigger_fs_error` : '';
  if (!existsSync(trigger)) {
    execFileSync('umount', [dir]);
    return `no ext4 trigger_fs_error for ${source ?? dir}`;
  }
  return null;
}

describe.skipIf(!isRoot)('file system remounted read-only under a running server (ext4 errors=remount-ro)', () => {
  let ext4Root = '';
  let ext4Mount = '';
  let image = '';
  let dataDir = '';
  let ext4Problem: string | null = null;
  let t: TestApp | undefined;

  // Mounted here, not at load, so that a run filtered to other tests leaves no mount behind.
  beforeAll(() => {
    ext4Root = mkdtempSync(join(tmpdir(), 'facegate-ext4-'));
    ext4Mount = join(ext4Root, 'mnt');
    image = join(ext4Root, 'image');
    dataDir = join(ext4Mount, 'data');
    execFileSync('mkdir', ['-p', ext4Mount]);
    ext4Problem = mountExt4(image, ext4Mount);
    if (ext4Problem && process.env.CI) throw new Error(`cannot mount an ext4 loop image for the read-only file system test (${ext4Problem})`);
  });
  afterAll(async () => {
    await t?.app.close().catch(() => undefined);
    // Unmounted already when the test got past its fsck, or never mounted.
    spawnSync('umount', [ext4Mount], { stdio: 'pipe' });
    rmSync(ext4Root, { recursive: true, force: true });
  });

  it('writes answer 503 storage_unavailable, reads work, health names it; after fsck and a restart it works with what reached the disk', async (ctx) => {
    if (ext4Problem) {
      console.warn(`\n!!! cannot mount an ext4 loop image (${ext4Problem}): skipping the read-only file system test\n`);
      ctx.skip();
      return;
    }
    t = await startTestApp(dataDir);
    const key = t.printedKey!;
    let call = client(t.base, key);
    const before = await call('POST', '/api/v1/people', { name: 'Before' });
    expect(before.status).toBe(201);

    // What reached the disk survives the fault. With synchronous=NORMAL, commits since the last
    // checkpoint sit in the page cache, and the kernel drops those on an emergency read-only
    // remount, as a power cut would (measured: without this sync the whole new database was gone).
    execFileSync('sync');
    const source = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === ext4Mount)!.split(' - ')[1]!.split(' ')[1]!;
    writeFileSync(`/sys/fs/ext4/${basename(source)}/trigger_fs_error`, 'facegate read-only test');

    const during: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await call('POST', '/api/v1/people', { name: `During ${i}`, metadata: { note: 'x'.repeat(4000) } });
      during.push(res.status);
      if (res.status !== 201) expect(res.json.code).toBe('storage_unavailable');
    }
    expect(during.filter((s) => s !== 201).length).toBeGreaterThan(0);
    expect((await call('GET', `/api/v1/people/${before.json.id}`)).status).toBe(200);
    const health = await call('GET', '/api/v1/system/health');
    expect(health.json.status).toBe('degraded');
    expect(health.json.store.status).toBe('unavailable');

    await t.app.close().catch(() => undefined);
    t = undefined;
    execFileSync('umount', [ext4Mount]);
    // 0: clean, 1: errors corrected (the forced error is recorded in the superblock).
    const fsck = spawnSync('e2fsck', ['-f', '-y', image], { encoding: 'utf8' });
    expect(fsck.status, fsck.stdout + fsck.stderr).toBeLessThanOrEqual(1);
    execFileSync('mount', ['-o', 'loop,errors=remount-ro', image, ext4Mount]);

    t = await startTestApp(dataDir);
    call = client(t.base, key);
    const answered = during.filter((s) => s === 201).length;
    const listed = await call('GET', '/api/v1/people');
    expect(listed.status).toBe(200);
    const names: string[] = listed.json.items.map((p: { name: string }) => p.name);
    expect(names).toContain('Before');
    // Answered during the fault and lost with the page cache, or kept: never anything half-written.
    expect(names.length).toBeLessThanOrEqual(1 + answered);
    expect(names.every((n) => n === 'Before' || n.startsWith('During '))).toBe(true);
    expect((await call('POST', '/api/v1/people', { name: 'After' })).status).toBe(201);
    expect((await call('GET', '/api/v1/system/health')).json.store).toEqual({ status: 'ok' });
  });
});
