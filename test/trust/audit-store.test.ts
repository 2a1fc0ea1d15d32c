import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectPath } from '../../src/config/paths.ts';
import { redactForAudit } from '../../src/services/audit.service.ts';
import { openDatabase, type Store } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { storeBackends, type BackendHandle } from '../store/backends.ts';

const backends = await storeBackends();

for (const backend of backends) {
  describe.skipIf(backend.skipReason !== null)(`audit log on ${backend.name}`, () => {
    let handle: BackendHandle;
    let store: Store;

    beforeAll(async () => {
      handle = await backend.create();
      store = await openDatabase(handle.config);
      await migrateToLatest(store);
    });
    afterAll(async () => {
      await store?.close();
      await handle?.dispose();
    });

    it('appends and lists newest first, with filters', async () => {
      const a = await store.audit.append({ actor: 'key:k1', actorName: 'admin', action: 'POST /api/v1/people', targetType: 'person', targetId: 'p1', details: { body: { name: 'A' } } });
      const b = await store.audit.append({ actor: 'key:k2', action: 'DELETE /api/v1/people/:id', targetType: 'person', targetId: 'p1', details: {} });
      await store.audit.append({ actor: 'cli', action: 'import.templates', targetId: 'p2', details: { count: 3 } });
      const all = await store.audit.list();
      expect(all.map((e) => e.action)).toEqual(['import.templates', 'DELETE /api/v1/people/:id', 'POST /api/v1/people']);
      expect(all[2]).toMatchObject({ id: a.id, actor: 'key:k1', actorName: 'admin', details: { body: { name: 'A' } } });
      expect((await store.audit.list({ targetId: 'p1' })).map((e) => e.id)).toEqual([b.id, a.id]);
      expect((await store.audit.list({ actionPrefix: 'DELETE' })).map((e) => e.id)).toEqual([b.id]);
      expect((await store.audit.list({ beforeId: b.id })).map((e) => e.id)).toEqual([a.id]);
    });

    it('the database refuses UPDATE and DELETE of audit rows (append-only trigger)', async () => {
      await store.audit.append({ actor: 'system', action: 'test', details: {} });
      await expect(sql`update audit_log set actor = 'someone else'`.execute(store.db)).rejects.toThrow(/append-only/);
      await expect(sql`delete from audit_log`.execute(store.db)).rejects.toThrow(/append-only/);
      expect((await store.audit.list()).length).toBeGreaterThan(0);
    });
  });
}

describe('audit log code paths', () => {
  it('no source file updates or deletes audit rows', () => {
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (name.endsWith('.ts') && !name.includes('/migrations/')) {
          const text = readFileSync(path, 'utf8');
          if (/(updateTable|deleteFrom)\(\s*'audit_log'/.test(text) || /(update|delete\s+from)\s+audit_log/i.test(text.replace(/raise.*|tg_op.*|before (update|delete).*/gi, ''))) offenders.push(path);
        }
      }
    };
    walk(projectPath('src'));
    expect(offenders.filter((p) => !p.includes('migrations'))).toEqual([]);
  });

  it('redacts images and secrets from details and cuts long values', () => {
    const out = redactForAudit({ name: 'Ann', image: 'x'.repeat(5000), images: ['a'], password: 'hunter2', nested: { apiKey: 'fg_x', ok: 1 }, notes: 'n'.repeat(500), list: Array.from({ length: 50 }, (_, i) => i) }) as Record<string, unknown>;
    expect(out).toMatchObject({ name: 'Ann', image: '[redacted]', images: '[redacted]', password: '[redacted]', nested: { apiKey: '[redacted]', ok: 1 } });
    expect(String(out.notes).length).toBeLessThan(260);
    expect((out.list as unknown[]).length).toBe(21);
  });
});
