import { hostname } from 'node:os';
import { ConfigError, type ClusterConfig, type Config } from '../config/config.ts';
import type { StoredEvent } from '../domain/stored-event.ts';
import type { DecisionRegistry, RegistrationDecision } from '../events/decisions.ts';
import type { EventBus } from '../events/event-bus.ts';
import type { EventRingStore } from '../events/event-ring.ts';
import { fromStored } from '../events/event-ring.ts';
import { CLUSTER_CHANNELS, NOTIFY_MAX_BYTES, PgListener, type CameraLease, type Store } from '../store/index.ts';
import { EventIdAllocator } from './event-ids.ts';

/*
 * One node of several sharing one PostgreSQL (issue 9). PostgreSQL carries all shared state;
 * there is no protocol between nodes of our own:
 *
 * - Gallery: template writes append to gallery_changes and NOTIFY facegate_gallery in the same
 *   transaction (src/store); on a notification, on every (re)connection of the LISTEN connection
 *   and at the gallery's own periodic look, the index reads the log after the last seq it applied.
 *   Every checksumEveryMs the index is compared with the store (count + id-hash checksum) and
 *   rebuilt when they differ.
 * - Events: ids come from blocks of a database sequence (event-ids.ts). The ring writes each
 *   batch and NOTIFYs it in one transaction, so a notified event is stored; the other nodes relay
 *   it to their WebSocket clients and system state, never to their ring, webhooks or MQTT (the
 *   emitting node did those), so nothing happens twice. Events too large for a notification go
 *   by id and are read from the ring.
 * - Decisions: a registration decision for a camera another node processes goes to that node
 *   (NOTIFY facegate_decisions), which checks that the camera still waits and acts on it.
 * - Cameras: ffmpeg cameras run where their lease is (camera_leases, database clock). Leases are
 *   renewed every renewEveryMs; a node that cannot renew stops its cameras before its leases can
 *   run out, and a lease that ran out is taken by a live node. A camera assigned to a node goes
 *   back to it when that node is alive.
 */

/** What an event notification carries: the events themselves, or their ids when too large. */
interface EventNotice {
  /** The emitting node. */
  n: string;
  e?: StoredEvent[];
  ids?: number[];
}

interface DecisionNotice {
  from: string;
  to: string;
  decision: RegistrationDecision;
}

/** The gallery as the cluster keeps it in step (GalleryService is one). */
export interface ClusterGallery {
  syncWithStore(): Promise<number>;
  verify(): Promise<{ inStep: boolean }>;
}

/** The cameras as the cluster moves them (CamerasService is one). */
export interface ClusterCameras {
  reconcile(): Promise<void>;
}

export interface ClusterStatus {
  nodeId: string;
  listening: boolean;
  reconnects: number;
  nodes: { nodeId: string; startedAt: number; lastSeen: number; alive: boolean }[];
  leases: CameraLease[];
  /** Cameras whose lease this node holds. */
  owned: string[];
  eventsRelayed: number;
  eventsNotified: number;
  decisionsForwarded: number;
  gallerySyncs: number;
  galleryRepairs: number;
}

const FFMPEG_KINDS = new Set(['rtsp', 'mjpeg', 'v4l2', 'file']);

/** This node's id: cluster.nodeId, else "<hostname>:<port>". */
export function clusterNodeId(config: Pick<Config, 'cluster' | 'server'>): string {
  return config.cluster.nodeId ?? `${hostname()}:${config.server.port}`;
}

/** Splits events into notifications that fit PostgreSQL's payload limit; an event too large alone goes by id. */
export function eventNotices(nodeId: string, events: readonly StoredEvent[]): string[] {
  const notices: string[] = [];
  const overhead = JSON.stringify({ n: nodeId, e: [] }).length;
  let batch: string[] = [];
  let bytes = overhead;
  const flush = (): void => {
    if (batch.length > 0) notices.push(`{"n":${JSON.stringify(nodeId)},"e":[${batch.join(',')}]}`);
    batch = [];
    bytes = overhead;
  };
  for (const event of events) {
    const json = JSON.stringify(event);
    const size = Buffer.byteLength(json) + 1;
    if (overhead + size > NOTIFY_MAX_BYTES) {
      flush();
      notices.push(JSON.stringify({ n: nodeId, ids: [event.id] }));
      continue;
    }
    if (bytes + size > NOTIFY_MAX_BYTES) flush();
    batch.push(json);
    bytes += size;
  }
  flush();
  return notices;
}

