import { describe, expect, it } from 'vitest';
import { decideIdentity, type IdentityPolicy } from './identity.ts';
import { DEFAULT_TRACK_VOTE_CONFIG, TrackIdentityVote, trackVoteConfigFor, type TrackObservation } from './track-identity.ts';

// Default config: minVotes 3, minShare 0.6, fast path at similarity ≥ 0.6 with margin ≥ 0.1.
const match = (personId: string, similarity = 0.55, margin = 0.05): TrackObservation => ({ decision: 'match', personId, similarity, margin });
const strong = (personId: string) => match(personId, 0.75, 0.3);
const stranger = (bestPersonId?: string, similarity = 0.15): TrackObservation => ({ decision: 'unknown', reason: 'below_threshold', bestPersonId, similarity });

describe('TrackIdentityVote: naming', () => {
  it('names a person after minVotes unanimous observations, pending before', () => {
    const vote = new TrackIdentityVote();
    expect(vote.identity('1')).toEqual({ status: 'pending', votes: 0 });
    expect(vote.addObservation('1', match('ann', 0.55), 0.8).identity).toEqual({ status: 'pending', votes: 1 });
    expect(vote.addObservation('1', match('ann', 0.57), 0.8).identity).toEqual({ status: 'pending', votes: 2 });
    const third = vote.addObservation('1', match('ann', 0.56), 0.4);
    expect(third.changed).toBe(true);
    expect(third.previous).toEqual({ status: 'pending', votes: 2 });
    expect(third.identity).toMatchObject({ status: 'known', personId: 'ann', votes: 3, personVotes: 3, share: 1, bestSimilarity: 0.57 });
    // Weighted mean: (0.55·0.8 + 0.57·0.8 + 0.56·0.4) / 2.0.
    expect(third.identity.status === 'known' && third.identity.similarity).toBeCloseTo(0.56, 9);
    expect(vote.isSettled('1')).toBe(true);
  });

  it('fast path: one observation far above the threshold, with a clear margin, is enough', () => {
    const vote = new TrackIdentityVote();
    const first = vote.addObservation('1', strong('ann'));
    expect(first.identity).toMatchObject({ status: 'known', personId: 'ann', votes: 1, similarity: 0.75 });
    expect(first.changed).toBe(true);
    expect(vote.isSettled('1')).toBe(true);
  });

  it('no fast path for a high similarity with a small margin, or a margin without the similarity', () => {
    const vote = new TrackIdentityVote();
    expect(vote.addObservation('1', match('ann', 0.75, 0.05)).identity.status).toBe('pending');
    expect(vote.addObservation('2', match('ann', 0.58, 0.3)).identity.status).toBe('pending');
    expect(vote.isSettled('1')).toBe(false);
  });

  it('no fast path when the early observations disagree', () => {
    const vote = new TrackIdentityVote();
    vote.addObservation('1', match('bob'));
    expect(vote.addObservation('1', strong('ann')).identity).toEqual({ status: 'pending', votes: 2 });
    vote.addObservation('2', stranger());
    expect(vote.addObservation('2', strong('ann')).identity.status).toBe('pending');
  });

  it('a tie names nobody: ambiguous, and not settled', () => {
    const vote = new TrackIdentityVote();
    vote.addObservation('1', match('ann'), 1);
    vote.addObservation('1', match('bob'), 1);
    // 1.4 : 1 is a lead, not a clear majority (58 % < 60 %).
    expect(vote.addObservation('1', match('ann'), 0.4).identity).toMatchObject({ status: 'unknown', reason: 'ambiguous', votes: 3, bestPersonId: 'ann' });
    expect(vote.addObservation('1', match('bob'), 0.4).identity).toMatchObject({ status: 'unknown', reason: 'ambiguous', votes: 4 });
    expect(vote.isSettled('1')).toBe(false);

    const four = new TrackIdentityVote({ minVotes: 4 });
    for (const o of [match('ann'), match('bob'), match('ann'), match('bob')]) four.addObservation('1', o);
    expect(four.identity('1')).toMatchObject({ status: 'unknown', reason: 'ambiguous', votes: 4 });
  });

  it('two against one is a clear majority at the default minShare', () => {
    const vote = new TrackIdentityVote();
    for (const o of [match('ann'), match('bob'), match('ann')]) vote.addObservation('1', o);
    expect(vote.identity('1')).toMatchObject({ status: 'known', personId: 'ann', personVotes: 2, votes: 3 });
  });

  it('a three-way split, or a person against nobody, names nobody', () => {
    const vote = new TrackIdentityVote();
    for (const o of [match('ann'), match('bob'), match('cid')]) vote.addObservation('1', o);
    expect(vote.identity('1')).toMatchObject({ status: 'unknown', reason: 'ambiguous' });
    vote.addObservation('2', match('ann'), 1);
    vote.addObservation('2', stranger(), 1);
    vote.addObservation('2', match('ann'), 0.3);
    expect(vote.identity('2')).toMatchObject({ status: 'unknown', reason: 'ambiguous', bestPersonId: 'ann', similarity: 0.55 });
  });

  it('weights by quality: two good views outvote one poor one, and the other way round', () => {
    const vote = new TrackIdentityVote();
    vote.addObservation('1', match('ann'), 0.9);
    vote.addObservation('1', match('bob'), 0.2);
    vote.addObservation('1', match('ann'), 0.9);
    expect(vote.identity('1')).toMatchObject({ status: 'known', personId: 'ann', personVotes: 2, votes: 3 });
    const identity = vote.identity('1');
    expect(identity.status === 'known' && identity.share).toBeCloseTo(0.9, 9);

    vote.addObservation('2', match('ann'), 0.3);
    vote.addObservation('2', match('bob'), 0.9);
    vote.addObservation('2', match('bob'), 0.9);
    expect(vote.identity('2')).toMatchObject({ status: 'known', personId: 'bob' });
  });

  it('a weighted majority of one ordinary vote is not enough', () => {
    const vote = new TrackIdentityVote();
    vote.addObservation('1', match('ann'), 0.9);
    vote.addObservation('1', stranger(), 0.1);
    vote.addObservation('1', stranger(), 0.1);
    expect(vote.identity('1')).toMatchObject({ status: 'unknown', reason: 'ambiguous' });
    // …unless that vote was a fast-path one.
    vote.addObservation('2', stranger(), 0.1);
    vote.addObservation('2', stranger(), 0.1);
    vote.addObservation('2', strong('ann'), 0.9);
    expect(vote.identity('2')).toMatchObject({ status: 'known', personId: 'ann', personVotes: 1 });
  });

  it('names nobody, with the reason, when unknowns win; strangers settle as unknown', () => {
    const vote = new TrackIdentityVote();
    vote.addObservation('1', stranger('ann', 0.2));
    vote.addObservation('1', stranger('bob', 0.31));
    expect(vote.identity('1').status).toBe('pending');
    vote.addObservation('1', stranger('ann', 0.22));
    expect(vote.identity('1')).toEqual({ status: 'unknown', reason: 'below_threshold', votes: 3, bestPersonId: 'bob', similarity: 0.31 });
    expect(vote.isSettled('1')).toBe(true);

    for (let i = 0; i < 3; i++) vote.addObservation('2', { decision: 'unknown', reason: 'spoof_suspected' });
    expect(vote.identity('2')).toEqual({ status: 'unknown', reason: 'spoof_suspected', votes: 3 });
  });

  it('ignores observations that carry no evidence (no face, low quality)', () => {
    const vote = new TrackIdentityVote();
    for (let i = 0; i < 5; i++) {
      const update = vote.addObservation('1', { decision: 'unknown', reason: i % 2 ? 'no_face' : 'low_quality' });
      expect(update.changed).toBe(false);
    }
    expect(vote.identity('1')).toEqual({ status: 'pending', votes: 0 });
  });

  it('takes decideIdentity results as they are', () => {
    const policy: IdentityPolicy = { searchThreshold: 0.5, minMargin: 0.05, scoring: { strategy: 'best' } };
    const decision = decideIdentity(
      { faceFound: true, qualityPass: true, matches: [{ personId: 'ann', similarity: 0.8 }, { personId: 'bob', similarity: 0.3 }] },
      policy,
    );
    const vote = new TrackIdentityVote(trackVoteConfigFor(policy.searchThreshold, policy.minMargin));
    const identity = vote.addObservation('1', decision, 0.7).identity;
    expect(identity).toMatchObject({ status: 'known', personId: 'ann', votes: 1 });
    expect(identity.status === 'known' && identity.similarity).toBeCloseTo(0.8, 12);
    const unknown = decideIdentity({ faceFound: true, qualityPass: true, matches: [{ personId: 'ann', similarity: 0.2 }] }, policy);
    expect(vote.addObservation('2', unknown).identity).toEqual({ status: 'pending', votes: 1 });
  });
});

