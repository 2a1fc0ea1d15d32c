import type { Selectable } from 'kysely';
import { pageLimit, type RepositoryContext } from './repository-context.ts';
import type { RecognitionLogTable } from './schema.ts';
import type { NewRecognitionLogEntry, RecognitionLogEntry, RecognitionLogQuery } from './types.ts';

function toEntry(row: Selectable<RecognitionLogTable>): RecognitionLogEntry {
  return {
    id: row.id,
    at: row.at,
    cameraId: row.camera_id,
    trackId: row.track_id,
    personId: row.person_id,
    modelId: row.model_id,
    similarity: row.similarity,
    margin: row.margin,
    quality: row.quality,
    liveness: row.liveness,
    decision: row.decision,
    reason: row.reason,
  };
}

export class RecognitionLogRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  /** Appends one decision; `at` defaults to now. */
  async append(input: NewRecognitionLogEntry): Promise<RecognitionLogEntry> {
    const values = {
      at: input.at ?? this.ctx.now(),
      camera_id: input.cameraId,
      track_id: input.trackId ?? null,
      person_id: input.personId ?? null,
      model_id: input.modelId ?? null,
      similarity: input.similarity ?? null,
      margin: input.margin ?? null,
      quality: input.quality ?? null,
      liveness: input.liveness ?? null,
      decision: input.decision,
      reason: input.reason ?? null,
    };
    const { id } = await this.ctx.db.insertInto('recognition_log').values(values).returning('id').executeTakeFirstOrThrow();
    return toEntry({ id, ...values });
  }

  /** Newest first; page on with `beforeId` = the last id received. */
  async list(query: RecognitionLogQuery = {}): Promise<RecognitionLogEntry[]> {
    let select = this.ctx.db.selectFrom('recognition_log').selectAll();
    if (query.personId !== undefined) select = select.where('person_id', '=', query.personId);
    if (query.cameraId !== undefined) select = select.where('camera_id', '=', query.cameraId);
    if (query.decision !== undefined) select = select.where('decision', '=', query.decision);
    if (query.sinceMs !== undefined) select = select.where('at', '>=', query.sinceMs);
    if (query.untilMs !== undefined) select = select.where('at', '<', query.untilMs);
    if (query.beforeId !== undefined) select = select.where('id', '<', query.beforeId);
    const rows = await select.orderBy('id', 'desc').limit(pageLimit(query.limit, 100)).execute();
    return rows.map(toEntry);
  }

  /** Retention: deletes entries older than cutoffMs (epoch ms); returns how many. */
  async deleteOlderThan(cutoffMs: number): Promise<number> {
    const result = await this.ctx.db.deleteFrom('recognition_log').where('at', '<', cutoffMs).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
