/*
 * Who is this face? The gallery returns the templates nearest to a probe; this file turns them
 * into one answer. Scores are per person, over all of that person's retrieved templates, so a
 * person enrolled from five angles is one candidate, not five. A name is given only when the best
 * person clears the search threshold AND leads the runner-up person by a margin: a near tie gives
 * "unknown (ambiguous)" rather than a guess. Both numbers are calibrated on data (`facegate eval`).
 */

/** How one person's template similarities become that person's score. */
export type PersonScoring =
  | { strategy: 'best' }
  /** The mean of the person's k most similar retrieved templates (fewer when fewer were retrieved). */
  | { strategy: 'mean-top-k'; k: number };

/** One gallery template near the probe. */
export interface TemplateMatch {
  personId: string;
  /** Cosine similarity to the probe, -1..1. */
  similarity: number;
  templateId?: string;
}

export interface PersonScore {
  personId: string;
  /** The person's score under the scoring strategy. */
  score: number;
  /** The person's single most similar template. */
  bestSimilarity: number;
  /** How many of the person's templates were among the matches. */
  matchedTemplates: number;
}

export interface IdentityPolicy {
  /** The best person's score must reach this (cosine) to be named. */
  searchThreshold: number;
  /** The best person must lead the runner-up person by at least this (cosine); 0 turns it off. */
  minMargin: number;
  scoring: PersonScoring;
  /** Liveness scores below this mean a suspected spoof; unset = liveness is not required. */
  minLiveness?: number;
}

/** Everything known about one probe face when its identity is decided. */
export interface IdentityEvidence {
  /** False when no face was found at all. */
  faceFound: boolean;
  /** False when the face failed the quality checks (too small, blurred, turned away…); unset = not checked. */
  qualityPass?: boolean;
  /** Liveness score 0..1 (1 = live); unset = not measured. */
  livenessScore?: number;
  /** The gallery templates nearest to the probe, any order. */
  matches: readonly TemplateMatch[];
  /**
   * The similarity below which templates were not retrieved (the k-th similarity when a top-k search
   * came back full). Stands in for the runner-up when every retrieved template is the best person's;
   * unset = the search saw the whole gallery.
   */
  candidateFloor?: number;
  /**
   * Corrections ("this was not X"): the probe's similarity to faces an operator said were NOT
   * personId (revoked check-ins). A person is not named for a probe closer to one of these than to
   * the person's own best template. Unset = no corrections.
   */
  negatives?: readonly TemplateMatch[];
}

export type UnknownReason = 'no_face' | 'low_quality' | 'below_threshold' | 'ambiguous' | 'spoof_suspected';

export type IdentityDecision =
  | { decision: 'match'; personId: string; similarity: number; margin: number }
  | { decision: 'unknown'; reason: UnknownReason; bestPersonId?: string; similarity?: number; margin?: number };

function checkSimilarity(value: number): void {
  if (!Number.isFinite(value) || value < -1.0001 || value > 1.0001) throw new RangeError(`similarity ${value} is not a cosine`);
}

function checkScoring(scoring: PersonScoring): void {
  if (scoring.strategy === 'mean-top-k' && (!Number.isInteger(scoring.k) || scoring.k < 1)) {
    throw new RangeError(`mean-top-k needs a whole k ≥ 1, got ${scoring.k}`);
  }
}

/** Per-person scores, best first (ties broken by person id so the order is deterministic). */
export function scorePeople(matches: readonly TemplateMatch[], scoring: PersonScoring): PersonScore[] {
  checkScoring(scoring);
  const byPerson = new Map<string, number[]>();
  for (const m of matches) {
    checkSimilarity(m.similarity);
    const list = byPerson.get(m.personId);
    if (list) list.push(m.similarity);
    else byPerson.set(m.personId, [m.similarity]);
  }
  const scores: PersonScore[] = [];
  for (const [personId, sims] of byPerson) {
    sims.sort((a, b) => b - a);
    let score = sims[0]!;
    if (scoring.strategy === 'mean-top-k') {
      const n = Math.min(scoring.k, sims.length);
      let sum = 0;
      for (let i = 0; i < n; i++) sum += sims[i]!;
      score = sum / n;
    }
    scores.push({ personId, score, bestSimilarity: sims[0]!, matchedTemplates: sims.length });
  }
  scores.sort((a, b) => b.score - a.score || (a.personId < b.personId ? -1 : a.personId > b.personId ? 1 : 0));
  return scores;
}

