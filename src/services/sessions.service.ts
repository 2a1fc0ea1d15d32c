import { AppError } from '../domain/errors.ts';
import type { Page, Person, RecognitionSession, RosterEntry, SessionListQuery, SessionSighting, SessionSightingWithPerson, Store } from '../store/index.ts';

/*
 * Recognition sessions (seed 004's start-recognition / stop-recognition): a session runs on one
 * camera; every person recognised on that camera while it runs is recorded once, with the first
 * and last time seen and the best confidence. The pipeline reports sightings on every frame, so
 * they are merged in memory and written in batches (every flushEveryMs and at stop), never one
 * write per frame. With a roster, only people on it count as recognised; the others are reported
 * apart (notOnRoster), and roster entries nobody matched are listed as absent.
 *
 * One running session per camera: a second start on the same camera is a 409. Running sessions
 * survive a restart (they are reloaded at start). A single server instance is assumed to own a
 * camera's sessions.
 */

export const MAX_ROSTER_ENTRIES = 10_000;

export interface SessionsServiceDeps {
  store: Store;
  /** How often merged sightings are written, in milliseconds. */
  flushEveryMs?: number;
  now?: () => number;
  log?: (message: string) => void;
  /** Settles attendance writes under way (so a report lists every check-in made during the session). */
  settleCheckIns?: () => Promise<void>;
}

export interface StartSessionInput {
  cameraId: string;
  label?: string | null;
  /** Person ids or external ids (roll numbers, employee codes); absent = everyone recognised counts. */
  roster?: string[] | null;
}

/** One person recognised during a session: the richer row, plus seed 004's `rollNo` and `timestamp`. */
export interface RecognizedStudent {
  personId: string;
  externalId: string | null;
  name: string;
  /** Epoch ms. */
  firstSeen: number;
  /** Epoch ms. */
  lastSeen: number;
  bestConfidence: number;
  /** Seed 004: the external id (roll number), or the person id when the person has none. */
  rollNo: string;
  /** Seed 004: when the person was first seen, ISO 8601. */
  timestamp: string;
}

/** A roster entry nobody matching it was seen. */
export interface AbsentEntry {
  ref: string;
  /** null when the entry names nobody in the gallery. */
  personId: string | null;
  externalId: string | null;
  name: string | null;
}

export interface SessionReport {
  session: RecognitionSession;
  /** Everyone recognised (on the roster, when there is one), in order of first sighting. */
  recognizedStudents: RecognizedStudent[];
  /** People recognised who are not on the roster; empty without a roster. */
  notOnRoster: RecognizedStudent[];
  /** Roster entries not seen; null without a roster. */
  absent: AbsentEntry[] | null;
  /** Attendance check-ins recorded under this session (people already checked in that day before it are not repeated). */
  checkIns: SessionCheckIn[];
}

/** An attendance check-in made while the session ran on its camera. */
export interface SessionCheckIn {
  id: string;
  personId: string;
  externalId: string | null;
  name: string;
  day: string;
  /** Epoch ms. */
  checkInAt: number;
  minutesLate: number;
}

export class SessionNotFoundError extends AppError {
  constructor(id: string) {
    super('session_not_found', 404, `no session with id "${id}"`, { sessionId: id });
  }
}

interface Aggregate {
  firstSeen: number;
  lastSeen: number;
  bestConfidence: number;
  dirty: boolean;
}

const round = (value: number): number => Number(value.toFixed(4));

function toStudent(s: SessionSightingWithPerson): RecognizedStudent {
  return {
    personId: s.personId,
    externalId: s.externalId,
    name: s.name,
    firstSeen: s.firstSeen,
    lastSeen: s.lastSeen,
    bestConfidence: round(s.bestConfidence),
    rollNo: s.externalId ?? s.personId,
    timestamp: new Date(s.firstSeen).toISOString(),
  };
}

