import { accessSync, constants as fsConstants, existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, PostgresDialect, sql, SqliteDialect } from 'kysely';
import pg from 'pg';
import { ConfigError, type Config } from '../config/config.ts';
import { AppError } from '../domain/errors.ts';
import { ApiKeysRepository } from './api-keys.repository.ts';
import { AttendanceRepository } from './attendance.repository.ts';
import { AuditRepository } from './audit.repository.ts';
import { CamerasRepository } from './cameras.repository.ts';
import { EmbeddingCipher, parseEmbeddingKey } from './embedding-cipher.ts';
import { ClusterRepository } from './cluster.repository.ts';
import { EventsRepository } from './events.repository.ts';
import { GalleryChangesRepository } from './gallery-changes.repository.ts';
import { PeopleRepository } from './people.repository.ts';
import { RecognitionLogRepository } from './recognition-log.repository.ts';
import { SessionsRepository } from './sessions.repository.ts';
import type { RepositoryContext } from './repository-context.ts';
import type { Database, Dialect } from './schema.ts';
import { TemplatesRepository } from './templates.repository.ts';
import { UsersRepository } from './users.repository.ts';

/** The repositories, bound either to the store's connection or to one transaction. */
export interface Repositories {
  readonly people: PeopleRepository;
  readonly templates: TemplatesRepository;
  readonly recognitionLog: RecognitionLogRepository;
  readonly apiKeys: ApiKeysRepository;
  readonly galleryChanges: GalleryChangesRepository;
  readonly cameras: CamerasRepository;
  readonly events: EventsRepository;
  readonly sessions: SessionsRepository;
  readonly attendance: AttendanceRepository;
  readonly audit: AuditRepository;
  /** Several nodes on one PostgreSQL (issue 9): event id blocks, camera leases, heartbeats, NOTIFY. */
  readonly cluster: ClusterRepository;
  readonly users: UsersRepository;
}

export interface Store extends Repositories {
  readonly dialect: Dialect;
  /** Where the data lives, safe to print: the SQLite file path or the PostgreSQL URL without credentials. */
  readonly location: string;
  /** The Kysely instance, for src/store modules (migrations) only: services go through repositories. */
  readonly db: Kysely<Database>;
  /**
   * A unit of work: everything fn does through `tx` commits together, and any throw rolls it
   * all back (the error is rethrown). Do not use the store's own repositories inside fn.
   */
  transaction<T>(fn: (tx: Repositories) => Promise<T>): Promise<T>;
  /** Throws when the database cannot answer (for health checks). */
  ping(): Promise<void>;
  /**
   * Why the database cannot take writes now, or null when it can (for health checks): SQLite
   * opened read-only, or the file, its -wal/-shm or its folder not writable by this process;
   * PostgreSQL in a read-only transaction mode (a standby, default_transaction_read_only).
   */
  writeProblem(): Promise<string | null>;
  /**
   * After an erasure: moves deleted data out of places it lingers. SQLite (secure_delete is on, so
   * freed pages are zeroed) checkpoints and truncates the WAL, whose older frames still hold the
   * deleted rows. PostgreSQL keeps dead tuples until VACUUM reuses their space: this runs VACUUM on
   * the tables that hold faces (it marks the space free; it does not overwrite it).
   */
  scrub(): Promise<void>;
  close(): Promise<void>;
}

export interface StoreConfig {
  dataDir: Config['dataDir'];
  database: Config['database'];
  /** privacy.storeImages=false makes the store drop template thumbnails; absent = images allowed. */
  privacy?: Config['privacy'];
  /** trust.embeddingKey seals embeddings at rest (AES-256-GCM); absent = stored in clear. */
  trust?: Pick<Config['trust'], 'embeddingKey'>;
}

export interface StoreOptions {
  /** Clock for created/updated times, epoch ms (tests). */
  now?: () => number;
  /** Errors of idle pooled PostgreSQL connections (a restarted server); default: printed to stderr. */
  onPoolError?: (err: Error) => void;
}

