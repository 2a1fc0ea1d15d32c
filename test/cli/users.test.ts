import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usersServiceFor, openStore } from '../../src/app.ts';
import { parseConfig } from '../../src/config/config.ts';
import { projectPath } from '../../src/config/paths.ts';

/* `facegate user …` through the real binary, over a temporary data folder. */

function facegate(args: string[], env: Record<string, string>, stdin?: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [projectPath('bin/facegate.mjs'), ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
    child.stdin.end(stdin ?? '');
  });
}

describe('facegate user (CLI)', () => {
  let dataDir: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'facegate-cli-users-'));
    env = { FACEGATE_DATA_DIR: dataDir };
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('adds a user with the password from the environment or stdin, lists, sets a password, removes', async () => {
    const added = await facegate(['user', 'add', 'ada', '--role', 'admin'], { ...env, FACEGATE_PASSWORD: 'correct horse' });
    expect([added.code, added.out.trim()]).toEqual([0, 'facegate: user ada (admin) created']);
    const short = await facegate(['user', 'add', 'bob'], env, 'short\n');
    expect(short.code).toBe(2);
    expect(short.err).toContain('a password has 8');
    expect((await facegate(['user', 'add', 'bob'], env, 'long enough\n')).code).toBe(0);
    const again = await facegate(['user', 'add', 'ada'], { ...env, FACEGATE_PASSWORD: 'whatever else' });
    expect([again.code, again.err.trim()]).toEqual([2, 'facegate: a user named ada exists already']);

    const list = await facegate(['user', 'list'], env);
    expect(list.out).toMatch(/^ada\tadmin\tlast sign-in never$/m);
    expect(list.out).toMatch(/^bob\toperator\t/m);

    expect((await facegate(['user', 'passwd', 'bob'], env, 'a brand new one\n')).code).toBe(0);
    // The stored hash checks the new password (through the same service the server signs in with).
    const config = parseConfig({ dataDir });
    const store = await openStore(config);
    try {
      const users = usersServiceFor(config, store);
      await expect(users.signInWithPassword('bob', 'a brand new one', '127.0.0.1')).resolves.toMatchObject({ principal: { keyName: 'bob', level: 'operator' } });
      await expect(users.signInWithPassword('bob', 'long enough', '127.0.0.1')).rejects.toMatchObject({ code: 'invalid_credentials' });
    } finally {
      await store.close();
    }

    expect((await facegate(['user', 'remove', 'bob'], env)).code).toBe(0);
    expect((await facegate(['user', 'list'], env)).out).not.toContain('bob');
    expect((await facegate(['user', 'remove', 'bob'], env)).code).toBe(2);
  });
});