describe('TrackIdentityVote: a decided identity', () => {
  function knownAnn(): TrackIdentityVote {
    const vote = new TrackIdentityVote();
    vote.addObservation('1', strong('ann'));
    vote.addObservation('1', match('ann'));
    return vote;
  }

  it('survives one contradicting view; settles again on the next supporting view', () => {
    const vote = knownAnn();
    const odd = vote.addObservation('1', strong('bob'));
    expect(odd.identity).toMatchObject({ status: 'known', personId: 'ann' });
    expect(odd.changed).toBe(false);
    // The embedding policy should look again soon.
    expect(vote.isSettled('1')).toBe(false);
    vote.addObservation('1', match('ann'));
    expect(vote.isSettled('1')).toBe(true);
    // The run was broken: one more Bob is again just one.
    expect(vote.addObservation('1', strong('bob')).identity).toMatchObject({ status: 'known', personId: 'ann' });
  });

  it('is not shaken by poor views of the same person', () => {
    const vote = knownAnn();
    for (let i = 0; i < 10; i++) vote.addObservation('1', stranger('ann', 0.42));
    expect(vote.identity('1')).toMatchObject({ status: 'known', personId: 'ann' });
    expect(vote.isSettled('1')).toBe(true);
    for (let i = 0; i < 10; i++) vote.addObservation('1', { decision: 'unknown', reason: 'low_quality' });
    expect(vote.identity('1')).toMatchObject({ status: 'known', personId: 'ann' });
  });

  it('detects a person swap: a run of another person unsettles it and names the new one', () => {
    const vote = knownAnn();
    vote.addObservation('1', strong('bob'));
    const swap = vote.addObservation('1', strong('bob'));
    expect(swap.changed).toBe(true);
    expect(swap.previous).toMatchObject({ status: 'known', personId: 'ann' });
    expect(swap.identity).toMatchObject({ status: 'known', personId: 'bob', votes: 2 });
    expect(vote.isSettled('1')).toBe(true);
  });

  it('a swap with ordinary views goes through pending before naming the new person', () => {
    const vote = knownAnn();
    vote.addObservation('1', match('bob'));
    expect(vote.addObservation('1', match('bob')).identity).toEqual({ status: 'pending', votes: 2 });
    expect(vote.addObservation('1', match('bob')).identity).toMatchObject({ status: 'known', personId: 'bob', votes: 3, personVotes: 3 });
  });

  it('a stranger stepping in (not similar to the known person) unsettles it too', () => {
    const vote = knownAnn();
    vote.addObservation('1', stranger('ann', 0.12));
    const swap = vote.addObservation('1', stranger('ann', 0.1));
    expect(swap.identity).toEqual({ status: 'pending', votes: 2 });
    vote.addObservation('1', stranger('cid', 0.2));
    expect(vote.identity('1')).toMatchObject({ status: 'unknown', reason: 'below_threshold' });
  });

  it('an unknown track that starts matching (the stranger enrolled) becomes known', () => {
    const vote = new TrackIdentityVote();
    for (let i = 0; i < 3; i++) vote.addObservation('1', stranger());
    expect(vote.identity('1')).toMatchObject({ status: 'unknown', reason: 'below_threshold' });
    expect(vote.addObservation('1', strong('dan')).identity.status).toBe('unknown');
    const enrolled = vote.addObservation('1', strong('dan'));
    expect(enrolled.changed).toBe(true);
    expect(enrolled.identity).toMatchObject({ status: 'known', personId: 'dan' });
  });

  it('keeps reporting the window’s numbers for the decided person', () => {
    const vote = new TrackIdentityVote({ historySize: 4 });
    vote.addObservation('1', strong('ann'));
    for (let i = 0; i < 3; i++) vote.addObservation('1', stranger('ann', 0.4));
    const identity = vote.identity('1');
    expect(identity).toMatchObject({ status: 'known', personId: 'ann', votes: 4, personVotes: 1, share: 0.25, bestSimilarity: 0.75 });
    // Once Ann's only match leaves the window she stays known, with her decided similarity.
    vote.addObservation('1', stranger('ann', 0.4));
    expect(vote.identity('1')).toMatchObject({ status: 'known', personId: 'ann', personVotes: 0, similarity: 0.75 });
  });
});