/** The SQLite file used when no PostgreSQL URL is configured. */
export function sqliteFilePath(dataDir: string): string {
  return join(resolve(dataDir), 'facegate.db');
}

function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

/** The URL without user and password. */
function maskUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}

const INT8_OID = 20;

/*
 * node-postgres returns int8 (bigint: our epoch-ms times, identity ids, count(*)) as strings, to
 * be safe beyond 2^53. Every int8 we store is far below that, so parse them as numbers, and fail
 * loudly rather than round if one ever is not. Set on this pool only, not on pg's global types.
 */
const pgTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === INT8_OID && format !== 'binary') {
      return (text: string) => {
        const value = Number(text);
        if (!Number.isSafeInteger(value)) throw new RangeError(`int8 value ${text} does not fit a JS number`);
        return value;
      };
    }
    return pg.types.getTypeParser(oid, format);
  }) as typeof pg.types.getTypeParser,
};

interface OpenedDatabase {
  db: Kysely<Database>;
  location: string;
  beforeClose(): void;
  writeProblem(): Promise<string | null>;
}

function errnoOf(err: unknown): string {
  return String((err as { code?: unknown }).code ?? (err as Error).message);
}

/*
 * SQLite opens a file it may not write read-only without a word (every write then fails with
 * SQLITE_READONLY; better-sqlite3's `readonly` only echoes the option asked for), and it creates
 * its -wal, -shm and -journal files next to the database. access(W_OK) answers for this user and
 * says EROFS on a read-only mount even to root. An open descriptor keeps working after a chmod, so
 * under a running server these checks tell what the NEXT open will meet.
 */
function sqliteWriteProblem(file: string): string | null {
  const uid = process.getuid?.() ?? 'unknown';
  for (const path of [file, `${file}-wal`, `${file}-shm`]) {
    if (path !== file && !existsSync(path)) continue;
    try {
      accessSync(path, fsConstants.W_OK);
    } catch (err) {
      return `${path} is not writable by this process, uid ${uid} (${errnoOf(err)})`;
    }
  }
  try {
    accessSync(dirname(file), fsConstants.W_OK);
  } catch (err) {
    return `the folder ${dirname(file)} is not writable by this process, uid ${uid} (${errnoOf(err)}); SQLite creates its -wal and -shm files there`;
  }
  return null;
}

function openSqlite(dataDir: string): OpenedDatabase {
  const file = sqliteFilePath(dataDir);
  try {
    mkdirSync(resolve(dataDir), { recursive: true });
  } catch (err) {
    throw new AppError('storage_unavailable', 503, `cannot create the data folder ${resolve(dataDir)} (${errnoOf(err)}): create it writable for this user, or set dataDir`);
  }
  let sqlite: SqliteDatabase.Database;
  try {
    sqlite = new SqliteDatabase(file);
  } catch (err) {
    throw new AppError('storage_unavailable', 503, `cannot open the database ${file} (${errnoOf(err)}: ${(err as Error).message}): check that it and its folder exist and are readable and writable by this user`);
  }
  // Refuse to start on a database that cannot be written: every change and every recognition
  // would be answered 503, and the operator learns it from the first refused request instead of now.
  const readOnly = sqliteWriteProblem(file);
  if (readOnly) {
    sqlite.close();
    throw new AppError('storage_read_only', 503, `the database is read-only: ${readOnly}. Make the file, its -wal/-shm files and its folder writable, then start again (nothing was changed)`);
  }
  try {
    // First: another process (a CLI command next to the server) may hold the lock even while we switch to WAL.
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('foreign_keys = ON');
    // With WAL, NORMAL syncs at checkpoints only: a power cut may lose the last commits but never corrupts.
    sqlite.pragma('synchronous = NORMAL');
    // Erased faces must leave the file: deleted content is overwritten with zeros, not just unlinked.
    sqlite.pragma('secure_delete = ON');
  } catch (err) {
    sqlite.close();
    const code = errnoOf(err);
    const status = code.startsWith('SQLITE_READONLY') ? 'storage_read_only' : 'storage_unavailable';
    throw new AppError(status, 503, `cannot prepare the database ${file} (${code}: ${(err as Error).message}); nothing was changed`);
  }
  return {
    db: new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) }),
    location: file,
    beforeClose: () => undefined,
    writeProblem: () => Promise.resolve(sqliteWriteProblem(file)),
  };
}

