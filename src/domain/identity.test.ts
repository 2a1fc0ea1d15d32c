import { describe, expect, it } from 'vitest';
import { checkDuplicate, decideIdentity, scorePeople, type IdentityPolicy, type TemplateMatch } from './identity.ts';

const best: IdentityPolicy = { searchThreshold: 0.45, minMargin: 0.05, scoring: { strategy: 'best' } };
const meanTop2: IdentityPolicy = { ...best, scoring: { strategy: 'mean-top-k', k: 2 } };

const m = (personId: string, similarity: number, templateId?: string): TemplateMatch => ({ personId, similarity, templateId });

describe('scorePeople', () => {
  it('groups templates per person and scores by the best one', () => {
    const scores = scorePeople([m('a', 0.5), m('b', 0.7), m('a', 0.6), m('b', 0.2), m('c', 0.1)], { strategy: 'best' });
    expect(scores).toEqual([
      { personId: 'b', score: 0.7, bestSimilarity: 0.7, matchedTemplates: 2 },
      { personId: 'a', score: 0.6, bestSimilarity: 0.6, matchedTemplates: 2 },
      { personId: 'c', score: 0.1, bestSimilarity: 0.1, matchedTemplates: 1 },
    ]);
  });

  it('averages the top k templates, or all of them when fewer were retrieved', () => {
    const scores = scorePeople([m('a', 0.9), m('a', 0.5), m('a', 0.1), m('b', 0.66)], { strategy: 'mean-top-k', k: 2 });
    expect(scores[0]!.personId).toBe('a');
    expect(scores[0]!.score).toBeCloseTo(0.7, 12);
    expect(scores[0]!.bestSimilarity).toBe(0.9);
    expect(scores[0]!.matchedTemplates).toBe(3);
    expect(scores[1]).toEqual({ personId: 'b', score: 0.66, bestSimilarity: 0.66, matchedTemplates: 1 });
  });

  it('can rank people differently from the single best template', () => {
    // One lucky template (c) against a person all of whose views agree (d).
    const matches = [m('c', 0.8), m('c', 0.3), m('d', 0.7), m('d', 0.69)];
    expect(scorePeople(matches, { strategy: 'best' })[0]!.personId).toBe('c');
    expect(scorePeople(matches, { strategy: 'mean-top-k', k: 2 })[0]!.personId).toBe('d');
  });

  it('orders ties by person id, and gives nothing for no matches', () => {
    expect(scorePeople([m('z', 0.5), m('y', 0.5)], { strategy: 'best' }).map((s) => s.personId)).toEqual(['y', 'z']);
    expect(scorePeople([], { strategy: 'best' })).toEqual([]);
  });

  it('rejects a similarity that is not a cosine and a k that is not a count', () => {
    expect(() => scorePeople([m('a', Number.NaN)], { strategy: 'best' })).toThrow(RangeError);
    expect(() => scorePeople([m('a', 1.5)], { strategy: 'best' })).toThrow(RangeError);
    expect(() => scorePeople([m('a', 0.5)], { strategy: 'mean-top-k', k: 0 })).toThrow(RangeError);
    expect(() => scorePeople([m('a', 0.5)], { strategy: 'mean-top-k', k: 1.5 })).toThrow(RangeError);
  });
});

