import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import { AppError } from '../domain/errors.ts';
import { isUniqueViolation } from './errors.ts';
import type { RepositoryContext } from './repository-context.ts';
import type { LoginSessionsTable, UsersTable } from './schema.ts';

export const USER_ROLES = ['admin', 'operator'] as const;
export type UserRole = (typeof USER_ROLES)[number];

/** A person who signs in to the web UI; never carries the password hash. */
export interface User {
  id: string;
  name: string;
  role: UserRole;
  createdAt: number;
  lastLoginAt: number | null;
  failedLogins: number;
  lockedUntil: number | null;
}

export interface UserRecord extends User {
  passwordHash: string;
}

/** A browser session: a user's, or an API key's (a kiosk signed in with its device key). */
export interface LoginSession {
  tokenHash: string;
  userId: string | null;
  apiKeyId: string | null;
  csrfToken: string;
  createdAt: number;
  expiresAt: number;
}

function toRecord(row: Selectable<UsersTable>): UserRecord {
  return {
    id: row.id,
    name: row.name,
    role: row.role === 'admin' ? 'admin' : 'operator',
    passwordHash: row.password_hash,
    createdAt: row.created_at,
    lastLoginAt: row.last_login_at,
    failedLogins: row.failed_logins,
    lockedUntil: row.locked_until,
  };
}

function withoutHash({ passwordHash: _hash, ...user }: UserRecord): User {
  return user;
}

function toSession(row: Selectable<LoginSessionsTable>): LoginSession {
  return {
    tokenHash: row.token_hash,
    userId: row.user_id,
    apiKeyId: row.api_key_id,
    csrfToken: row.csrf_token,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}

/** Users and their browser sessions. Whether a password or a session is good is the service's rule. */
export class UsersRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async create(input: { name: string; role: UserRole; passwordHash: string }): Promise<User> {
    const record: UserRecord = {
      id: randomUUID(),
      name: input.name,
      role: input.role,
      passwordHash: input.passwordHash,
      createdAt: this.ctx.now(),
      lastLoginAt: null,
      failedLogins: 0,
      lockedUntil: null,
    };
    try {
      await this.ctx.db
        .insertInto('users')
        .values({
          id: record.id,
          name: record.name,
          password_hash: record.passwordHash,
          role: record.role,
          failed_logins: 0,
          locked_until: null,
          created_at: record.createdAt,
          last_login_at: null,
        })
        .execute();
    } catch (err) {
      if (isUniqueViolation(err, { constraint: 'users_name_key', column: 'users.name' })) {
        throw new AppError('user_exists', 409, `a user named ${input.name} exists already`);
      }
      throw err;
    }
    return withoutHash(record);
  }

  async findByName(name: string): Promise<UserRecord | null> {
    const row = await this.ctx.db.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? toRecord(row) : null;
  }

  async get(id: string): Promise<User | null> {
    const row = await this.ctx.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? withoutHash(toRecord(row)) : null;
  }

  async list(): Promise<User[]> {
    const rows = await this.ctx.db.selectFrom('users').selectAll().orderBy('name').execute();
    return rows.map((r) => withoutHash(toRecord(r)));
  }

  async count(): Promise<number> {
    const row = await this.ctx.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Deletes a user and (by cascade) their sessions; false when there is no such user. */
  async delete(id: string): Promise<boolean> {
    const result = await this.ctx.db.deleteFrom('users').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async setPassword(id: string, passwordHash: string): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('users')
      .set({ password_hash: passwordHash, failed_logins: 0, locked_until: null })
      .where('id', '=', id)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Counts one failed sign-in; locks the user until lockUntil once the count reaches maxFailures. */
  async recordFailure(id: string, maxFailures: number, lockUntil: number): Promise<void> {
    const row = await this.ctx.db.selectFrom('users').select('failed_logins').where('id', '=', id).executeTakeFirst();
    if (!row) return;
    const failures = row.failed_logins + 1;
    await this.ctx.db
      .updateTable('users')
      .set(failures >= maxFailures ? { failed_logins: 0, locked_until: lockUntil } : { failed_logins: failures })
      .where('id', '=', id)
      .execute();
  }

  async recordSuccess(id: string, at: number = this.ctx.now()): Promise<void> {
    await this.ctx.db.updateTable('users').set({ failed_logins: 0, locked_until: null, last_login_at: at }).where('id', '=', id).execute();
  }

  async createSession(session: LoginSession): Promise<void> {
    await this.ctx.db
      .insertInto('login_sessions')
      .values({
        token_hash: session.tokenHash,
        user_id: session.userId,
        api_key_id: session.apiKeyId,
        csrf_token: session.csrfToken,
        created_at: session.createdAt,
        expires_at: session.expiresAt,
      })
      .execute();
  }

  async findSession(tokenHash: string): Promise<LoginSession | null> {
    const row = await this.ctx.db.selectFrom('login_sessions').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return row ? toSession(row) : null;
  }

  async deleteSession(tokenHash: string): Promise<void> {
    await this.ctx.db.deleteFrom('login_sessions').where('token_hash', '=', tokenHash).execute();
  }

  /** Removes sessions that expired before now; returns how many. */
  async deleteExpiredSessions(now: number = this.ctx.now()): Promise<number> {
    const result = await this.ctx.db.deleteFrom('login_sessions').where('expires_at', '<=', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
