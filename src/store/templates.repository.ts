import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import { IdSetChecksum } from '../domain/id-checksum.ts';
import { bytesToEmbedding, embeddingToBytes } from './embedding-bytes.ts';
import { isSealed, openStoredEmbedding, type EmbeddingCipher } from './embedding-cipher.ts';
import { isForeignKeyViolation, PersonNotFoundError } from './errors.ts';
import { atomically, inSnapshot, lockGalleryWrites, recordGalleryChanges, type RepositoryContext } from './repository-context.ts';
import type { FaceTemplatesTable } from './schema.ts';
import {
  TEMPLATE_SOURCES,
  type FaceTemplate,
  type GalleryChecksum,
  type GalleryVector,
  type NewFaceTemplate,
  type TemplateRef,
  type TemplateSource,
} from './types.ts';

/** Every column but the thumbnail, which is read only on request. */
const TEMPLATE_COLUMNS = [
  'id',
  'person_id',
  'model_id',
  'embedding',
  'pose_label',
  'yaw_deg',
  'pitch_deg',
  'roll_deg',
  'quality',
  'source',
  'created_at',
] as const;

type TemplateRow = Pick<Selectable<FaceTemplatesTable>, (typeof TEMPLATE_COLUMNS)[number]> & { has_thumbnail: number };

function toTemplate(row: TemplateRow, cipher: EmbeddingCipher | undefined): FaceTemplate {
  return {
    id: row.id,
    personId: row.person_id,
    modelId: row.model_id,
    embedding: bytesToEmbedding(openStoredEmbedding(row.embedding, row.id, cipher)),
    pose: { label: row.pose_label, yawDeg: row.yaw_deg, pitchDeg: row.pitch_deg, rollDeg: row.roll_deg },
    quality: row.quality,
    source: row.source as TemplateSource,
    hasThumbnail: Number(row.has_thumbnail) !== 0,
    createdAt: row.created_at,
  };
}

