import { describe, expect, it } from 'vitest';
import { EventIdAllocator } from './event-ids.ts';

/** A database sequence handing out blocks, as facegate_event_ids does. */
function sequence(size: number) {
  let next = 1;
  const calls: number[] = [];
  return {
    calls,
    async reserveEventIds() {
      const first = next;
      next += size;
      calls.push(first);
      return { first, size };
    },
  };
}

describe('EventIdAllocator', () => {
  it('hands out ids from its block at once, and fetches the next block in the background at half use', async () => {
    const seq = sequence(10);
    const ids = new EventIdAllocator(seq);
    await ids.prime();
    const got = [ids.next(), ids.next(), ids.next(), ids.next()];
    expect(got).toEqual([1, 2, 3, 4]);
    expect(seq.calls).toEqual([1]);
    ids.next(); // 5: half used
    await new Promise((r) => setImmediate(r));
    expect(seq.calls).toEqual([1, 11]);
    const rest = Array.from({ length: 10 }, () => ids.next());
    expect(rest).toEqual([6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
  });

  it('two allocators on one sequence never give out the same id', async () => {
    const seq = sequence(7);
    const a = new EventIdAllocator(seq);
    const b = new EventIdAllocator(seq);
    await Promise.all([a.prime(), b.prime()]);
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      for (const id of [a.next(), b.next(), a.next()]) {
        expect(seen.has(id)).toBe(false);
        seen.add(id);
      }
      await new Promise((r) => setImmediate(r));
    }
  });

  it('goes on numbering past its block when the database does not answer, and says so once', async () => {
    let fail = false;
    const logs: string[] = [];
    const ids = new EventIdAllocator(
      {
        async reserveEventIds() {
          if (fail) throw new Error('connection refused');
          return { first: 100, size: 4 };
        },
      },
      (m) => logs.push(m),
    );
    await ids.prime();
    fail = true;
    expect([ids.next(), ids.next(), ids.next(), ids.next(), ids.next(), ids.next()]).toEqual([100, 101, 102, 103, 104, 105]);
    await new Promise((r) => setImmediate(r));
    expect(logs.filter((m) => m.includes('numbering continues'))).toHaveLength(1);
  });
});