describe('decideIdentity', () => {
  const clear = { faceFound: true, qualityPass: true, livenessScore: 0.9, matches: [m('a', 0.7), m('b', 0.3)] };

  it('does not name a person for a face closer to a negative example of them than to their own templates', () => {
    const matches = [m('x', 0.62), m('x', 0.55), m('y', 0.4)];
    // No corrections: x.
    expect(decideIdentity({ faceFound: true, matches }, best)).toMatchObject({ decision: 'match', personId: 'x' });
    // A revoked check-in of x looked like this face (0.8 > 0.62): x is out; y is below the threshold.
    expect(decideIdentity({ faceFound: true, matches, negatives: [m('x', 0.8)] }, best)).toEqual({
      decision: 'unknown',
      reason: 'below_threshold',
      bestPersonId: 'y',
      similarity: 0.4,
      margin: 0.4,
    });
    // A negative example farther than x's own best template does not matter, nor one about someone else.
    expect(decideIdentity({ faceFound: true, matches, negatives: [m('x', 0.6), m('y', 0.99)] }, best)).toMatchObject({ decision: 'match', personId: 'x' });
    // With x out, a strong y is named (and its margin is over the remaining people).
    const strongY = [m('x', 0.7), m('y', 0.66)];
    expect(decideIdentity({ faceFound: true, matches: strongY, negatives: [m('x', 0.75)] }, best)).toEqual({ decision: 'match', personId: 'y', similarity: 0.66, margin: 0.66 });
    expect(() => decideIdentity({ faceFound: true, matches, negatives: [m('x', 3)] }, best)).toThrow(RangeError);
  });

  it('names the best person when above threshold and ahead by the margin', () => {
    expect(decideIdentity(clear, best)).toEqual({ decision: 'match', personId: 'a', similarity: 0.7, margin: 0.7 - 0.3 });
  });

  it('says no_face before anything else', () => {
    expect(decideIdentity({ ...clear, faceFound: false, qualityPass: false, livenessScore: 0 }, { ...best, minLiveness: 0.5 })).toEqual({
      decision: 'unknown',
      reason: 'no_face',
    });
  });

  it('says low_quality when the face failed its quality checks, before liveness', () => {
    expect(decideIdentity({ ...clear, qualityPass: false, livenessScore: 0 }, { ...best, minLiveness: 0.5 })).toEqual({
      decision: 'unknown',
      reason: 'low_quality',
    });
    // Quality not checked is not a failure.
    expect(decideIdentity({ ...clear, qualityPass: undefined }, best).decision).toBe('match');
  });

  it('says spoof_suspected below the liveness floor, and ignores liveness when not required or not measured', () => {
    const policy = { ...best, minLiveness: 0.5 };
    expect(decideIdentity({ ...clear, livenessScore: 0.49 }, policy)).toEqual({ decision: 'unknown', reason: 'spoof_suspected' });
    expect(decideIdentity({ ...clear, livenessScore: 0.5 }, policy).decision).toBe('match');
    expect(decideIdentity({ ...clear, livenessScore: 0.1 }, best).decision).toBe('match');
    expect(decideIdentity({ ...clear, livenessScore: undefined }, policy).decision).toBe('match');
    expect(() => decideIdentity({ ...clear, livenessScore: Number.NaN }, policy)).toThrow(RangeError);
  });

  it('says below_threshold for an empty gallery, with no person', () => {
    expect(decideIdentity({ faceFound: true, matches: [] }, best)).toEqual({ decision: 'unknown', reason: 'below_threshold' });
  });

  it('says below_threshold with the nearest person when the best score is short of the threshold', () => {
    const d = decideIdentity({ faceFound: true, matches: [m('a', 0.44), m('b', 0.1)] }, best);
    expect(d).toMatchObject({ decision: 'unknown', reason: 'below_threshold', bestPersonId: 'a', similarity: 0.44 });
    expect(d.margin).toBeCloseTo(0.34, 12);
    // Exactly at the threshold is enough.
    expect(decideIdentity({ faceFound: true, matches: [m('a', 0.45), m('b', 0.1)] }, best).decision).toBe('match');
  });

  it('says ambiguous when the runner-up person is within the margin', () => {
    const d = decideIdentity({ faceFound: true, matches: [m('a', 0.62), m('b', 0.6)] }, best);
    expect(d).toMatchObject({ decision: 'unknown', reason: 'ambiguous', bestPersonId: 'a', similarity: 0.62 });
    expect(d.margin).toBeCloseTo(0.02, 12);
    // A margin of 0 turns the check off (but a tie still has margin 0 ≥ 0).
    expect(decideIdentity({ faceFound: true, matches: [m('a', 0.62), m('b', 0.62)] }, { ...best, minMargin: 0 })).toMatchObject({
      decision: 'match',
      personId: 'a',
      margin: 0,
    });
  });

  it('compares people, not templates: two views of the same person are not ambiguous', () => {
    const d = decideIdentity({ faceFound: true, matches: [m('a', 0.62), m('a', 0.61), m('b', 0.2)] }, best);
    expect(d).toMatchObject({ decision: 'match', personId: 'a' });
    expect(d.margin).toBeCloseTo(0.42, 12);
  });

  it('uses the aggregated score for threshold and margin under mean-top-k', () => {
    // Best single template 0.8 passes, but the mean of the top 2 (0.4) does not.
    expect(decideIdentity({ faceFound: true, matches: [m('a', 0.8), m('a', 0.0)] }, meanTop2)).toMatchObject({
      decision: 'unknown',
      reason: 'below_threshold',
      bestPersonId: 'a',
      similarity: 0.4,
    });
    const d = decideIdentity({ faceFound: true, matches: [m('a', 0.7), m('a', 0.6), m('b', 0.75), m('b', 0.2)] }, meanTop2);
    expect(d).toMatchObject({ decision: 'match', personId: 'a' });
    expect(d.decision === 'match' && d.similarity).toBeCloseTo(0.65, 12);
    expect(d.margin).toBeCloseTo(0.65 - 0.475, 12);
  });

  it('measures the margin against 0 when the whole gallery was seen and holds one person', () => {
    expect(decideIdentity({ faceFound: true, matches: [m('a', 0.5), m('a', 0.4)] }, best)).toEqual({
      decision: 'match',
      personId: 'a',
      similarity: 0.5,
      margin: 0.5,
    });
  });

  it('measures the margin against the retrieval floor when only one person was retrieved', () => {
    const matches = [m('a', 0.7), m('a', 0.68), m('a', 0.67)];
    expect(decideIdentity({ faceFound: true, matches, candidateFloor: 0.67 }, best)).toMatchObject({
      decision: 'unknown',
      reason: 'ambiguous',
      bestPersonId: 'a',
    });
    const d = decideIdentity({ faceFound: true, matches, candidateFloor: 0.3 }, best);
    expect(d.decision).toBe('match');
    expect(d.margin).toBeCloseTo(0.4, 12);
  });

  it('uses the floor when it is above a retrieved runner-up’s aggregated score', () => {
    // Under mean-top-k, b's mean (0.35) is below the floor 0.5 that an unseen person could still reach.
    const matches = [m('a', 0.8), m('a', 0.7), m('b', 0.6), m('b', 0.1)];
    const d = decideIdentity({ faceFound: true, matches, candidateFloor: 0.5 }, meanTop2);
    expect(d.margin).toBeCloseTo(0.75 - 0.5, 12);
  });
});

