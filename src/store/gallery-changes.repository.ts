import { pageLimit, type RepositoryContext } from './repository-context.ts';
import type { GalleryChange, GalleryOp } from './types.ts';

/**
 * The gallery change log, written by the template and people repositories in the same
 * transaction as each template insert or delete. Read-only here.
 */
export class GalleryChangesRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  /** Changes after `seq`, oldest first (at most `limit`, default 1000); optionally of one model only. */
  async since(seq: number, options: { limit?: number; modelId?: string } = {}): Promise<GalleryChange[]> {
    let query = this.ctx.db.selectFrom('gallery_changes').selectAll().where('seq', '>', seq);
    if (options.modelId !== undefined) query = query.where('model_id', '=', options.modelId);
    const rows = await query.orderBy('seq').limit(pageLimit(options.limit, 1000, 10_000)).execute();
    return rows.map((r) => ({
      seq: r.seq,
      templateId: r.template_id,
      personId: r.person_id,
      modelId: r.model_id,
      op: r.op as GalleryOp,
      at: r.at,
    }));
  }

  /** The newest sequence number, 0 when nothing was ever written. */
  async latestSeq(): Promise<number> {
    const row = await this.ctx.db.selectFrom('gallery_changes').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
    return Number(row?.seq ?? 0);
  }
}