function openPostgres(url: string, poolSize: number, onPoolError: (err: Error) => void): OpenedDatabase {
  const pool = new pg.Pool({ connectionString: url, max: poolSize, types: pgTypes, application_name: 'facegate' });
  // pool.end() resolves before its sockets have closed: an error on one after close() is no news.
  let closing = false;
  pool.on('error', (err) => {
    if (!closing) onPoolError(err);
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    location: maskUrl(url),
    beforeClose: () => {
      closing = true;
    },
    async writeProblem() {
      const { rows } = await sql<{ transaction_read_only: string }>`show transaction_read_only`.execute(db);
      return rows[0]?.transaction_read_only === 'on' ? 'PostgreSQL is in read-only mode (a standby, or default_transaction_read_only is on)' : null;
    },
  };
}

function repositories(ctx: RepositoryContext): Repositories {
  return {
    people: new PeopleRepository(ctx),
    templates: new TemplatesRepository(ctx),
    recognitionLog: new RecognitionLogRepository(ctx),
    apiKeys: new ApiKeysRepository(ctx),
    galleryChanges: new GalleryChangesRepository(ctx),
    cameras: new CamerasRepository(ctx),
    events: new EventsRepository(ctx),
    sessions: new SessionsRepository(ctx),
    attendance: new AttendanceRepository(ctx),
    audit: new AuditRepository(ctx),
    cluster: new ClusterRepository(ctx),
    users: new UsersRepository(ctx),
  };
}

/**
 * Opens the store: PostgreSQL when database.url is a postgres:// URL, else the SQLite file
 * <dataDir>/facegate.db (folder created, WAL, foreign keys on). Checks the connection before
 * returning; does not migrate (call migrateToLatest).
 */
export async function openDatabase(config: StoreConfig, options: StoreOptions = {}): Promise<Store> {
  const url = config.database.url;
  if (url !== undefined && url !== '' && !isPostgresUrl(url)) {
    throw new ConfigError(`database.url must be a postgres:// or postgresql:// URL (unset for SQLite), got ${maskUrl(url)}`);
  }
  const dialect: Dialect = url ? 'postgres' : 'sqlite';
  const onPoolError = options.onPoolError ?? ((err: Error) => console.error(`facegate: PostgreSQL connection error: ${err.message}`));
  const { db, location, beforeClose, writeProblem } = url ? openPostgres(url, config.database.poolSize, onPoolError) : openSqlite(config.dataDir);

  try {
    await sql`select 1`.execute(db);
  } catch (err) {
    beforeClose();
    await db.destroy().catch(() => undefined);
    throw new AppError('database_unavailable', 503, `cannot open the ${dialect} database at ${location}: ${(err as Error).message}`);
  }

  const base: Omit<RepositoryContext, 'db'> = {
    dialect,
    now: options.now ?? Date.now,
    storeImages: config.privacy?.storeImages ?? true,
    ...(config.trust?.embeddingKey ? { cipher: new EmbeddingCipher(parseEmbeddingKey(config.trust.embeddingKey)) } : {}),
  };
  return {
    dialect,
    location,
    db,
    ...repositories({ ...base, db }),
    transaction: (fn) => db.transaction().execute((trx) => fn(repositories({ ...base, db: trx }))),
    async ping() {
      await sql`select 1`.execute(db);
    },
    writeProblem,
    async scrub() {
      if (dialect === 'sqlite') await sql`pragma wal_checkpoint(TRUNCATE)`.execute(db);
      else await sql`vacuum face_templates`.execute(db);
    },
    async close() {
      beforeClose();
      await db.destroy();
    },
  };
}