describe('checkDuplicate', () => {
  it('finds the most similar other person above the search threshold', () => {
    const r = checkDuplicate({ matches: [m('a', 0.5), m('b', 0.8), m('c', 0.3)], searchThreshold: 0.45 });
    expect(r).toEqual({ duplicate: true, personId: 'b', similarity: 0.8, overridden: false });
  });

  it('ignores the person the template is being added to', () => {
    expect(checkDuplicate({ matches: [m('self', 0.95), m('b', 0.5)], searchThreshold: 0.45, ownPersonId: 'self' })).toEqual({
      duplicate: true,
      personId: 'b',
      similarity: 0.5,
      overridden: false,
    });
    expect(checkDuplicate({ matches: [m('self', 0.95), m('b', 0.2)], searchThreshold: 0.45, ownPersonId: 'self' })).toEqual({
      duplicate: false,
    });
  });

  it('is clear below the threshold and for an empty gallery; at the threshold is a duplicate', () => {
    expect(checkDuplicate({ matches: [m('a', 0.449)], searchThreshold: 0.45 })).toEqual({ duplicate: false });
    expect(checkDuplicate({ matches: [], searchThreshold: 0.45 })).toEqual({ duplicate: false });
    expect(checkDuplicate({ matches: [m('a', 0.45)], searchThreshold: 0.45 })).toMatchObject({ duplicate: true, personId: 'a' });
  });

  it('uses one template, not an average: a single close view is enough', () => {
    const r = checkDuplicate({ matches: [m('a', 0.9), m('a', 0.1), m('a', 0.1)], searchThreshold: 0.45 });
    expect(r).toMatchObject({ duplicate: true, personId: 'a', similarity: 0.9 });
  });

  it('records an admin override instead of clearing the duplicate', () => {
    expect(checkDuplicate({ matches: [m('a', 0.9)], searchThreshold: 0.45, override: true })).toEqual({
      duplicate: true,
      personId: 'a',
      similarity: 0.9,
      overridden: true,
    });
  });

  it('breaks ties by person id and rejects non-cosines', () => {
    expect(checkDuplicate({ matches: [m('z', 0.6), m('y', 0.6)], searchThreshold: 0.45 })).toMatchObject({ personId: 'y' });
    expect(() => checkDuplicate({ matches: [m('a', Number.POSITIVE_INFINITY)], searchThreshold: 0.45 })).toThrow(RangeError);
  });
});
