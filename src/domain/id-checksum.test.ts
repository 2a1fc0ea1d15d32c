import { describe, expect, it } from 'vitest';
import { IdSetChecksum, sameIdSet, templateIdHash } from './id-checksum.ts';

/** Reference FNV-1a 64 over UTF-16 code units with BigInt, to check the 32-bit-halves version. */
function fnv1a64Reference(id: string): string {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < id.length; i++) {
    h ^= BigInt(id.charCodeAt(i));
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, '0');
}

function uuidLike(seed: number): string {
  let x = seed * 2654435761;
  const hex = (n: number): string => {
    let s = '';
    for (let i = 0; i < n; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      s += (x >>> 28).toString(16);
    }
    return s;
  };
  return `${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`;
}

describe('templateIdHash', () => {
  it('matches the published FNV-1a 64 test vectors for ASCII', () => {
    expect(templateIdHash('')).toBe('cbf29ce484222325');
    expect(templateIdHash('a')).toBe('af63dc4c8601ec8c');
    expect(templateIdHash('foobar')).toBe('85944171f73967e8');
  });

  it('matches a BigInt reference on UUIDs and non-ASCII ids', () => {
    const ids = [...Array.from({ length: 200 }, (_, i) => uuidLike(i)), 'Zoë-ü', '人脸', '\uffff\u0000x'];
    for (const id of ids) expect(templateIdHash(id)).toBe(fnv1a64Reference(id));
  });
});

describe('IdSetChecksum', () => {
  const ids = Array.from({ length: 500 }, (_, i) => uuidLike(i + 1));

  it('is empty as count 0 and all-zero XOR', () => {
    expect(new IdSetChecksum().fingerprint()).toEqual({ count: 0, idHashXor: '0000000000000000' });
  });

  it('does not depend on the order ids are added', () => {
    const forward = IdSetChecksum.of(ids).fingerprint();
    const backward = IdSetChecksum.of([...ids].reverse()).fingerprint();
    const shuffled = IdSetChecksum.of([...ids].sort()).fingerprint();
    expect(backward).toEqual(forward);
    expect(shuffled).toEqual(forward);
    expect(forward.count).toBe(500);
  });

  it('treats remove as the inverse of add', () => {
    const base = IdSetChecksum.of(ids.slice(0, 300));
    const before = base.fingerprint();
    for (const id of ids.slice(300)) base.add(id);
    expect(base.fingerprint()).not.toEqual(before);
    for (const id of ids.slice(300).reverse()) base.remove(id);
    expect(base.fingerprint()).toEqual(before);
    const all = IdSetChecksum.of(ids);
    for (const id of ids) all.remove(id);
    expect(all.fingerprint()).toEqual({ count: 0, idHashXor: '0000000000000000' });
  });

  it('tells sets of the same size apart', () => {
    const a = IdSetChecksum.of(ids.slice(0, 100)).fingerprint();
    const b = IdSetChecksum.of([...ids.slice(0, 99), ids[200]!]).fingerprint();
    expect(a.count).toBe(b.count);
    expect(sameIdSet(a, b)).toBe(false);
    expect(sameIdSet(a, { ...a, idHashXor: a.idHashXor.toUpperCase() })).toBe(true);
    expect(sameIdSet(a, { ...a, count: a.count + 1 })).toBe(false);
  });
});
