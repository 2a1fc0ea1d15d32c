import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../schema.ts';

/*
 * People who sign in to the web UI (admins, operators) and the browser sessions they, or a kiosk
 * signing in with a device key, hold. Passwords are stored as scrypt hashes; a session is stored
 * by the SHA-256 of its cookie token (the token itself is never stored), with the CSRF token the
 * browser must echo on every mutating request. A session belongs either to a user or to an API
 * key, and goes when its user is deleted or its key is revoked (checked at use).
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const epochMs = dialect === 'postgres' ? 'bigint' : 'integer';

  await db.schema
    .createTable('users')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('password_hash', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('failed_logins', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('locked_until', epochMs)
    .addColumn('created_at', epochMs, (c) => c.notNull())
    .addColumn('last_login_at', epochMs)
    .addCheckConstraint('users_role_check', sql`role in ('admin', 'operator')`)
    .execute();

  await db.schema
    .createTable('login_sessions')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.references('users.id').onDelete('cascade'))
    .addColumn('api_key_id', 'text', (c) => c.references('api_keys.id').onDelete('cascade'))
    .addColumn('csrf_token', 'text', (c) => c.notNull())
    .addColumn('created_at', epochMs, (c) => c.notNull())
    .addColumn('expires_at', epochMs, (c) => c.notNull())
    .addCheckConstraint('login_sessions_owner_check', sql`(user_id is null) <> (api_key_id is null)`)
    .execute();
  await db.schema.createIndex('login_sessions_user_idx').on('login_sessions').column('user_id').execute();
  await db.schema.createIndex('login_sessions_expires_idx').on('login_sessions').column('expires_at').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('login_sessions').execute();
  await db.schema.dropTable('users').execute();
}
