import type { Selectable } from 'kysely';
import { pageLimit, type RepositoryContext } from './repository-context.ts';
import type { AuditLogTable } from './schema.ts';

/** One audited change. */
export interface AuditEntry {
  id: number;
  at: number;
  /** "key:<id>", "user:<id>", "cli" or "system". */
  actor: string;
  actorName: string | null;
  ip: string | null;
  /** What was done, e.g. "DELETE /api/v1/people/:id" or "import.templates". */
  action: string;
  targetType: string | null;
  targetId: string | null;
  details: Record<string, unknown>;
}

export type NewAuditEntry = Omit<AuditEntry, 'id' | 'at' | 'actorName' | 'ip' | 'targetType' | 'targetId'> &
  Partial<Pick<AuditEntry, 'at' | 'actorName' | 'ip' | 'targetType' | 'targetId'>>;

export interface AuditQuery {
  /** Entries with a smaller id (paging newest first). */
  beforeId?: number;
  targetId?: string;
  actor?: string;
  /** Entries whose action starts with this. */
  actionPrefix?: string;
  sinceMs?: number;
  limit?: number;
}

function toEntry(row: Selectable<AuditLogTable>): AuditEntry {
  let details: Record<string, unknown>;
  try {
    details = JSON.parse(row.details) as Record<string, unknown>;
  } catch {
    details = { unreadable: row.details.slice(0, 200) };
  }
  return {
    id: Number(row.id),
    at: row.at,
    actor: row.actor,
    actorName: row.actor_name,
    ip: row.ip,
    action: row.action,
    targetType: row.target_type,
    targetId: row.target_id,
    details,
  };
}

/** The append-only audit log: append and read, nothing else (the database refuses the rest too). */
export class AuditRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async append(input: NewAuditEntry): Promise<AuditEntry> {
    const values = {
      at: input.at ?? this.ctx.now(),
      actor: input.actor,
      actor_name: input.actorName ?? null,
      ip: input.ip ?? null,
      action: input.action,
      target_type: input.targetType ?? null,
      target_id: input.targetId ?? null,
      details: JSON.stringify(input.details),
    };
    const { id } = await this.ctx.db.insertInto('audit_log').values(values).returning('id').executeTakeFirstOrThrow();
    return toEntry({ id, ...values });
  }

  /** Newest first. */
  async list(query: AuditQuery = {}): Promise<AuditEntry[]> {
    let select = this.ctx.db.selectFrom('audit_log').selectAll();
    if (query.beforeId !== undefined) select = select.where('id', '<', query.beforeId);
    if (query.targetId !== undefined) select = select.where('target_id', '=', query.targetId);
    if (query.actor !== undefined) select = select.where('actor', '=', query.actor);
    if (query.actionPrefix !== undefined) select = select.where('action', 'like', `${query.actionPrefix.replace(/[%_\\]/g, '')}%`);
    if (query.sinceMs !== undefined) select = select.where('at', '>=', query.sinceMs);
    const rows = await select.orderBy('id', 'desc').limit(pageLimit(query.limit, 100)).execute();
    return rows.map(toEntry);
  }
}
