/*
 * Identity per track, not per frame. Each embedded view of a track gives one identity decision
 * (decideIdentity in identity.ts); this file turns a track's decisions into one answer by a
 * weighted vote, after Frigate's per-object face scoring: a name needs enough evidence and a clear
 * majority, and a tie or a split names nobody. A decided identity is sticky — one odd view does not
 * flip it — but a run of views that contradict it (someone else stepped in front of the kiosk)
 * unsettles it and the vote starts over from those views.
 */
import type { IdentityDecision, UnknownReason } from './identity.ts';

/** One identity decision about one view of a track (the shape decideIdentity returns). */
export type TrackObservation =
  | { decision: 'match'; personId: string; similarity: number; margin: number }
  | { decision: 'unknown'; reason: UnknownReason; bestPersonId?: string; similarity?: number };

export type TrackIdentity =
  /** Too little evidence to say. `votes` = observations that carry evidence so far. */
  | { status: 'pending'; votes: number }
  | {
      status: 'known';
      personId: string;
      /** Weighted mean similarity of the votes for the person. */
      similarity: number;
      /** The person's single best similarity on this track. */
      bestSimilarity: number;
      /** Evidence observations in the window, and how many of them name the person. */
      votes: number;
      personVotes: number;
      /** The person's share of the window's vote weight, 0..1. */
      share: number;
    }
  | {
      status: 'unknown';
      /** ambiguous = the votes split (between people, or between a person and nobody). */
      reason: UnknownReason;
      votes: number;
      /** The strongest candidate seen, when there was one, and its best similarity. */
      bestPersonId?: string;
      similarity?: number;
    };

export interface TrackIdentityUpdate {
  identity: TrackIdentity;
  previous: TrackIdentity;
  /** status, person or reason changed (vote counts alone do not count). */
  changed: boolean;
}

export interface TrackVoteConfig {
  /** Evidence observations needed before the majority rule names anyone (or names nobody). */
  minVotes: number;
  /** The leading candidate's share of the vote weight needed to win, > 0.5. */
  minShare: number;
  /** Fast path: a single match at least this similar (and with fastPathMinMargin) names the person at once. */
  fastPathMinSimilarity: number;
  fastPathMinMargin: number;
  /**
   * Once a person is known, an "unknown" view whose best candidate is still that person at this
   * similarity or more is a poor view of them, not evidence of someone else.
   */
  weakSupportMinSimilarity: number;
  /** Consecutive contradicting observations that unsettle a decided identity. */
  unsettleAfterVotes: number;
  /** The vote looks at a track's latest this-many evidence observations. */
  historySize: number;
  /** Tracks remembered at once (a safety bound; the caller forgets tracks when they leave). */
  maxTracks: number;
}

/*
 * Defaults and why (similarities are for fr_feature, search threshold 0.5; use trackVoteConfigFor
 * to derive them from another model's calibrated thresholds):
 * - minVotes 3: the smallest count where one odd view is outvoted 2 : 1;
 * - minShare 0.6: a clear weighted majority; 0.5 would let a near-tie name someone;
 * - fastPathMinSimilarity 0.6 (search + 0.1) and fastPathMinMargin 0.1 (2 × identity.minMargin):
 *   a first view this far above the threshold and this far ahead of the runner-up is wrong far
 *   less often than the 3-vote rule is slow — the track is named on its first embedding, ≈ 100 ms
 *   after it appears, which is what keeps time to identity under 300 ms;
 * - weakSupportMinSimilarity 0.3 (search − 0.2): strangers score under it against any one person,
 *   a poor view (turned, blurred) of the known person usually above it;
 * - unsettleAfterVotes 2: one contradicting view is noise, two in a row (≈ 0.25 s apart once the
 *   first unsettles the embedding policy) is a different face;
 * - historySize 12: ≈ 3 s of views at the unsettled embedding rate; old views stop counting;
 * - maxTracks 1024: far above the tracker's per-camera cap; only guards against a caller that forgets.
 */
export const DEFAULT_TRACK_VOTE_CONFIG: Readonly<TrackVoteConfig> = Object.freeze({
  minVotes: 3,
  minShare: 0.6,
  fastPathMinSimilarity: 0.6,
  fastPathMinMargin: 0.1,
  weakSupportMinSimilarity: 0.3,
  unsettleAfterVotes: 2,
  historySize: 12,
  maxTracks: 1024,
});

