import { AppError } from '../domain/errors.ts';
import { generateApiKey, hashApiKey, type ApiKey, type ApiKeyScope, type ApiKeysRepository } from '../store/index.ts';

/** Access levels, lowest first: a key may call every route at or below its highest scope. */
export const ACCESS_LEVELS = ['public', 'device', 'operator', 'admin'] as const;
export type AccessLevel = (typeof ACCESS_LEVELS)[number];

/** Who is calling: the key and the highest level its scopes grant. */
export interface Principal {
  keyId: string;
  keyName: string;
  scopes: ApiKeyScope[];
  level: AccessLevel;
  /** Set when a web UI user signed in with a password (keyId is then `user:<id>`). */
  userId?: string;
}

export function levelOf(scopes: readonly ApiKeyScope[]): AccessLevel {
  return scopes.reduce<AccessLevel>((best, s) => (ACCESS_LEVELS.indexOf(s) > ACCESS_LEVELS.indexOf(best) ? s : best), 'public');
}

export function allows(principal: Principal | undefined, required: AccessLevel): boolean {
  if (required === 'public') return true;
  return principal !== undefined && ACCESS_LEVELS.indexOf(principal.level) >= ACCESS_LEVELS.indexOf(required);
}

/** Refreshing last-used on every request would turn every read into a write; once a minute is enough. */
const TOUCH_INTERVAL_MS = 60_000;

/** API keys: created with scopes, stored hashed, checked on every request, revocable. */
export class AuthService {
  private readonly lastTouchedMs = new Map<string, number>();

  constructor(private readonly keys: ApiKeysRepository) {}

  /**
   * On a first start (no usable key at all) creates an admin key and returns it, to be printed
   * once; it is never shown again, only its hash is stored.
   */
  async ensureAdminKey(): Promise<string | undefined> {
    const usable = (await this.keys.list()).filter((k) => k.revokedAt === null);
    if (usable.length > 0) return undefined;
    const { key } = await this.createKey('first-start admin key', ['admin']);
    return key;
  }

  async createKey(name: string, scopes: ApiKeyScope[]): Promise<{ key: string; record: ApiKey }> {
    if (scopes.length === 0) throw new AppError('invalid_scopes', 400, 'a key needs at least one scope');
    const { key, prefix, keyHash } = generateApiKey();
    const record = await this.keys.create({ name, prefix, keyHash, scopes: [...new Set(scopes)] });
    return { key, record };
  }

  listKeys(): Promise<ApiKey[]> {
    return this.keys.list();
  }

  async revokeKey(id: string): Promise<void> {
    if (!(await this.keys.revoke(id))) throw new AppError('key_not_found', 404, `no active API key ${id}`);
  }

  /** The principal for a key by id (a browser session signed in with a key), or undefined when it is gone or revoked. */
  async principalForKeyId(id: string): Promise<Principal | undefined> {
    const record = await this.keys.get(id);
    if (!record || record.revokedAt !== null) return undefined;
    return { keyId: record.id, keyName: record.name, scopes: record.scopes, level: levelOf(record.scopes) };
  }

  /** The principal for a presented key, or undefined when it is unknown or revoked. */
  async authenticate(presented: string): Promise<Principal | undefined> {
    if (!presented.startsWith('fg_') || presented.length > 200) return undefined;
    const record = await this.keys.findByHash(hashApiKey(presented));
    if (!record || record.revokedAt !== null) return undefined;
    const now = Date.now();
    if (now - (this.lastTouchedMs.get(record.id) ?? 0) > TOUCH_INTERVAL_MS) {
      this.lastTouchedMs.set(record.id, now);
      await this.keys.touch(record.id, now);
    }
    return { keyId: record.id, keyName: record.name, scopes: record.scopes, level: levelOf(record.scopes) };
  }
}
