import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/config.ts';
import { AppError } from '../../src/domain/errors.ts';
import { openDatabase, sqliteFilePath } from '../../src/store/database.ts';

describe('openDatabase', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('creates the data folder and the SQLite file when no URL is set', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'facegate-open-'));
    dirs.push(dir);
    const dataDir = join(dir, 'nested', 'data');
    const store = await openDatabase({ dataDir, database: { url: '', poolSize: 1 } });
    try {
      expect(store.dialect).toBe('sqlite');
      expect(existsSync(sqliteFilePath(dataDir))).toBe(true);
      await store.ping();
    } finally {
      await store.close();
    }
  });

  it('refuses a URL that is not PostgreSQL, without echoing credentials', async () => {
    const err = await openDatabase({ dataDir: 'unused', database: { url: 'mysql://root:hunter2@db/x', poolSize: 1 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).not.toContain('hunter2');
  });

  it('fails with a 503 database_unavailable when PostgreSQL cannot be reached, without echoing credentials', async () => {
    const err = await openDatabase({ dataDir: 'unused', database: { url: 'postgres://u:hunter2@127.0.0.1:1/x', poolSize: 1 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'database_unavailable', status: 503 });
    expect((err as Error).message).toContain('127.0.0.1:1');
    expect((err as Error).message).not.toContain('hunter2');
  });
});