/** The vote config for a model's calibrated search threshold (and identity.minMargin): the defaults' offsets applied to it. */
export function trackVoteConfigFor(searchThreshold: number, minMargin = 0.05, overrides: Partial<TrackVoteConfig> = {}): TrackVoteConfig {
  return {
    ...DEFAULT_TRACK_VOTE_CONFIG,
    fastPathMinSimilarity: Math.min(1, searchThreshold + 0.1),
    fastPathMinMargin: Math.max(2 * minMargin, 0.05),
    weakSupportMinSimilarity: searchThreshold - 0.2,
    ...overrides,
  };
}

interface Observation {
  /** The person named, or null for an unknown decision. */
  personId: string | null;
  reason: UnknownReason | null;
  /** The unknown decision's best candidate. */
  bestPersonId: string | null;
  similarity: number | null;
  margin: number | null;
  weight: number;
}

type Settled = { kind: 'known'; personId: string; similarity: number; bestSimilarity: number } | { kind: 'unknown'; reason: UnknownReason };

interface TrackVotes {
  history: Observation[];
  settled: Settled | null;
  /** Consecutive observations contradicting `settled`. */
  contradictions: Observation[];
  identity: TrackIdentity;
}

const MIN_WEIGHT = 1e-3;

const PENDING: TrackIdentity = Object.freeze({ status: 'pending', votes: 0 }) as TrackIdentity;

/** The identity vote of every track of one camera (or of all cameras, with unique track ids). */
export class TrackIdentityVote {
  readonly config: Readonly<TrackVoteConfig>;
  private readonly tracks = new Map<string, TrackVotes>();

  constructor(config: Partial<TrackVoteConfig> = {}) {
    const merged = { ...DEFAULT_TRACK_VOTE_CONFIG, ...config };
    checkConfig(merged);
    this.config = Object.freeze(merged);
  }

  /** Tracks with state. */
  get size(): number {
    return this.tracks.size;
  }

  /**
   * Adds one view's identity decision with a weight (the view's quality score; default 1).
   * no_face and low_quality decisions carry no evidence about who it is and are ignored.
   */
  addObservation(trackId: string, decision: TrackObservation | IdentityDecision, weight = 1): TrackIdentityUpdate {
    if (!Number.isFinite(weight) || weight < 0) throw new RangeError(`vote weight ${weight} must be a number ≥ 0`);
    // A zero weight still counts as a vote, barely: the count rules (minVotes) see every view.
    const observation = toObservation(decision, Math.max(weight, MIN_WEIGHT));
    let votes = this.tracks.get(trackId);
    if (!votes) {
      votes = { history: [], settled: null, contradictions: [], identity: PENDING };
      this.tracks.set(trackId, votes);
      this.bound();
    }
    const previous = votes.identity;
    if (observation) this.add(votes, observation);
    return { identity: votes.identity, previous, changed: !sameIdentity(previous, votes.identity) };
  }

  identity(trackId: string): TrackIdentity {
    return this.tracks.get(trackId)?.identity ?? PENDING;
  }

  /**
   * The identity is decided (a person, or confidently nobody) and no contradiction is under way:
   * the embedding policy may slow down. Pending and ambiguous tracks are not settled.
   */
  isSettled(trackId: string): boolean {
    const votes = this.tracks.get(trackId);
    return !!votes && votes.settled !== null && votes.contradictions.length === 0;
  }

  /** Drops a track's state (call when it leaves). */
  forget(trackId: string): void {
    this.tracks.delete(trackId);
  }

  clear(): void {
    this.tracks.clear();
  }

  private bound(): void {
    while (this.tracks.size > this.config.maxTracks) {
      const oldest = this.tracks.keys().next().value;
      if (oldest === undefined) break;
      this.tracks.delete(oldest);
    }
  }

  private add(votes: TrackVotes, observation: Observation): void {
    const { historySize, unsettleAfterVotes } = this.config;
    if (votes.settled) {
      const stance = this.stance(votes.settled, observation);
      if (stance === 'contradicts') {
        votes.contradictions.push(observation);
        if (votes.contradictions.length >= unsettleAfterVotes) {
          // Someone else: the vote starts over from the contradicting run.
          votes.history = votes.contradictions;
          votes.contradictions = [];
          votes.settled = null;
          votes.identity = this.tally(votes.history);
          this.settle(votes);
          return;
        }
      } else if (stance === 'supports') {
        votes.contradictions = [];
      }
    }
    votes.history.push(observation);
    if (votes.history.length > historySize) votes.history.splice(0, votes.history.length - historySize);

    if (votes.settled) {
      votes.identity = this.settledIdentity(votes.settled, votes.history);
    } else {
      votes.identity = this.tally(votes.history);
      this.settle(votes);
    }
  }