export class TemplatesRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  /** The bytes stored for an embedding: sealed when a key is configured. */
  #sealed(embedding: Float32Array, templateId: string): Buffer {
    const plain = embeddingToBytes(embedding);
    return this.ctx.cipher ? this.ctx.cipher.seal(plain, templateId) : plain;
  }

  /**
   * With a key configured: seals every embedding still stored in clear (written before the key was
   * set); returns how many. Without a key: does nothing. Idempotent; run at start.
   */
  async sealPlaintext(batchSize = 500): Promise<number> {
    const cipher = this.ctx.cipher;
    if (!cipher) return 0;
    let sealed = 0;
    let after = '';
    for (;;) {
      const rows = await this.ctx.db.selectFrom('face_templates').select(['id', 'embedding']).where('id', '>', after).orderBy('id').limit(batchSize).execute();
      for (const row of rows) {
        if (isSealed(row.embedding)) continue;
        await this.ctx.db.updateTable('face_templates').set({ embedding: cipher.seal(row.embedding, row.id) }).where('id', '=', row.id).execute();
        sealed++;
      }
      if (rows.length < batchSize) return sealed;
      after = rows[rows.length - 1]!.id;
    }
  }

  #select() {
    return this.ctx.db
      .selectFrom('face_templates')
      .select(TEMPLATE_COLUMNS)
      .select((eb) => eb.case().when('thumbnail', 'is not', null).then(1).else(0).end().as('has_thumbnail'));
  }

  /**
   * Stores a template and its gallery 'add' change in one transaction. The thumbnail is dropped
   * when privacy.storeImages is false, so no code path can store a face image against the setting.
   * PersonNotFoundError when the person does not exist.
   */
  async add(input: NewFaceTemplate): Promise<FaceTemplate> {
    if (!TEMPLATE_SOURCES.includes(input.source)) throw new RangeError(`unknown template source "${String(input.source)}"`);
    if (input.embedding.length === 0) throw new RangeError('empty embedding');
    const thumbnail = this.ctx.storeImages && input.thumbnail && input.thumbnail.byteLength > 0 ? input.thumbnail : null;
    const template: FaceTemplate = {
      id: input.id ?? randomUUID(),
      personId: input.personId,
      modelId: input.modelId,
      embedding: input.embedding,
      pose: {
        label: input.pose?.label ?? null,
        yawDeg: input.pose?.yawDeg ?? null,
        pitchDeg: input.pose?.pitchDeg ?? null,
        rollDeg: input.pose?.rollDeg ?? null,
      },
      quality: input.quality ?? null,
      source: input.source,
      hasThumbnail: thumbnail !== null,
      createdAt: this.ctx.now(),
    };
    await atomically(this.ctx, async (db) => {
      await lockGalleryWrites(db, this.ctx.dialect);
      try {
        await db
          .insertInto('face_templates')
          .values({
            id: template.id,
            person_id: template.personId,
            model_id: template.modelId,
            embedding: this.#sealed(template.embedding, template.id),
            pose_label: template.pose.label,
            yaw_deg: template.pose.yawDeg,
            pitch_deg: template.pose.pitchDeg,
            roll_deg: template.pose.rollDeg,
            quality: template.quality,
            source: template.source,
            thumbnail: thumbnail ? Buffer.from(thumbnail.buffer, thumbnail.byteOffset, thumbnail.byteLength) : null,
            created_at: template.createdAt,
          })
          .execute();
      } catch (err) {
        if (isForeignKeyViolation(err)) throw new PersonNotFoundError(template.personId);
        throw err;
      }
      await recordGalleryChanges(db, 'add', [template], template.createdAt, this.ctx.dialect);
    });
    return template;
  }

  async get(id: string): Promise<FaceTemplate | null> {
    const row = await this.#select().where('id', '=', id).executeTakeFirst();
    return row ? toTemplate(row, this.ctx.cipher) : null;
  }

  /** The stored aligned-face thumbnail (encoded bytes), or null. */
  async getThumbnail(id: string): Promise<Buffer | null> {
    const row = await this.ctx.db.selectFrom('face_templates').select('thumbnail').where('id', '=', id).executeTakeFirst();
    return row?.thumbnail ?? null;
  }

  /** A person's templates, oldest first; optionally of one model only. */
  async listByPerson(personId: string, options: { modelId?: string } = {}): Promise<FaceTemplate[]> {
    let query = this.#select().where('person_id', '=', personId);
    if (options.modelId !== undefined) query = query.where('model_id', '=', options.modelId);
    const rows = await query.orderBy('created_at').orderBy('id').execute();
    return rows.map((r) => toTemplate(r, this.ctx.cipher));
  }

  /** Deletes a template and writes its gallery 'remove' change; null when there is no such template. */
  async delete(id: string): Promise<TemplateRef | null> {
    return atomically(this.ctx, async (db) => {
      await lockGalleryWrites(db, this.ctx.dialect);
      const row = await db.selectFrom('face_templates').select(['id', 'person_id', 'model_id']).where('id', '=', id).executeTakeFirst();
      if (!row) return null;
      await db.deleteFrom('face_templates').where('id', '=', id).execute();
      const ref: TemplateRef = { id: row.id, personId: row.person_id, modelId: row.model_id };
      await recordGalleryChanges(db, 'remove', [ref], this.ctx.now(), this.ctx.dialect);
      return ref;
    });
  }

  /**
   * Every template of one model, in batches ordered by id (keyset pages, so memory stays at one
   * batch). Not a snapshot: to rebuild an index, read galleryChanges.latestSeq() first, stream,
   * then apply galleryChanges.since(thatSeq) — adds and removes must be idempotent, since a
   * template written during the stream can appear in both.
   */
  async *streamAll(modelId: string, batchSize = 1000): AsyncGenerator<GalleryVector[]> {
    let after: string | undefined;
    for (;;) {
      let query = this.ctx.db
        .selectFrom('face_templates')
        .select(['id', 'person_id', 'embedding'])
        .where('model_id', '=', modelId);
      if (after !== undefined) query = query.where('id', '>', after);
      const rows = await query.orderBy('id').limit(batchSize).execute();
      if (rows.length > 0) yield rows.map((r) => ({ id: r.id, personId: r.person_id, embedding: bytesToEmbedding(openStoredEmbedding(r.embedding, r.id, this.ctx.cipher)) }));
      if (rows.length < batchSize) return;
      after = rows[rows.length - 1]!.id;
    }
  }

  /**
   * Count and XOR-of-id-hashes (src/domain/id-checksum.ts, the fingerprint the gallery keeps) of
   * one model's templates, with the change log head, all read in one snapshot. Computed in JS by
   * streaming the ids in keyset batches, so both dialects agree and no SQL hashing is needed.
   */
  async checksum(modelId: string, batchSize = 10_000): Promise<GalleryChecksum> {
    return inSnapshot(this.ctx, async (db) => {
      const head = await db.selectFrom('gallery_changes').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
      const hash = new IdSetChecksum();
      let after: string | undefined;
      for (;;) {
        let query = db.selectFrom('face_templates').select('id').where('model_id', '=', modelId);
        if (after !== undefined) query = query.where('id', '>', after);
        const rows = await query.orderBy('id').limit(batchSize).execute();
        for (const r of rows) hash.add(r.id);
        if (rows.length < batchSize) break;
        after = rows[rows.length - 1]!.id;
      }
      return { modelId, count: hash.count, idHashXor: hash.idHashXor, latestSeq: Number(head?.seq ?? 0) };
    });
  }

  /** Template count per person, optionally of one model only. */
  async listPersonIdsWithCount(modelId?: string): Promise<Array<{ personId: string; count: number }>> {
    let query = this.ctx.db.selectFrom('face_templates').select((eb) => ['person_id', eb.fn.countAll<number>().as('n')]);
    if (modelId !== undefined) query = query.where('model_id', '=', modelId);
    const rows = await query.groupBy('person_id').orderBy('person_id').execute();
    return rows.map((r) => ({ personId: r.person_id, count: Number(r.n) }));
  }

  /** Template count per model id: which indexes the gallery has to build. */
  async countByModel(): Promise<Array<{ modelId: string; count: number }>> {
    const rows = await this.ctx.db
      .selectFrom('face_templates')
      .select((eb) => ['model_id', eb.fn.countAll<number>().as('n')])
      .groupBy('model_id')
      .orderBy('model_id')
      .execute();
    return rows.map((r) => ({ modelId: r.model_id, count: Number(r.n) }));
  }

  /** Deletes every stored thumbnail (run at start when privacy.storeImages is false); returns how many. */
  async purgeThumbnails(): Promise<number> {
    const result = await this.ctx.db.updateTable('face_templates').set({ thumbnail: null }).where('thumbnail', 'is not', null).executeTakeFirst();
    return Number(result.numUpdatedRows);
  }
}
