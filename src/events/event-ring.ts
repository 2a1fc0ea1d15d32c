import type { AnyFacegateEvent } from './event-map.ts';
import type { EventsSinceQuery, StoredEvent } from '../domain/stored-event.ts';

/** Where the ring keeps its events: src/store's EventsRepository (events may not import the store, so it is named here). */
export interface EventRingStore {
  append(events: readonly StoredEvent[]): Promise<void>;
  /** Events with id > cursor, oldest first; events of camera "*" match any camera filter. */
  since(cursor: number, query?: EventsSinceQuery): Promise<StoredEvent[]>;
  latestId(): Promise<number>;
  oldestId(): Promise<number | null>;
  /** Deletes all but the newest `keep`; returns how many went. */
  prune(keep: number): Promise<number>;
}

export interface EventRingOptions {
  /** Events kept: the newest this many (events.ringSize). */
  ringSize: number;
  /** Prune after this many appends; default a tenth of the ring (at least 100). */
  pruneEvery?: number;
  /** Events waiting for the disk at most; when the database stalls beyond that, the oldest are dropped and counted. */
  maxPending?: number;
  /** Rows per write. */
  batchSize?: number;
  /** A failed write or prune; default: printed to stderr. Recognition goes on either way. */
  onError?: (err: unknown) => void;
}

export interface EventRingStats {
  written: number;
  pending: number;
  /** Events never written: dropped while the database stalled, or lost in a failed write. */
  dropped: number;
  writeErrors: number;
  pruned: number;
}

export interface EventPage {
  events: AnyFacegateEvent[];
  /** The id to poll after next time: the last event's id, or the cursor given when nothing came. */
  cursor: number;
  /** More events match than the page held: poll again at once. */
  hasMore: boolean;
  /** The cursor is older than the oldest event kept: some events in between were pruned. */
  gap: boolean;
}

export function toStored(event: AnyFacegateEvent): StoredEvent {
  return { id: event.id, at: event.timestamp, type: event.type, cameraId: event.camera_id, trackId: event.track_id, data: event.data };
}

export function fromStored(row: StoredEvent): AnyFacegateEvent {
  return { id: row.id, type: row.type, camera_id: row.cameraId, track_id: row.trackId, timestamp: row.at, data: row.data } as AnyFacegateEvent;
}

/**
 * The persisted ring for polling. `add` (a bus listener) only queues; a single writer drains the
 * queue in batches after the current tick, so a burst of events never waits on the disk in the
 * recognition path, and rows reach the table in emit order (each batch is one statement, so a
 * reader always sees a prefix of the emitted sequence). Pruning runs every `pruneEvery` appends.
 */
export class EventRing {
  private readonly ringSize: number;
  private readonly pruneEvery: number;
  private readonly maxPending: number;
  private readonly batchSize: number;
  private readonly onError: (err: unknown) => void;
  private pending: StoredEvent[] = [];
  private running: Promise<void> | null = null;
  private scheduled = false;
  private appendedSincePrune = 0;
  private readonly counters = { written: 0, dropped: 0, writeErrors: 0, pruned: 0 };

  constructor(
    private readonly repo: EventRingStore,
    options: EventRingOptions,
  ) {
    this.ringSize = options.ringSize;
    this.pruneEvery = options.pruneEvery ?? Math.max(100, Math.floor(options.ringSize / 10));
    this.maxPending = options.maxPending ?? Math.max(1000, options.ringSize);
    this.batchSize = options.batchSize ?? 500;
    this.onError = options.onError ?? ((err) => console.error(`facegate: event ring: ${(err as Error)?.message ?? String(err)}`));
  }

  /** The id the bus continues from after a restart. */
  latestId(): Promise<number> {
    return this.repo.latestId();
  }

  /** Queues one event for the disk; returns at once. */
  add(event: AnyFacegateEvent): void {
    if (this.pending.length >= this.maxPending) {
      this.pending.shift();
      this.counters.dropped++;
    }
    this.pending.push(toStored(event));
    this.schedule();
  }

  /** Resolves once every event added so far is written (or has failed). */
  async flush(): Promise<void> {
    while (this.pending.length > 0 || this.running) {
      this.start();
      await this.running;
    }
  }

  /** Events after the cursor, oldest first, including those still queued (it flushes first). */
  async since(cursor: number, query: EventsSinceQuery = {}): Promise<EventPage> {
    await this.flush();
    // One more than asked tells whether more follow; the repository serves at most 1000 rows.
    const limit = Math.min(999, Math.max(1, Math.floor(query.limit ?? 100)));
    const rows = await this.repo.since(cursor, { ...query, limit: limit + 1 });
    const hasMore = rows.length > limit;
    const page = hasMore ? rows.slice(0, limit) : rows;
    const oldest = cursor > 0 ? await this.repo.oldestId() : null;
    return {
      events: page.map(fromStored),
      cursor: page.length > 0 ? page[page.length - 1]!.id : cursor,
      hasMore,
      gap: oldest !== null && cursor < oldest - 1,
    };
  }

  /** Deletes all but the newest ringSize events. */
  async prune(): Promise<void> {
    this.appendedSincePrune = 0;
    try {
      this.counters.pruned += await this.repo.prune(this.ringSize);
    } catch (err) {
      this.counters.writeErrors++;
      this.onError(err);
    }
  }

  stats(): EventRingStats {
    return { ...this.counters, pending: this.pending.length };
  }

  /** Writes what is queued and prunes; the store may close after. */
  async close(): Promise<void> {
    await this.flush();
    await this.prune();
  }

  private schedule(): void {
    if (this.running || this.scheduled) return;
    this.scheduled = true;
    // After the current tick: events emitted together are written together.
    setImmediate(() => {
      this.scheduled = false;
      this.start();
    });
  }

  private start(): void {
    if (this.running || this.pending.length === 0) return;
    this.running = this.drain().finally(() => {
      this.running = null;
      if (this.pending.length > 0) this.schedule();
    });
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.batchSize);
      try {
        await this.repo.append(batch);
        this.counters.written += batch.length;
        this.appendedSincePrune += batch.length;
      } catch (err) {
        this.counters.writeErrors++;
        this.counters.dropped += batch.length;
        this.onError(err);
      }
      if (this.appendedSincePrune >= this.pruneEvery) await this.prune();
    }
  }
}

export type { EventsSinceQuery, StoredEvent };
