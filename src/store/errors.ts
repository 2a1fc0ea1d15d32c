import { AppError } from '../domain/errors.ts';

/** Another person already has this external id (employee code, roll number). */
export class DuplicateExternalIdError extends AppError {
  constructor(readonly externalId: string) {
    super('duplicate_external_id', 409, `a person with external id "${externalId}" already exists`, { externalId });
    this.name = 'DuplicateExternalIdError';
  }
}

/** A template was added for a person that does not exist (or was deleted meanwhile). */
export class PersonNotFoundError extends AppError {
  constructor(readonly personId: string) {
    super('person_not_found', 404, `no person with id "${personId}"`, { personId });
    this.name = 'PersonNotFoundError';
  }
}

interface DriverError {
  code?: unknown;
  constraint?: unknown;
  message?: unknown;
}

/*
 * better-sqlite3 throws SqliteError with code 'SQLITE_CONSTRAINT_UNIQUE' / '…_PRIMARYKEY' /
 * '…_FOREIGNKEY' and names the columns in the message ("UNIQUE constraint failed: people.external_id");
 * pg throws with SQLSTATE code '23505' (unique) / '23503' (foreign key) and the constraint name.
 */

/** Whether err is a unique violation on the given constraint (PostgreSQL) or table.column (SQLite). */
export function isUniqueViolation(err: unknown, target: { constraint: string; column: string }): boolean {
  const e = err as DriverError | null;
  if (!e || typeof e !== 'object') return false;
  if (e.code === '23505') return e.constraint === target.constraint;
  if (e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    return typeof e.message === 'string' && e.message.includes(target.column);
  }
  return false;
}

/** Whether err is a foreign key violation (either dialect). */
export function isForeignKeyViolation(err: unknown): boolean {
  const code = (err as DriverError | null)?.code;
  return code === '23503' || code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}