/**
 * The identity of one probe face: a person with similarity and margin, or unknown with a reason.
 * The checks run in this order: no face, low quality, suspected spoof, then the gallery
 * (below threshold, then ambiguous). The first three carry no person: a face that failed them was
 * not judged against the gallery.
 */
export function decideIdentity(evidence: IdentityEvidence, policy: IdentityPolicy): IdentityDecision {
  if (!evidence.faceFound) return { decision: 'unknown', reason: 'no_face' };
  if (evidence.qualityPass === false) return { decision: 'unknown', reason: 'low_quality' };
  if (policy.minLiveness !== undefined && evidence.livenessScore !== undefined) {
    if (!Number.isFinite(evidence.livenessScore)) throw new RangeError(`liveness score ${evidence.livenessScore} is not a number`);
    if (evidence.livenessScore < policy.minLiveness) return { decision: 'unknown', reason: 'spoof_suspected' };
  }

  const people = withoutCorrected(scorePeople(evidence.matches, policy.scoring), evidence.negatives);
  const best = people[0];
  if (!best) return { decision: 'unknown', reason: 'below_threshold' };

  // A person who was not retrieved scores at most the retrieval floor, so the runner-up is the
  // better of the second retrieved person and the floor; with the whole gallery seen and nobody
  // else in it, 0 (an unrelated face) is the baseline.
  const second = people[1]?.score;
  const floor = evidence.candidateFloor;
  const runnerUpScore = second === undefined ? (floor ?? 0) : floor === undefined ? second : Math.max(second, floor);
  const margin = best.score - runnerUpScore;
  const about = { bestPersonId: best.personId, similarity: best.score, margin };

  if (best.score < policy.searchThreshold) return { decision: 'unknown', reason: 'below_threshold', ...about };
  if (margin < policy.minMargin) return { decision: 'unknown', reason: 'ambiguous', ...about };
  return { decision: 'match', personId: best.personId, similarity: best.score, margin };
}

/** Drops the people the probe is closer to a negative example of than to their own best template. */
function withoutCorrected(people: PersonScore[], negatives: readonly TemplateMatch[] | undefined): PersonScore[] {
  if (!negatives || negatives.length === 0) return people;
  const closestNegative = new Map<string, number>();
  for (const n of negatives) {
    checkSimilarity(n.similarity);
    closestNegative.set(n.personId, Math.max(closestNegative.get(n.personId) ?? -Infinity, n.similarity));
  }
  return people.filter((p) => !(p.bestSimilarity < (closestNegative.get(p.personId) ?? -Infinity)));
}

export type DuplicateCheck =
  | { duplicate: false }
  /** `overridden`: an admin chose to save anyway; the caller records it, and refuses when it is false. */
  | { duplicate: true; personId: string; similarity: number; overridden: boolean };

export interface DuplicateCheckInput {
  /** The gallery templates nearest to the new face (a search over the whole gallery of its model). */
  matches: readonly TemplateMatch[];
  searchThreshold: number;
  /** The person the face is being added to; their own templates are not duplicates. Unset for a new person. */
  ownPersonId?: string;
  /** An admin's explicit "save anyway". */
  override?: boolean;
}

/**
 * Before a new person or template is saved: the most similar OTHER person whose best template
 * reaches the search threshold, if any. One template is enough (not the scoring strategy's
 * aggregate): a face that would be recognised as someone else must not be enrolled as a new person.
 */
export function checkDuplicate(input: DuplicateCheckInput): DuplicateCheck {
  let personId: string | undefined;
  let similarity = -Infinity;
  for (const m of input.matches) {
    checkSimilarity(m.similarity);
    if (m.personId === input.ownPersonId || m.similarity < input.searchThreshold) continue;
    if (m.similarity > similarity || (m.similarity === similarity && personId !== undefined && m.personId < personId)) {
      personId = m.personId;
      similarity = m.similarity;
    }
  }
  if (personId === undefined) return { duplicate: false };
  return { duplicate: true, personId, similarity, overridden: input.override === true };
}
