import { sql, type Kysely } from 'kysely';
import type { EmbeddingCipher } from './embedding-cipher.ts';
import type { Database, Dialect } from './schema.ts';

/** What every repository is built from: the connection (or the transaction it is bound to) and the store's settings. */
export interface RepositoryContext {
  db: Kysely<Database>;
  dialect: Dialect;
  now: () => number;
  /** privacy.storeImages: false = template thumbnails are dropped before they reach the database. */
  storeImages: boolean;
  /** trust.embeddingKey set: embeddings are sealed (AES-256-GCM) before they reach the database. */
  cipher?: EmbeddingCipher;
}

/** Runs fn in the caller's transaction when there is one, else in a new one. */
export async function atomically<T>(ctx: RepositoryContext, fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  if (ctx.db.isTransaction) return fn(ctx.db);
  return ctx.db.transaction().execute(fn);
}

/**
 * Runs fn so that all its reads see one snapshot: the caller's transaction when there is one,
 * else a repeatable-read transaction (SQLite's WAL transactions are snapshots already).
 */
export async function inSnapshot<T>(ctx: RepositoryContext, fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  if (ctx.db.isTransaction) return fn(ctx.db);
  return ctx.db.transaction().setIsolationLevel('repeatable read').execute(fn);
}

/*
 * PostgreSQL hands out identity values when a row is inserted, not when its transaction
 * commits, so two concurrent writers could commit seq 11 before seq 10 and a reader catching up
 * with since(10) would miss 10 forever. Writers of gallery_changes therefore take this
 * transaction-scoped advisory lock before their first gallery write: sequence order is then
 * commit order. Template writes are rare (enrollment, import), so serialising them costs
 * nothing that matters. SQLite has a single writer and needs no lock. Kysely's migration lock
 * uses the one-bigint key space; this uses the (int, int) space, which never overlaps it.
 */
const GALLERY_LOCK_CLASS = 0x46616365; // 'Face'
const GALLERY_LOCK_OBJECT = 1;
/** 2 is the migration lock (migrate.ts). */
const EVENT_LOCK_OBJECT = 3;

/** Takes the gallery write lock for the rest of the transaction db belongs to (PostgreSQL only). */
export async function lockGalleryWrites(db: Kysely<Database>, dialect: Dialect): Promise<void> {
  if (dialect !== 'postgres') return;
  if (!db.isTransaction) throw new Error('lockGalleryWrites must run inside a transaction');
  await sql`select pg_advisory_xact_lock(${sql.lit(GALLERY_LOCK_CLASS)}, ${sql.lit(GALLERY_LOCK_OBJECT)})`.execute(db);
}

/** Makes event ring seq order commit order (0007_cluster): held to the end of the transaction db belongs to (PostgreSQL only). */
export async function lockEventWrites(db: Kysely<Database>, dialect: Dialect): Promise<void> {
  if (dialect !== 'postgres') return;
  if (!db.isTransaction) throw new Error('lockEventWrites must run inside a transaction');
  await sql`select pg_advisory_xact_lock(${sql.lit(GALLERY_LOCK_CLASS)}, ${sql.lit(EVENT_LOCK_OBJECT)})`.execute(db);
}

/** Appends gallery change rows; call after lockGalleryWrites, in the same transaction as the template write. */
export async function recordGalleryChanges(
  db: Kysely<Database>,
  op: 'add' | 'remove',
  templates: ReadonlyArray<{ id: string; personId: string; modelId: string }>,
  at: number,
  dialect: Dialect,
): Promise<void> {
  // 6 parameters a row; 500 rows stay far below both drivers' parameter limits.
  for (let i = 0; i < templates.length; i += 500) {
    const rows = templates.slice(i, i + 500).map((t) => ({ template_id: t.id, person_id: t.personId, model_id: t.modelId, op, at }));
    await db.insertInto('gallery_changes').values(rows).execute();
  }
  // Other nodes' indexes catch up at once instead of at their next periodic look (issue 9);
  // delivered at commit, dropped on rollback, and folded into one when several are sent.
  if (dialect === 'postgres' && templates.length > 0) await sql`select pg_notify('facegate_gallery', '')`.execute(db);
}

/** Clamps a requested page size. */
export function pageLimit(requested: number | undefined, fallback: number, max = 1000): number {
  if (requested === undefined || !Number.isFinite(requested)) return fallback;
  return Math.min(max, Math.max(1, Math.floor(requested)));
}