export class SessionsService {
  /** cameraId → its running session id. */
  private readonly runningByCamera = new Map<string, string>();
  /** sessionId → personId → merged sighting, for running sessions. */
  private readonly sightings = new Map<string, Map<string, Aggregate>>();
  private readonly starting = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private readonly now: () => number;

  constructor(private readonly deps: SessionsServiceDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Resumes the running sessions of the store and starts the periodic write of sightings. */
  async start(): Promise<void> {
    for (const session of await this.deps.store.sessions.listRunning()) {
      if (this.runningByCamera.has(session.cameraId)) continue;
      this.runningByCamera.set(session.cameraId, session.id);
      const merged = new Map<string, Aggregate>();
      for (const s of await this.deps.store.sessions.sightings(session.id)) {
        merged.set(s.personId, { firstSeen: s.firstSeen, lastSeen: s.lastSeen, bestConfidence: s.bestConfidence, dirty: false });
      }
      this.sightings.set(session.id, merged);
    }
    const every = this.deps.flushEveryMs ?? 2000;
    this.timer = setInterval(() => {
      this.flush().catch((err: Error) => this.deps.log?.(`sessions: could not write sightings: ${err.message}`));
    }, every);
    this.timer.unref();
  }

  /** Starts a session on a camera; 409 session_running when one already runs there. */
  async startSession(input: StartSessionInput): Promise<RecognitionSession> {
    const { cameraId } = input;
    if (this.runningByCamera.has(cameraId) || this.starting.has(cameraId)) {
      throw new AppError('session_running', 409, `a session is already running on camera "${cameraId}"; stop it first`, {
        sessionId: this.runningByCamera.get(cameraId) ?? null,
      });
    }
    if (input.roster && input.roster.length > MAX_ROSTER_ENTRIES) {
      throw new AppError('validation_failed', 400, `a roster holds at most ${MAX_ROSTER_ENTRIES} entries`);
    }
    this.starting.add(cameraId);
    try {
      const roster = input.roster ? await this.resolveRoster([...new Set(input.roster)]) : null;
      const session = await this.deps.store.sessions.create({ cameraId, label: input.label ?? null, roster, startedAt: this.now() });
      this.runningByCamera.set(cameraId, session.id);
      this.sightings.set(session.id, new Map());
      return session;
    } finally {
      this.starting.delete(cameraId);
    }
  }

  /** Stops a running session and returns who was seen; 404 for an unknown id, 409 session_stopped when already stopped. */
  async stopSession(id: string): Promise<SessionReport> {
    const session = await this.deps.store.sessions.get(id);
    if (!session) throw new SessionNotFoundError(id);
    if (session.status === 'stopped') {
      throw new AppError('session_stopped', 409, `session "${id}" was already stopped; GET /api/v1/sessions/${id} reads its report`, { sessionId: id });
    }
    // No sighting after this point belongs to the session.
    if (this.runningByCamera.get(session.cameraId) === id) this.runningByCamera.delete(session.cameraId);
    await this.flush();
    this.sightings.delete(id);
    const stopped = await this.deps.store.sessions.stop(id, this.now());
    return this.report(stopped ?? (await this.deps.store.sessions.get(id))!);
  }

  /** A session with who was seen so far; 404 when unknown. */
  async get(id: string): Promise<SessionReport> {
    const session = await this.deps.store.sessions.get(id);
    if (!session) throw new SessionNotFoundError(id);
    if (session.status === 'running') await this.flush();
    return this.report(session);
  }

  list(query: SessionListQuery = {}): Promise<Page<RecognitionSession>> {
    return this.deps.store.sessions.list(query);
  }

  /** The running session on a camera, if any. */
  runningOn(cameraId: string): string | undefined {
    return this.runningByCamera.get(cameraId);
  }

  /** A person recognised on a camera at a time (epoch ms): recorded when a session runs there. Cheap; no I/O. */
  sighted(cameraId: string, personId: string, confidence: number, atMs: number): void {
    const sessionId = this.runningByCamera.get(cameraId);
    if (sessionId === undefined) return;
    const merged = this.sightings.get(sessionId);
    if (!merged) return;
    const prev = merged.get(personId);
    if (!prev) {
      merged.set(personId, { firstSeen: atMs, lastSeen: atMs, bestConfidence: confidence, dirty: true });
      return;
    }
    if (atMs < prev.firstSeen) prev.firstSeen = atMs;
    if (atMs > prev.lastSeen) prev.lastSeen = atMs;
    if (confidence > prev.bestConfidence) prev.bestConfidence = confidence;
    prev.dirty = true;
  }

  /** Writes every changed sighting; concurrent callers share one write. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing.catch(() => undefined);
    const batch: SessionSighting[] = [];
    for (const [sessionId, merged] of this.sightings) {
      for (const [personId, a] of merged) {
        if (!a.dirty) continue;
        a.dirty = false;
        batch.push({ sessionId, personId, firstSeen: a.firstSeen, lastSeen: a.lastSeen, bestConfidence: a.bestConfidence });
      }
    }
    if (batch.length === 0) return;
    this.flushing = this.deps.store.sessions
      .upsertSightings(batch)
      .then(() => undefined)
      .catch((err: unknown) => {
        // Written again at the next flush.
        for (const s of batch) {
          const a = this.sightings.get(s.sessionId)?.get(s.personId);
          if (a) a.dirty = true;
        }
        throw err;
      })
      .finally(() => {
        this.flushing = undefined;
      });
    await this.flushing;
  }

  /** Writes what is pending and stops the timer; running sessions stay running in the store. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush().catch((err: Error) => this.deps.log?.(`sessions: could not write sightings at close: ${err.message}`));
  }

  private async resolveRoster(refs: string[]): Promise<RosterEntry[]> {
    const out: RosterEntry[] = [];
    for (const ref of refs) out.push({ ref, personId: (await this.findPerson(ref))?.id ?? null });
    return out;
  }

  private async findPerson(ref: string): Promise<Person | null> {
    return (await this.deps.store.people.get(ref)) ?? (await this.deps.store.people.getByExternalId(ref));
  }

  private async checkIns(sessionId: string): Promise<SessionCheckIn[]> {
    await this.deps.settleCheckIns?.().catch((err: Error) => this.deps.log?.(`sessions: attendance writes failed: ${err.message}`));
    const page = await this.deps.store.attendance.list({ sessionId, order: 'asc', limit: 1000 });
    return page.items.map((r) => ({ id: r.id, personId: r.personId, externalId: r.externalId, name: r.name, day: r.day, checkInAt: r.checkInAt, minutesLate: r.minutesLate }));
  }

  private async report(session: RecognitionSession): Promise<SessionReport> {
    const seen = await this.deps.store.sessions.sightings(session.id);
    const checkIns = await this.checkIns(session.id);
    if (!session.roster) return { session, recognizedStudents: seen.map(toStudent), notOnRoster: [], absent: null, checkIns };
    // Entries that named nobody at start may name someone enrolled since.
    const roster = await Promise.all(
      session.roster.map(async (e) => (e.personId !== null ? e : { ref: e.ref, personId: (await this.findPerson(e.ref))?.id ?? null })),
    );
    const onRoster = new Set(roster.map((e) => e.personId).filter((id): id is string => id !== null));
    const seenIds = new Set(seen.map((s) => s.personId));
    const absent: AbsentEntry[] = [];
    for (const e of roster) {
      if (e.personId !== null && seenIds.has(e.personId)) continue;
      const person = e.personId === null ? null : await this.deps.store.people.get(e.personId);
      absent.push({ ref: e.ref, personId: person?.id ?? null, externalId: person?.externalId ?? null, name: person?.name ?? null });
    }
    return {
      session,
      recognizedStudents: seen.filter((s) => onRoster.has(s.personId)).map(toStudent),
      notOnRoster: seen.filter((s) => !onRoster.has(s.personId)).map(toStudent),
      absent,
      checkIns,
    };
  }
}
