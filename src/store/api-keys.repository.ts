import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { RepositoryContext } from './repository-context.ts';
import type { ApiKeysTable } from './schema.ts';
import { API_KEY_SCOPES, type ApiKey, type ApiKeyRecord, type ApiKeyScope, type NewApiKey } from './types.ts';

function parseScopes(text: string): ApiKeyScope[] {
  const value: unknown = JSON.parse(text);
  return Array.isArray(value) ? value.filter((s): s is ApiKeyScope => (API_KEY_SCOPES as readonly unknown[]).includes(s)) : [];
}

function toRecord(row: Selectable<ApiKeysTable>): ApiKeyRecord {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    keyHash: row.key_hash,
    scopes: parseScopes(row.scopes),
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}

function withoutHash({ keyHash: _hash, ...key }: ApiKeyRecord): ApiKey {
  return key;
}

/** API keys, stored by hash only (see api-key-secret.ts). Whether a key is usable is the caller's rule. */
export class ApiKeysRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async create(input: NewApiKey): Promise<ApiKey> {
    const unknown = input.scopes.filter((s) => !API_KEY_SCOPES.includes(s));
    if (unknown.length > 0) throw new RangeError(`unknown API key scope(s): ${unknown.join(', ')}`);
    const record: ApiKeyRecord = {
      id: input.id ?? randomUUID(),
      name: input.name,
      prefix: input.prefix,
      keyHash: input.keyHash,
      scopes: [...new Set(input.scopes)],
      createdAt: this.ctx.now(),
      lastUsedAt: null,
      revokedAt: null,
    };
    await this.ctx.db
      .insertInto('api_keys')
      .values({
        id: record.id,
        name: record.name,
        prefix: record.prefix,
        key_hash: record.keyHash,
        scopes: JSON.stringify(record.scopes),
        created_at: record.createdAt,
        last_used_at: null,
        revoked_at: null,
      })
      .execute();
    return withoutHash(record);
  }

  async get(id: string): Promise<ApiKey | null> {
    const row = await this.ctx.db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? withoutHash(toRecord(row)) : null;
  }

  /** The key whose hash this is, revoked or not (the caller checks revokedAt). */
  async findByHash(keyHash: string): Promise<ApiKeyRecord | null> {
    const row = await this.ctx.db.selectFrom('api_keys').selectAll().where('key_hash', '=', keyHash).executeTakeFirst();
    return row ? toRecord(row) : null;
  }

  /** Keys sharing a public prefix (normally one), for verifying a presented key in constant time. */
  async findByPrefix(prefix: string): Promise<ApiKeyRecord[]> {
    const rows = await this.ctx.db.selectFrom('api_keys').selectAll().where('prefix', '=', prefix).orderBy('id').execute();
    return rows.map(toRecord);
  }

  /** Every key, newest first, without hashes. */
  async list(): Promise<ApiKey[]> {
    const rows = await this.ctx.db.selectFrom('api_keys').selectAll().orderBy('created_at', 'desc').orderBy('id').execute();
    return rows.map((r) => withoutHash(toRecord(r)));
  }

  /** Marks a key revoked; false when there is no such key or it was revoked already. */
  async revoke(id: string): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('api_keys')
      .set({ revoked_at: this.ctx.now() })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Records a use of the key (callers may throttle this; it is a write per call). */
  async touch(id: string, at: number = this.ctx.now()): Promise<void> {
    await this.ctx.db.updateTable('api_keys').set({ last_used_at: at }).where('id', '=', id).execute();
  }
}
