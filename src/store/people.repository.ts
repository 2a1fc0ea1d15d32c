import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Selectable } from 'kysely';
import { DuplicateExternalIdError, isUniqueViolation } from './errors.ts';
import { atomically, lockGalleryWrites, pageLimit, recordGalleryChanges, type RepositoryContext } from './repository-context.ts';
import type { Database, Dialect, PeopleTable } from './schema.ts';
import type { Metadata, NewPerson, Page, Person, PersonListQuery, PersonPatch } from './types.ts';

const EXTERNAL_ID_UNIQUE = { constraint: 'people_external_id_key', column: 'people.external_id' };

/** Lower case without accents, so "José" is found by "jose" on both dialects (SQL lower() is ASCII-only in SQLite). */
export function searchKey(text: string): string {
  return text.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase();
}

function searchText(p: Pick<Person, 'name' | 'externalId' | 'email' | 'department'>): string {
  // A control-character separator keeps a search word from matching across two fields.
  return [p.name, p.externalId, p.email, p.department]
    .filter((v): v is string => !!v)
    .map(searchKey)
    .join('\u001f');
}

/** A LIKE pattern matching `word` anywhere, with '!' as the escape character. */
function containsPattern(word: string): string {
  return `%${word.replace(/[!%_]/g, '!$&')}%`;
}

function parseMetadata(text: string): Metadata {
  const value: unknown = JSON.parse(text);
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Metadata) : {};
}

function toPerson(row: Selectable<PeopleTable>): Person {
  return {
    id: row.id,
    externalId: row.external_id,
    name: row.name,
    email: row.email,
    department: row.department,
    type: row.type,
    active: row.active !== 0,
    metadata: parseMetadata(row.metadata),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toRow(p: Person): PeopleTable {
  return {
    id: p.id,
    external_id: p.externalId,
    name: p.name,
    email: p.email,
    department: p.department,
    type: p.type,
    active: p.active ? 1 : 0,
    metadata: JSON.stringify(p.metadata),
    search_text: searchText(p),
    created_at: p.createdAt,
    updated_at: p.updatedAt,
  };
}

export class PeopleRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  /** Inserts a person; DuplicateExternalIdError when the external id is taken. */
  async create(input: NewPerson): Promise<Person> {
    const now = this.ctx.now();
    const person: Person = {
      id: input.id ?? randomUUID(),
      externalId: input.externalId ?? null,
      name: input.name,
      email: input.email ?? null,
      department: input.department ?? null,
      type: input.type ?? null,
      active: input.active ?? true,
      metadata: input.metadata ?? {},
      createdAt: now,
      updatedAt: now,
    };
    try {
      await this.ctx.db.insertInto('people').values(toRow(person)).execute();
    } catch (err) {
      if (person.externalId !== null && isUniqueViolation(err, EXTERNAL_ID_UNIQUE)) throw new DuplicateExternalIdError(person.externalId);
      throw err;
    }
    return person;
  }

  async get(id: string): Promise<Person | null> {
    const row = await this.ctx.db.selectFrom('people').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toPerson(row) : null;
  }

  async getByExternalId(externalId: string): Promise<Person | null> {
    const row = await this.ctx.db.selectFrom('people').selectAll().where('external_id', '=', externalId).executeTakeFirst();
    return row ? toPerson(row) : null;
  }

  /** One page of people ordered by name (in the database's collation), then id, with the total that match. */
  async list(query: PersonListQuery = {}): Promise<Page<Person>> {
    const limit = pageLimit(query.limit, 50);
    const offset = Math.max(0, Math.floor(query.offset ?? 0));
    let filtered = this.ctx.db.selectFrom('people');
    for (const word of searchKey(query.search ?? '').split(/\s+/).filter(Boolean)) {
      filtered = filtered.where(sql<boolean>`search_text like ${containsPattern(word)} escape '!'`);
    }
    if (query.active !== undefined) filtered = filtered.where('active', '=', query.active ? 1 : 0);
    if (query.type !== undefined) filtered = filtered.where('type', '=', query.type);
    if (query.department !== undefined) filtered = filtered.where('department', '=', query.department);

    const [rows, counted] = await Promise.all([
      filtered.selectAll().orderBy('name').orderBy('id').limit(limit).offset(offset).execute(),
      filtered.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
    ]);
    return { items: rows.map(toPerson), total: Number(counted.n), limit, offset };
  }

  /** Applies a partial change; null when there is no such person. */
  async update(id: string, patch: PersonPatch): Promise<Person | null> {
    return atomically(this.ctx, async (db) => {
      let select = db.selectFrom('people').selectAll().where('id', '=', id);
      // Lock the row: search_text is derived from the fields a concurrent patch may change.
      if (this.ctx.dialect === 'postgres') select = select.forUpdate();
      const row = await select.executeTakeFirst();
      if (!row) return null;
      const current = toPerson(row);
      const defined = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as PersonPatch;
      const next: Person = { ...current, ...defined, id, createdAt: current.createdAt, updatedAt: Math.max(this.ctx.now(), current.updatedAt) };
      const { id: _id, created_at: _created, ...changes } = toRow(next);
      try {
        await db.updateTable('people').set(changes).where('id', '=', id).execute();
      } catch (err) {
        if (next.externalId !== null && isUniqueViolation(err, EXTERNAL_ID_UNIQUE)) throw new DuplicateExternalIdError(next.externalId);
        throw err;
      }
      return next;
    });
  }

  /**
   * Deletes a person and their templates, writing a gallery 'remove' change per template in the
   * same transaction. Returns the removed template ids, or null when there is no such person.
   */
  async delete(id: string): Promise<string[] | null> {
    return atomically(this.ctx, async (db) => {
      await lockGalleryWrites(db, this.ctx.dialect);
      const exists = await db.selectFrom('people').select('id').where('id', '=', id).executeTakeFirst();
      if (!exists) return null;
      const templates = await removeTemplatesOfPerson(db, id, this.ctx.now(), this.ctx.dialect);
      await db.deleteFrom('people').where('id', '=', id).execute();
      return templates;
    });
  }
}

async function removeTemplatesOfPerson(db: Kysely<Database>, personId: string, at: number, dialect: Dialect): Promise<string[]> {
  const rows = await db.selectFrom('face_templates').select(['id', 'model_id']).where('person_id', '=', personId).orderBy('id').execute();
  if (rows.length === 0) return [];
  await db.deleteFrom('face_templates').where('person_id', '=', personId).execute();
  await recordGalleryChanges(db, 'remove', rows.map((r) => ({ id: r.id, personId, modelId: r.model_id })), at, dialect);
  return rows.map((r) => r.id);
}
