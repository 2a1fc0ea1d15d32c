import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { StoreConfig } from '../../src/store/database.ts';
import type { Dialect } from '../../src/store/schema.ts';

/*
 * The two backends every store test runs against. SQLite: a temporary folder. PostgreSQL: a
 * fresh database on the local server (.ci/run starts one: 127.0.0.1:5432, trust auth, database
 * `test`), created for the test file and dropped after it. Without a server the PostgreSQL half
 * is skipped with a warning, except under CI, where that is a failure.
 */

/** The maintenance connection used to create and drop test databases. */
export const PG_ADMIN_URL = process.env.FACEGATE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface BackendHandle {
  config: StoreConfig;
  /** Another database on the same backend, for tests that need a pristine one. */
  fresh(): Promise<StoreConfig>;
  dispose(): Promise<void>;
}

export interface Backend {
  name: Dialect;
  /** Why this backend cannot run here, or null when it can. */
  skipReason: string | null;
  create(): Promise<BackendHandle>;
}

/** Why PostgreSQL cannot be used here, or null when it can. */
export async function postgresProblem(): Promise<string | null> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return null;
  } catch (err) {
    return `PostgreSQL at ${PG_ADMIN_URL} is unreachable (${(err as Error).message})`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function adminQuery(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

export interface PostgresDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A fresh database of its own on the local PostgreSQL, named prefix_<random>. */
export async function createPostgresDatabase(prefix: string): Promise<PostgresDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await adminQuery(`create database ${name}`);
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => adminQuery(`drop database if exists ${name} with (force)`) };
}

function sqliteBackend(): Backend {
  return {
    name: 'sqlite',
    skipReason: null,
    async create() {
      const dirs: string[] = [];
      const fresh = async (): Promise<StoreConfig> => {
        const dir = await mkdtemp(join(tmpdir(), 'facegate-store-'));
        dirs.push(dir);
        return { dataDir: join(dir, 'data'), database: { poolSize: 1 } };
      };
      return {
        config: await fresh(),
        fresh,
        async dispose() {
          await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
        },
      };
    },
  };
}

function postgresBackend(skipReason: string | null): Backend {
  return {
    name: 'postgres',
    skipReason,
    async create() {
      const databases: PostgresDatabase[] = [];
      const fresh = async (): Promise<StoreConfig> => {
        const db = await createPostgresDatabase('facegate_test');
        databases.push(db);
        return { dataDir: '/nonexistent', database: { url: db.url, poolSize: 4 } };
      };
      return {
        config: await fresh(),
        fresh,
        async dispose() {
          for (const db of databases) await db.drop();
        },
      };
    },
  };
}

/** Both backends; decides once per test file whether PostgreSQL can run. */
export async function storeBackends(): Promise<Backend[]> {
  const pgProblem = await postgresProblem();
  if (pgProblem) {
    if (process.env.CI) throw new Error(`${pgProblem}; CI requires it (scripts/ci/postgres.sh starts it)`);
    console.warn(`\n!!! ${pgProblem}: skipping the PostgreSQL store tests. Run scripts/ci/postgres.sh (as root) to start one.\n`);
  }
  return [sqliteBackend(), postgresBackend(pgProblem)];
}