  private settle(votes: TrackVotes): void {
    const id = votes.identity;
    if (id.status === 'known') votes.settled = { kind: 'known', personId: id.personId, similarity: id.similarity, bestSimilarity: id.bestSimilarity };
    else if (id.status === 'unknown' && id.reason !== 'ambiguous') votes.settled = { kind: 'unknown', reason: id.reason };
  }

  /** How an observation bears on a decided identity. */
  private stance(settled: Settled, o: Observation): 'supports' | 'contradicts' | 'neutral' {
    if (settled.kind === 'unknown') {
      if (o.personId !== null) return 'contradicts';
      return o.reason === settled.reason ? 'supports' : 'neutral';
    }
    if (o.personId !== null) return o.personId === settled.personId ? 'supports' : 'contradicts';
    // An unknown view whose best candidate is still the person, fairly similar: a poor view of them.
    if (o.bestPersonId === settled.personId && o.similarity !== null && o.similarity >= this.config.weakSupportMinSimilarity) return 'neutral';
    return 'contradicts';
  }

  /** A decided identity, restated with the window's numbers. */
  private settledIdentity(settled: Settled, history: readonly Observation[]): TrackIdentity {
    const tally = tallyWindow(history);
    if (settled.kind === 'unknown') {
      const best = tally.bestCandidate();
      return { status: 'unknown', reason: settled.reason, votes: history.length, ...(best ?? {}) };
    }
    const person = tally.people.get(settled.personId);
    if (!person) {
      return {
        status: 'known',
        personId: settled.personId,
        similarity: settled.similarity,
        bestSimilarity: settled.bestSimilarity,
        votes: history.length,
        personVotes: 0,
        share: 0,
      };
    }
    return {
      status: 'known',
      personId: settled.personId,
      similarity: person.weightedSimilarity / Math.max(person.weight, Number.MIN_VALUE),
      bestSimilarity: Math.max(person.bestSimilarity, settled.bestSimilarity),
      votes: history.length,
      personVotes: person.count,
      share: tally.totalWeight > 0 ? person.weight / tally.totalWeight : 0,
    };
  }

  /** The vote over a window with nothing decided yet. */
  private tally(history: readonly Observation[]): TrackIdentity {
    const { minVotes, minShare, fastPathMinSimilarity, fastPathMinMargin } = this.config;
    const tally = tallyWindow(history);
    const votes = history.length;
    const strong = (o: Observation) => o.personId !== null && o.similarity! >= fastPathMinSimilarity && o.margin! >= fastPathMinMargin;

    if (votes < minVotes) {
      // Fast path: every view so far names one person and at least one of them by a wide margin.
      const only = tally.people.size === 1 && tally.nobody.count === 0 ? [...tally.people.keys()][0]! : undefined;
      if (only !== undefined && history.some(strong)) return this.known(only, tally, votes);
      return { status: 'pending', votes };
    }

    // The leader: the heaviest person, or nobody. minShare > ½, so a leader that reaches it leads
    // everyone else outright; a tie never does.
    let leader: string | null = null;
    let leaderWeight = tally.nobody.weight;
    for (const [personId, p] of tally.people) {
      if (p.weight > leaderWeight) {
        leader = personId;
        leaderWeight = p.weight;
      }
    }
    const clear = tally.totalWeight > 0 && leaderWeight / tally.totalWeight >= minShare;
    if (clear && leader !== null) {
      const person = tally.people.get(leader)!;
      // A winner needs more than one vote of its own unless that one was a fast-path view.
      const ownVotesEnough = person.count >= Math.ceil(minVotes / 2) || history.some((o) => o.personId === leader && strong(o));
      if (ownVotesEnough) return this.known(leader, tally, votes);
    }
    if (clear && leader === null) {
      const best = tally.bestCandidate();
      return { status: 'unknown', reason: tally.nobodyReason(), votes, ...(best ?? {}) };
    }
    const best = tally.bestCandidate();
    return { status: 'unknown', reason: 'ambiguous', votes, ...(best ?? {}) };
  }

  private known(personId: string, tally: WindowTally, votes: number): TrackIdentity {
    const p = tally.people.get(personId)!;
    return {
      status: 'known',
      personId,
      similarity: p.weightedSimilarity / Math.max(p.weight, Number.MIN_VALUE),
      bestSimilarity: p.bestSimilarity,
      votes,
      personVotes: p.count,
      share: tally.totalWeight > 0 ? p.weight / tally.totalWeight : 1,
    };
  }
}

interface PersonTally {
  count: number;
  weight: number;
  weightedSimilarity: number;
  bestSimilarity: number;
}