export interface ClusterNodeOptions {
  nodeId: string;
  /** The PostgreSQL URL (the LISTEN connection is opened on it). */
  url: string;
  config: ClusterConfig;
  store: Store;
  log?: (message: string) => void;
}

export class ClusterNode {
  readonly nodeId: string;
  readonly ids: EventIdAllocator;
  readonly #options: ClusterNodeOptions;
  readonly #store: Store;
  readonly #log: (message: string) => void;
  readonly #listener: PgListener;
  readonly #startedAt = Date.now();
  #bus: EventBus | null = null;
  #decisions: DecisionRegistry | null = null;
  #gallery: ClusterGallery | null = null;
  #cameras: ClusterCameras | null = null;
  /** The node whose events about each camera came last: where its waits live. */
  readonly #cameraNode = new Map<string, string>();
  #owned = new Set<string>();
  /** Local monotonic time until which the owned leases are certainly ours (renewed at minus a margin). */
  #ownedUntil = 0;
  #leases = new Map<string, CameraLease>();
  #nodes: ClusterStatus['nodes'] = [];
  #timers: NodeJS.Timeout[] = [];
  #tickRunning: Promise<void> | null = null;
  #tickAgain = false;
  #gallerySync: Promise<void> | null = null;
  #gallerySyncAgain = false;
  #closed = false;
  #unsubscribe: (() => void) | null = null;
  readonly #counters = { eventsRelayed: 0, eventsNotified: 0, decisionsForwarded: 0, gallerySyncs: 0, galleryRepairs: 0 };

