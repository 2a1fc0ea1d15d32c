import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../src/store/api-key-secret.ts';
import { openDatabase, type Store } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { hashPassword, verifyPassword } from '../../src/services/password.ts';
import { storeBackends, type BackendHandle } from './backends.ts';

const backends = await storeBackends();

for (const backend of backends) {
  describe.skipIf(backend.skipReason !== null)(`users and login sessions on ${backend.name}`, () => {
    let handle: BackendHandle;
    let store: Store;
    const nowMs = 1_700_000_000_000;

    beforeAll(async () => {
      handle = await backend.create();
      store = await openDatabase(handle.config, { now: () => nowMs });
      await migrateToLatest(store);
    });
    afterAll(async () => {
      await store?.close();
      await handle?.dispose();
    });

    it('creates users with unique names, never returns the hash, counts failures into a lockout', async () => {
      const ada = await store.users.create({ name: 'ada', role: 'admin', passwordHash: 'scrypt$x' });
      expect(ada).toEqual({ id: ada.id, name: 'ada', role: 'admin', createdAt: nowMs, lastLoginAt: null, failedLogins: 0, lockedUntil: null });
      await expect(store.users.create({ name: 'ada', role: 'operator', passwordHash: 'scrypt$y' })).rejects.toMatchObject({ code: 'user_exists', status: 409 });
      expect((await store.users.findByName('ada'))!.passwordHash).toBe('scrypt$x');
      expect(await store.users.findByName('nobody')).toBeNull();
      expect((await store.users.list()).every((u) => !('passwordHash' in u))).toBe(true);

      await store.users.recordFailure(ada.id, 3, nowMs + 60_000);
      await store.users.recordFailure(ada.id, 3, nowMs + 60_000);
      expect(await store.users.get(ada.id)).toMatchObject({ failedLogins: 2, lockedUntil: null });
      await store.users.recordFailure(ada.id, 3, nowMs + 60_000);
      expect(await store.users.get(ada.id)).toMatchObject({ failedLogins: 0, lockedUntil: nowMs + 60_000 });
      await store.users.recordSuccess(ada.id, nowMs + 1);
      expect(await store.users.get(ada.id)).toMatchObject({ failedLogins: 0, lockedUntil: null, lastLoginAt: nowMs + 1 });
      expect(await store.users.setPassword(ada.id, 'scrypt$z')).toBe(true);
      expect(await store.users.setPassword('missing', 'scrypt$z')).toBe(false);
    });

    it('keeps sessions by token hash; they go with their user or key, and expire', async () => {
      const bob = await store.users.create({ name: 'bob', role: 'operator', passwordHash: 'h' });
      const secret = generateApiKey();
      const key = await store.apiKeys.create({ name: 'kiosk', prefix: secret.prefix, keyHash: secret.keyHash, scopes: ['device'] });
      const base = { csrfToken: 'c', createdAt: nowMs, expiresAt: nowMs + 1000 };
      await store.users.createSession({ tokenHash: 'u1', userId: bob.id, apiKeyId: null, ...base });
      await store.users.createSession({ tokenHash: 'k1', userId: null, apiKeyId: key.id, ...base });
      await store.users.createSession({ tokenHash: 'old', userId: bob.id, apiKeyId: null, ...base, expiresAt: nowMs - 1 });
      // A session belongs to exactly one of a user and a key.
      await expect(store.users.createSession({ tokenHash: 'both', userId: bob.id, apiKeyId: key.id, ...base })).rejects.toThrow();
      await expect(store.users.createSession({ tokenHash: 'none', userId: null, apiKeyId: null, ...base })).rejects.toThrow();

      expect(await store.users.findSession('u1')).toEqual({ tokenHash: 'u1', userId: bob.id, apiKeyId: null, ...base });
      expect(await store.users.deleteExpiredSessions(nowMs)).toBe(1);
      expect(await store.users.findSession('old')).toBeNull();
      expect(await store.users.delete(bob.id)).toBe(true);
      expect(await store.users.findSession('u1')).toBeNull();
      expect(await store.users.findSession('k1')).not.toBeNull();
      await store.users.deleteSession('k1');
      expect(await store.users.findSession('k1')).toBeNull();
    });
  });
}

describe('password hashes', () => {
  it('verifies the right password only, and refuses malformed hashes without throwing', async () => {
    const hash = await hashPassword('correct horse');
    expect(hash).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(await hashPassword('correct horse')).not.toBe(hash); // salted
    expect(await verifyPassword('correct horse', hash)).toBe(true);
    expect(await verifyPassword('correct horsE', hash)).toBe(false);
    for (const bad of ['', 'scrypt$1$2', 'bcrypt$1$2$3$4$5', 'scrypt$0$8$1$AAAA$AAAA', 'scrypt$16384$8$1$$']) expect(await verifyPassword('x', bad)).toBe(false);
  });
});