describe('TrackIdentityVote: bookkeeping', () => {
  it('forgets a track that left', () => {
    const vote = new TrackIdentityVote();
    vote.addObservation('1', strong('ann'));
    vote.addObservation('2', strong('bob'));
    vote.forget('1');
    expect(vote.identity('1')).toEqual({ status: 'pending', votes: 0 });
    expect(vote.isSettled('1')).toBe(false);
    expect(vote.size).toBe(1);
    vote.clear();
    expect(vote.size).toBe(0);
  });

  it('keeps at most maxTracks tracks, dropping the oldest', () => {
    const vote = new TrackIdentityVote({ maxTracks: 2 });
    for (const id of ['1', '2', '3']) vote.addObservation(id, strong('ann'));
    expect(vote.size).toBe(2);
    expect(vote.identity('1').status).toBe('pending');
    expect(vote.identity('3').status).toBe('known');
  });

  it('derives the similarity rules from a model’s calibrated threshold', () => {
    expect(trackVoteConfigFor(0.5)).toEqual(DEFAULT_TRACK_VOTE_CONFIG);
    const faceres = trackVoteConfigFor(0.695, 0.05, { minVotes: 2 });
    expect(faceres.fastPathMinSimilarity).toBeCloseTo(0.795, 9);
    expect(faceres.weakSupportMinSimilarity).toBeCloseTo(0.495, 9);
    expect(faceres.minVotes).toBe(2);
  });

  it('minVotes 1 names on any single match', () => {
    const vote = new TrackIdentityVote({ minVotes: 1 });
    expect(vote.addObservation('1', match('ann', 0.51, 0.01)).identity).toMatchObject({ status: 'known', personId: 'ann' });
  });

  it('rejects bad weights, similarities and config', () => {
    const vote = new TrackIdentityVote();
    expect(() => vote.addObservation('1', match('ann'), -1)).toThrow(RangeError);
    expect(() => vote.addObservation('1', match('ann'), Number.NaN)).toThrow(RangeError);
    expect(() => vote.addObservation('1', match('ann', 1.5))).toThrow(RangeError);
    expect(() => new TrackIdentityVote({ minShare: 0.5 })).toThrow(RangeError);
    expect(() => new TrackIdentityVote({ minVotes: 0 })).toThrow(RangeError);
    expect(() => new TrackIdentityVote({ historySize: 2 })).toThrow(RangeError);
    // A zero weight still counts as a vote.
    for (let i = 0; i < 3; i++) vote.addObservation('2', match('ann'), 0);
    expect(vote.identity('2')).toMatchObject({ status: 'known', personId: 'ann' });
  });
});