  constructor(options: ClusterNodeOptions) {
    if (options.config.renewEveryMs * 2 > options.config.leaseMs) {
      throw new ConfigError(`cluster.renewEveryMs (${options.config.renewEveryMs}) must be at most half of cluster.leaseMs (${options.config.leaseMs})`);
    }
    this.#options = options;
    this.nodeId = options.nodeId;
    this.#store = options.store;
    this.#log = options.log ?? (() => undefined);
    this.ids = new EventIdAllocator(options.store.cluster, this.#log);
    this.#listener = new PgListener({
      url: options.url,
      channels: Object.values(CLUSTER_CHANNELS),
      onNotification: (channel, payload) => this.#onNotification(channel, payload),
      onConnected: (reconnected) => {
        // Whatever was committed while nobody listened is in the change log: read it now.
        this.#syncGallery();
        if (reconnected) this.#wakeLeases();
      },
      onDisconnected: (err) => this.#log(`cluster: the LISTEN connection broke (${err.message}); reopening it`),
      reconnectMs: options.config.reconnectMs,
      reconnectMaxMs: options.config.reconnectMaxMs,
      log: this.#log,
    });
  }

  /** Before the event runtime starts: the first block of event ids. */
  async prepare(): Promise<void> {
    await this.ids.prime();
  }

  /** The ring's store: each batch is written and announced to the other nodes in one transaction. */
  ringStore(): EventRingStore {
    const events = this.#store.events;
    return {
      append: (batch) =>
        this.#store.transaction(async (tx) => {
          await tx.events.append(batch);
          for (const notice of eventNotices(this.nodeId, batch)) await tx.cluster.notify(CLUSTER_CHANNELS.events, notice);
          this.#counters.eventsNotified += batch.length;
        }),
      since: (cursor, query) => events.since(cursor, query),
      latestId: () => events.latestId(),
      oldestId: () => events.oldestId(),
      prune: (keep) => events.prune(keep),
    };
  }

  /** Starts listening, the lease loop and the checksum check. */
  async start(parts: { bus: EventBus; decisions: DecisionRegistry; gallery: ClusterGallery; cameras: ClusterCameras }): Promise<void> {
    this.#bus = parts.bus;
    this.#decisions = parts.decisions;
    this.#gallery = parts.gallery;
    this.#cameras = parts.cameras;
    this.#unsubscribe = parts.bus.subscribe((e) => this.#cameraNode.set(e.camera_id, this.nodeId));
    parts.decisions.setRouter({
      remoteNodeOf: (cameraId) => {
        const node = this.#cameraNode.get(cameraId);
        return node !== undefined && node !== this.nodeId ? node : null;
      },
      forward: (nodeId, decision) => this.#forwardDecision(nodeId, decision),
    });
    await this.#listener.start();
    await this.#tick();
    const { renewEveryMs, checksumEveryMs } = this.#options.config;
    this.#timers.push(setInterval(() => this.#wakeLeases(), renewEveryMs));
    if (checksumEveryMs > 0) this.#timers.push(setInterval(() => void this.#checkGallery(), checksumEveryMs));
    for (const t of this.#timers) t.unref();
    this.#log(`cluster: node ${this.nodeId} joined (lease ${this.#options.config.leaseMs} ms, renewed every ${renewEveryMs} ms)`);
  }

  /** True when this node holds the camera's lease (and has renewed it recently enough to be sure). */
  owns(cameraId: string): boolean {
    return this.#owned.has(cameraId) && performance.now() < this.#ownedUntil;
  }

  /** The node holding the camera's lease as last seen, null when none. */
  holder(cameraId: string): string | null {
    if (this.owns(cameraId)) return this.nodeId;
    const lease = this.#leases.get(cameraId);
    return lease && lease.nodeId !== this.nodeId ? lease.nodeId : null;
  }

  /** Runs the lease loop soon (a camera was created, assigned or started). */
  wake(): void {
    this.#wakeLeases();
  }

  async status(): Promise<ClusterStatus> {
    return {
      nodeId: this.nodeId,
      listening: this.#listener.connected,
      reconnects: this.#listener.reconnects,
      nodes: this.#nodes,
      leases: [...this.#leases.values()],
      owned: [...this.#owned].filter((id) => this.owns(id)),
      ...this.#counters,
    };
  }

  /** Stops the loops, hands this node's leases back (another node takes them at once) and stops listening. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    this.#unsubscribe?.();
    this.#decisions?.setRouter(null);
    await this.#tickRunning;
    await this.#gallerySync;
    const owned = [...this.#owned];
    this.#owned.clear();
    await this.#cameras?.reconcile().catch(() => undefined);
    for (const cameraId of owned) await this.#store.cluster.releaseLease(cameraId, this.nodeId).catch(() => undefined);
    await this.#listener.close();
  }

  #onNotification(channel: string, payload: string): void {
    if (this.#closed) return;
    try {
      if (channel === CLUSTER_CHANNELS.gallery) this.#syncGallery();
      else if (channel === CLUSTER_CHANNELS.events) this.#onEvents(JSON.parse(payload) as EventNotice);
      else if (channel === CLUSTER_CHANNELS.decisions) this.#onDecision(JSON.parse(payload) as DecisionNotice);
    } catch (err) {
      this.#log(`cluster: a ${channel} notification could not be handled: ${(err as Error).message}`);
    }
  }

  #onEvents(notice: EventNotice): void {
    if (notice.n === this.nodeId || !this.#bus) return;
    if (notice.e) {
      for (const stored of notice.e) this.#relay(notice.n, stored);
      return;
    }
    if (notice.ids) {
      // Too large for a notification: committed before the notice was sent, so it is in the ring.
      const from = notice.n;
      this.#store.events.byIds(notice.ids).then(
        (events) => events.forEach((e) => this.#relay(from, e)),
        (err: Error) => this.#log(`cluster: reading relayed events failed: ${err.message}`),
      );
    }
  }

  #relay(from: string, stored: StoredEvent): void {
    this.#cameraNode.set(stored.cameraId, from);
    this.#counters.eventsRelayed++;
    this.#bus!.relay(fromStored(stored));
  }

  #forwardDecision(nodeId: string, decision: RegistrationDecision): void {
    const notice: DecisionNotice = { from: this.nodeId, to: nodeId, decision };
    this.#counters.decisionsForwarded++;
    this.#store.cluster
      .notify(CLUSTER_CHANNELS.decisions, JSON.stringify(notice))
      .catch((err: Error) => this.#log(`cluster: forwarding a decision for camera ${decision.cameraId} to ${nodeId} failed: ${err.message}`));
  }

  #onDecision(notice: DecisionNotice): void {
    if (notice.to !== this.nodeId || !this.#decisions) return;
    const { cameraId, trackId, register } = notice.decision;
    try {
      this.#decisions.decide({ cameraId, ...(trackId !== null ? { trackId } : {}), register });
    } catch (err) {
      // The wait ended between the check on the other node and now (the person left, another client answered).
      this.#log(`cluster: a decision from ${notice.from} for camera ${cameraId} was not applied: ${(err as Error).message}`);
    }
  }

  #syncGallery(): void {
    if (!this.#gallery || this.#closed) return;
    if (this.#gallerySync) {
      this.#gallerySyncAgain = true;
      return;
    }
    const gallery = this.#gallery;
    this.#gallerySync = (async () => {
      do {
        this.#gallerySyncAgain = false;
        try {
          await gallery.syncWithStore();
          this.#counters.gallerySyncs++;
        } catch (err) {
          this.#log(`cluster: gallery catch-up failed: ${(err as Error).message}`);
        }
      } while (this.#gallerySyncAgain && !this.#closed);
    })().finally(() => (this.#gallerySync = null));
  }

  async #checkGallery(): Promise<void> {
    if (!this.#gallery || this.#closed) return;
    try {
      const check = await this.#gallery.verify();
      if (!check.inStep) {
        this.#counters.galleryRepairs++;
        this.#log('cluster: the gallery index had drifted from the store and was rebuilt');
      }
    } catch (err) {
      this.#log(`cluster: gallery checksum check failed: ${(err as Error).message}`);
    }
  }

  #wakeLeases(): void {
    if (this.#closed) return;
    if (this.#tickRunning) {
      this.#tickAgain = true;
      return;
    }
    this.#tickRunning = (async () => {
      do {
        this.#tickAgain = false;
        await this.#tick();
      } while (this.#tickAgain && !this.#closed);
    })().finally(() => (this.#tickRunning = null));
  }

  /** One round of the lease loop: heartbeat, take/renew/hand back leases, then start/stop cameras to match. */
  async #tick(): Promise<void> {
    const { leaseMs } = this.#options.config;
    const started = performance.now();
    try {
      const cluster = this.#store.cluster;
      await cluster.heartbeat(this.nodeId, this.#startedAt);
      const [now, nodes, leases, cameras] = await Promise.all([cluster.now(), cluster.nodes(), cluster.leases(), this.#store.cameras.list()]);
      this.#nodes = nodes.map((n) => ({ ...n, alive: n.lastSeen > now - leaseMs }));
      const alive = new Set(this.#nodes.filter((n) => n.alive).map((n) => n.nodeId));
      const leaseOf = new Map(leases.map((l) => [l.cameraId, l]));
      const owned = new Set<string>();
      const wanted = new Set<string>();
      for (const camera of cameras) {
        if (!camera.enabled || !FFMPEG_KINDS.has(camera.kind)) continue;
        wanted.add(camera.id);
        const lease = leaseOf.get(camera.id);
        const mine = lease?.nodeId === this.nodeId;
        // Assigned to another node that is alive: that node runs it (hand it back if we hold it).
        if (camera.nodeId !== null && camera.nodeId !== this.nodeId && alive.has(camera.nodeId)) {
          if (mine) {
            await cluster.releaseLease(camera.id, this.nodeId);
            leaseOf.delete(camera.id);
            this.#log(`cluster: camera ${camera.id} handed back to ${camera.nodeId}`);
          }
          continue;
        }
        if (lease && !mine && lease.expiresAt > now) continue; // another live holder
        const taken = await cluster.acquireLease(camera.id, this.nodeId, leaseMs);
        if (taken) {
          owned.add(camera.id);
          leaseOf.set(camera.id, taken);
          if (!mine && !this.#owned.has(camera.id)) {
            this.#log(`cluster: camera ${camera.id} now runs on this node${lease ? ` (taken over from ${lease.nodeId})` : ''}`);
          }
        }
      }
      // Leases of cameras deleted, disabled or turned into push cameras.
      for (const lease of leases) {
        if (lease.nodeId === this.nodeId && !wanted.has(lease.cameraId)) {
          await cluster.releaseLease(lease.cameraId, this.nodeId);
          leaseOf.delete(lease.cameraId);
        }
      }
      this.#owned = owned;
      // Sure of the leases until they could run out, less a renewal period of margin, measured
      // from before the round began (its queries took time).
      this.#ownedUntil = started + leaseMs - this.#options.config.renewEveryMs;
      this.#leases = leaseOf;
    } catch (err) {
      this.#log(`cluster: renewing leases failed: ${(err as Error).message}`);
    }
    // Runs after a failure too: once the leases can no longer be trusted, owns() says no and the cameras stop.
    try {
      await this.#cameras?.reconcile();
    } catch (err) {
      this.#log(`cluster: starting or stopping cameras failed: ${(err as Error).message}`);
    }
  }
}
