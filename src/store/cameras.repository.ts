import type { Selectable } from 'kysely';
import type { CameraConfig } from '../config/config.ts';
import type { RepositoryContext } from './repository-context.ts';
import type { CamerasTable } from './schema.ts';

export type CameraOrigin = 'config' | 'api';

/** A stored camera definition. */
export interface CameraRecord {
  id: string;
  name: string;
  kind: CameraConfig['kind'];
  /** rtsp / mjpeg cameras (may hold credentials: never show it unredacted). */
  url: string | null;
  /** v4l2 cameras. */
  device: string | null;
  /** file cameras: the checked real path. */
  path: string | null;
  /** null = realtime.defaultMaxFps. */
  maxFps: number | null;
  /** Should run: started at boot. */
  enabled: boolean;
  loop: boolean;
  origin: CameraOrigin;
  /** The node it is assigned to (several nodes, issue 9); null = any node may run it. */
  nodeId: string | null;
  createdAt: number;
  updatedAt: number;
}

export type NewCamera = Omit<CameraRecord, 'createdAt' | 'updatedAt' | 'nodeId'> & { nodeId?: string | null };

function toRecord(row: Selectable<CamerasTable>): CameraRecord {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind as CameraRecord['kind'],
    url: row.url,
    device: row.device,
    path: row.path,
    maxFps: row.max_fps,
    enabled: row.enabled === 1,
    loop: row.loop === 1,
    origin: row.origin as CameraOrigin,
    nodeId: row.node_id ?? null,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toRow(camera: NewCamera): Omit<CamerasTable, 'created_at' | 'updated_at'> {
  return {
    id: camera.id,
    name: camera.name,
    kind: camera.kind,
    url: camera.url,
    device: camera.device,
    path: camera.path,
    max_fps: camera.maxFps,
    enabled: camera.enabled ? 1 : 0,
    loop: camera.loop ? 1 : 0,
    origin: camera.origin,
    node_id: camera.nodeId ?? null,
  };
}

/** Camera definitions. */
export class CamerasRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  /** Every camera, by id. */
  async list(): Promise<CameraRecord[]> {
    const rows = await this.ctx.db.selectFrom('cameras').selectAll().orderBy('id').execute();
    return rows.map(toRecord);
  }

  async get(id: string): Promise<CameraRecord | null> {
    const row = await this.ctx.db.selectFrom('cameras').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toRecord(row) : null;
  }

  /** Inserts a camera; null when the id is taken. */
  async create(camera: NewCamera): Promise<CameraRecord | null> {
    const now = this.ctx.now();
    const result = await this.ctx.db
      .insertInto('cameras')
      .values({ ...toRow(camera), created_at: now, updated_at: now })
      .onConflict((oc) => oc.column('id').doNothing())
      .executeTakeFirst();
    if (Number(result.numInsertedOrUpdatedRows ?? 0n) === 0) return null;
    return { ...camera, nodeId: camera.nodeId ?? null, createdAt: now, updatedAt: now };
  }

  /** Inserts or rewrites a camera (config cameras at every start); keeps the creation time. */
  async upsert(camera: NewCamera): Promise<CameraRecord> {
    const now = this.ctx.now();
    const row = toRow(camera);
    const { id: _id, ...changes } = row;
    await this.ctx.db
      .insertInto('cameras')
      .values({ ...row, created_at: now, updated_at: now })
      .onConflict((oc) => oc.column('id').doUpdateSet({ ...changes, updated_at: now }))
      .execute();
    return (await this.get(camera.id))!;
  }

  /** Sets whether the camera should run; false when there is no such camera. */
  async setEnabled(id: string, enabled: boolean): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('cameras')
      .set({ enabled: enabled ? 1 : 0, updated_at: this.ctx.now() })
      .where('id', '=', id)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Assigns the camera to a node (null = any node); false when there is no such camera. */
  async assignNode(id: string, nodeId: string | null): Promise<boolean> {
    const result = await this.ctx.db.updateTable('cameras').set({ node_id: nodeId, updated_at: this.ctx.now() }).where('id', '=', id).executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** false when there was no such camera. */
  async delete(id: string): Promise<boolean> {
    const result = await this.ctx.db.deleteFrom('cameras').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}
