import { sql, type RawBuilder } from 'kysely';
import type { RepositoryContext } from './repository-context.ts';
import { EVENT_ID_BLOCK } from './migrations/0007_cluster.ts';

/*
 * What several nodes on one PostgreSQL share (issue 9): event id blocks, camera leases, node
 * heartbeats and notifications. PostgreSQL only: on SQLite there is one node and none of this is
 * called (the methods throw so that a wiring mistake shows at once). Lease times come from the
 * database's clock, so the nodes' clocks need not agree.
 */

/** The LISTEN/NOTIFY channels. */
export const CLUSTER_CHANNELS = {
  /** A gallery change committed (payload: the writer's newest seq). */
  gallery: 'facegate_gallery',
  /** Events committed to the ring (payload: JSON, see ClusterNotice in src/cluster). */
  events: 'facegate_events',
  /** A registration decision for the node running the camera. */
  decisions: 'facegate_decisions',
} as const;

/** The largest NOTIFY payload PostgreSQL takes is 8000 bytes; stay below with room for the channel. */
export const NOTIFY_MAX_BYTES = 7900;

export interface CameraLease {
  cameraId: string;
  nodeId: string;
  /** Epoch ms, database clock. */
  expiresAt: number;
}

export interface ClusterNodeRecord {
  nodeId: string;
  startedAt: number;
  lastSeen: number;
}

/** The database's clock, epoch ms. */
const dbNowMs: RawBuilder<number> = sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`;

export class ClusterRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  private requirePostgres(): void {
    if (this.ctx.dialect !== 'postgres') throw new Error('cluster state needs PostgreSQL');
  }

  /** The database's clock, epoch ms. */
  async now(): Promise<number> {
    this.requirePostgres();
    const { rows } = await sql<{ now: number }>`select ${dbNowMs} as now`.execute(this.ctx.db);
    return Number(rows[0]!.now);
  }

  /** Reserves a block of event ids: [first, first + size). Unique across nodes. */
  async reserveEventIds(): Promise<{ first: number; size: number }> {
    this.requirePostgres();
    const { rows } = await sql<{ first: number }>`select nextval('facegate_event_ids') as first`.execute(this.ctx.db);
    return { first: Number(rows[0]!.first), size: EVENT_ID_BLOCK };
  }

  /** Sends a notification; inside a transaction it is delivered at commit, and not at all on rollback. */
  async notify(channel: string, payload: string): Promise<void> {
    this.requirePostgres();
    await sql`select pg_notify(${channel}, ${payload})`.execute(this.ctx.db);
  }

  /** Records that the node is alive (and when it started, at its first beat). */
  async heartbeat(nodeId: string, startedAt: number): Promise<void> {
    this.requirePostgres();
    await sql`insert into cluster_nodes (node_id, started_at, last_seen) values (${nodeId}, ${startedAt}, ${dbNowMs})
      on conflict (node_id) do update set last_seen = excluded.last_seen, started_at = excluded.started_at`.execute(this.ctx.db);
  }

  async nodes(): Promise<ClusterNodeRecord[]> {
    const rows = await this.ctx.db.selectFrom('cluster_nodes').selectAll().orderBy('node_id').execute();
    return rows.map((r) => ({ nodeId: r.node_id, startedAt: r.started_at, lastSeen: r.last_seen }));
  }

  /**
   * Takes or renews the lease of a camera for `durationMs`: succeeds when nobody holds it, this
   * node holds it, or the holder's lease has run out. Returns the lease when this node holds it now.
   */
  async acquireLease(cameraId: string, nodeId: string, durationMs: number): Promise<CameraLease | null> {
    this.requirePostgres();
    const { rows } = await sql<{ expires_at: number }>`
      insert into camera_leases as l (camera_id, node_id, expires_at) values (${cameraId}, ${nodeId}, ${dbNowMs} + ${Math.round(durationMs)})
      on conflict (camera_id) do update set node_id = excluded.node_id, expires_at = excluded.expires_at
        where l.node_id = excluded.node_id or l.expires_at < ${dbNowMs}
      returning expires_at`.execute(this.ctx.db);
    return rows.length > 0 ? { cameraId, nodeId, expiresAt: Number(rows[0]!.expires_at) } : null;
  }

  /** Gives a lease up (this node's only); true when it held it. */
  async releaseLease(cameraId: string, nodeId: string): Promise<boolean> {
    const result = await this.ctx.db.deleteFrom('camera_leases').where('camera_id', '=', cameraId).where('node_id', '=', nodeId).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async leases(): Promise<CameraLease[]> {
    const rows = await this.ctx.db.selectFrom('camera_leases').selectAll().orderBy('camera_id').execute();
    return rows.map((r) => ({ cameraId: r.camera_id, nodeId: r.node_id, expiresAt: r.expires_at }));
  }
}