interface WindowTally {
  people: Map<string, PersonTally>;
  nobody: { count: number; weight: number; reasons: Map<UnknownReason, number> };
  totalWeight: number;
  /** The person with the most weight (matches first, then unknowns' best candidates), with their best similarity. */
  bestCandidate(): { bestPersonId: string; similarity: number } | undefined;
  /** The heaviest reason among the unknown votes. */
  nobodyReason(): UnknownReason;
}

function tallyWindow(history: readonly Observation[]): WindowTally {
  const people = new Map<string, PersonTally>();
  const nobody = { count: 0, weight: 0, reasons: new Map<UnknownReason, number>() };
  // Candidates named only by unknown views: the best similarity each reached.
  const hinted = new Map<string, number>();
  let totalWeight = 0;
  for (const o of history) {
    totalWeight += o.weight;
    if (o.personId !== null) {
      const p = people.get(o.personId) ?? { count: 0, weight: 0, weightedSimilarity: 0, bestSimilarity: -Infinity };
      p.count++;
      p.weight += o.weight;
      p.weightedSimilarity += o.weight * o.similarity!;
      if (o.similarity! > p.bestSimilarity) p.bestSimilarity = o.similarity!;
      people.set(o.personId, p);
    } else {
      nobody.count++;
      nobody.weight += o.weight;
      nobody.reasons.set(o.reason!, (nobody.reasons.get(o.reason!) ?? 0) + o.weight);
      if (o.bestPersonId !== null && o.similarity !== null) hinted.set(o.bestPersonId, Math.max(hinted.get(o.bestPersonId) ?? -Infinity, o.similarity));
    }
  }
  return {
    people,
    nobody,
    totalWeight,
    bestCandidate() {
      let best: { bestPersonId: string; similarity: number } | undefined;
      let bestWeight = -Infinity;
      for (const [personId, p] of people) {
        if (p.weight > bestWeight) {
          bestWeight = p.weight;
          best = { bestPersonId: personId, similarity: p.bestSimilarity };
        }
      }
      if (best) return best;
      for (const [personId, similarity] of hinted) {
        if (!best || similarity > best.similarity) best = { bestPersonId: personId, similarity };
      }
      return best;
    },
    nobodyReason() {
      let reason: UnknownReason = 'below_threshold';
      let weight = -Infinity;
      for (const [r, w] of nobody.reasons) {
        if (w > weight) {
          reason = r;
          weight = w;
        }
      }
      return reason;
    },
  };
}

function toObservation(decision: TrackObservation | IdentityDecision, weight: number): Observation | null {
  if (decision.decision === 'match') {
    checkSimilarity(decision.similarity);
    return { personId: decision.personId, reason: null, bestPersonId: null, similarity: decision.similarity, margin: decision.margin, weight };
  }
  if (decision.reason === 'no_face' || decision.reason === 'low_quality') return null;
  if (decision.similarity !== undefined) checkSimilarity(decision.similarity);
  return {
    personId: null,
    reason: decision.reason,
    bestPersonId: decision.bestPersonId ?? null,
    similarity: decision.similarity ?? null,
    margin: null,
    weight,
  };
}

function sameIdentity(a: TrackIdentity, b: TrackIdentity): boolean {
  if (a.status !== b.status) return false;
  if (a.status === 'known' && b.status === 'known') return a.personId === b.personId;
  if (a.status === 'unknown' && b.status === 'unknown') return a.reason === b.reason;
  return true;
}

function checkSimilarity(value: number): void {
  if (!Number.isFinite(value) || value < -1.0001 || value > 1.0001) throw new RangeError(`similarity ${value} is not a cosine`);
}

function checkConfig(c: TrackVoteConfig): void {
  const whole = (name: keyof TrackVoteConfig, min: number) => {
    const value = c[name];
    if (!Number.isInteger(value) || value < min) throw new RangeError(`vote ${name} must be a whole number ≥ ${min}, got ${value}`);
  };
  whole('minVotes', 1);
  whole('unsettleAfterVotes', 1);
  whole('historySize', 1);
  whole('maxTracks', 1);
  if (c.historySize < c.minVotes) throw new RangeError(`vote historySize (${c.historySize}) must be ≥ minVotes (${c.minVotes})`);
  if (!(c.minShare > 0.5 && c.minShare <= 1)) throw new RangeError(`vote minShare must be in (0.5, 1], got ${c.minShare}`);
  for (const name of ['fastPathMinSimilarity', 'weakSupportMinSimilarity'] as const) {
    if (!(c[name] >= -1 && c[name] <= 1)) throw new RangeError(`vote ${name} must be a cosine in [-1, 1], got ${c[name]}`);
  }
  if (!(c.fastPathMinMargin >= 0)) throw new RangeError(`vote fastPathMinMargin must be ≥ 0, got ${c.fastPathMinMargin}`);
}
