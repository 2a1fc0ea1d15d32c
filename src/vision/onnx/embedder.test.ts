import { describe, expect, it } from 'vitest';
import { l2Normalize } from '../../domain/metrics.ts';
import { Exclusive } from './exclusive.ts';

describe('l2Normalize', () => {
  it('scales to unit length without touching the input', () => {
    const v = new Float32Array([3, 4]);
    expect(Array.from(l2Normalize(v))).toEqual([0.6000000238418579, 0.800000011920929]);
    expect(Array.from(v)).toEqual([3, 4]);
    expect(Array.from(l2Normalize(new Float32Array(3)))).toEqual([0, 0, 0]);
  });
});

describe('Exclusive', () => {
  it('runs overlapping jobs one at a time, in call order, past a failure', async () => {
    const exclusive = new Exclusive();
    const log: string[] = [];
    const job = (name: string, ms: number, fail = false) => async () => {
      log.push(`start ${name}`);
      await new Promise((resolve) => setTimeout(resolve, ms));
      log.push(`end ${name}`);
      if (fail) throw new Error(name);
      return name;
    };
    const results = await Promise.allSettled([exclusive.run(job('a', 20)), exclusive.run(job('b', 1, true)), exclusive.run(job('c', 1))]);
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });
});
