import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { TrustConfig } from '../config/config.ts';
import type { EventsRepository, RecognitionLogRepository } from '../store/index.ts';

const DAY_MS = 86_400_000;

export interface RetentionDeps {
  recognitionLog: Pick<RecognitionLogRepository, 'deleteOlderThan'>;
  events: Pick<EventsRepository, 'deleteOlderThan'>;
  /** Folder of unknown-face snapshots (image files, one per sighting); files older than the limit are deleted. */
  snapshotsDir: string;
  retention: TrustConfig['retention'];
  now?: () => number;
  log?: (message: string) => void;
}

export interface RetentionSweep {
  recognitionLog: number;
  events: number;
  snapshots: number;
}

/** Deletes recognition logs, stored events and unknown-face snapshots older than their configured periods, on a timer. */
export class RetentionService {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<RetentionSweep> | undefined;

  constructor(private readonly deps: RetentionDeps) {}

  /** Sweeps once now, then every retention.sweepEveryMs. */
  start(): void {
    void this.sweep().catch((err: unknown) => this.deps.log?.(`retention: sweep failed: ${(err as Error).message}`));
    this.#timer = setInterval(() => {
      void this.sweep().catch((err: unknown) => this.deps.log?.(`retention: sweep failed: ${(err as Error).message}`));
    }, this.deps.retention.sweepEveryMs);
    this.#timer.unref();
  }

  /** One sweep (concurrent calls share it). */
  sweep(): Promise<RetentionSweep> {
    this.#running ??= this.#sweep().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running?.catch(() => undefined);
  }

  async #sweep(): Promise<RetentionSweep> {
    const now = (this.deps.now ?? Date.now)();
    const { recognitionLogDays, eventsDays, snapshotsDays } = this.deps.retention;
    const result: RetentionSweep = { recognitionLog: 0, events: 0, snapshots: 0 };
    if (recognitionLogDays > 0) result.recognitionLog = await this.deps.recognitionLog.deleteOlderThan(now - recognitionLogDays * DAY_MS);
    if (eventsDays > 0) result.events = await this.deps.events.deleteOlderThan(now - eventsDays * DAY_MS);
    if (snapshotsDays > 0) result.snapshots = await this.#sweepSnapshots(now - snapshotsDays * DAY_MS);
    const total = result.recognitionLog + result.events + result.snapshots;
    if (total > 0) this.deps.log?.(`retention: deleted ${result.recognitionLog} recognition log rows, ${result.events} events, ${result.snapshots} snapshots`);
    return result;
  }

  async #sweepSnapshots(cutoffMs: number): Promise<number> {
    let deleted = 0;
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return; // no snapshots folder yet
      }
      for (const entry of entries) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await walk(path);
        else if (entry.isFile() && (await stat(path)).mtimeMs < cutoffMs) {
          await rm(path, { force: true });
          deleted++;
        }
      }
    };
    await walk(this.deps.snapshotsDir);
    return deleted;
  }
}
