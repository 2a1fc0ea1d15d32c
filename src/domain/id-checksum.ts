/*
 * The fingerprint of a set of template ids that the store and the vector index both compute, so
 * that "is the index in step with the store?" is a comparison, not a guess: the count plus the XOR
 * of a 64-bit FNV-1a hash of each id. XOR makes it independent of order and incremental (an id is
 * XORed in on add and out again on remove), and it needs nothing from SQL beyond reading ids.
 * Ids in a set are unique, so XOR's "the same id twice cancels" never arises.
 */

/** The count and id-hash XOR of a set of template ids. */
export interface IdSetFingerprint {
  count: number;
  /** XOR of templateIdHash(id) over the set: 16 lowercase hex digits, all zeros for the empty set. */
  idHashXor: string;
}

/** FNV-1a 64 of the id's UTF-16 code units, as [high, low] unsigned 32-bit halves. */
function fnv1a64(id: string): [number, number] {
  // Offset basis 0xcbf29ce484222325; prime 0x100000001b3 = 2^40 + 0x1b3, so
  // h·prime mod 2^64 = h·0x1b3 + (low word << 40), done in 32-bit halves without BigInt.
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  for (let i = 0; i < id.length; i++) {
    lo = (lo ^ id.charCodeAt(i)) >>> 0;
    const loTimesPrimeLow = lo * 0x1b3; // < 2^41: exact in a double
    const carry = Math.floor(loTimesPrimeLow / 0x1_0000_0000);
    hi = (Math.imul(hi, 0x1b3) + (lo << 8) + carry) >>> 0;
    lo = loTimesPrimeLow >>> 0;
  }
  return [hi, lo];
}

function hex64(hi: number, lo: number): string {
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}

/** The 64-bit FNV-1a hash of one template id, as 16 lowercase hex digits. */
export function templateIdHash(id: string): string {
  const [hi, lo] = fnv1a64(id);
  return hex64(hi, lo);
}

/** Keeps the fingerprint of a changing set of ids; add and remove are inverses. */
export class IdSetChecksum {
  #count = 0;
  #hi = 0;
  #lo = 0;

  /** The fingerprint of a whole set at once. */
  static of(ids: Iterable<string>): IdSetChecksum {
    const checksum = new IdSetChecksum();
    for (const id of ids) checksum.add(id);
    return checksum;
  }

  get count(): number {
    return this.#count;
  }

  get idHashXor(): string {
    return hex64(this.#hi, this.#lo);
  }

  /** Counts an id in; the caller makes sure it was not in the set already. */
  add(id: string): void {
    this.#toggle(id);
    this.#count++;
  }

  /** Counts an id out; the caller makes sure it was in the set. */
  remove(id: string): void {
    this.#toggle(id);
    this.#count--;
  }

  fingerprint(): IdSetFingerprint {
    return { count: this.#count, idHashXor: this.idHashXor };
  }

  #toggle(id: string): void {
    const [hi, lo] = fnv1a64(id);
    this.#hi = (this.#hi ^ hi) >>> 0;
    this.#lo = (this.#lo ^ lo) >>> 0;
  }
}

/** True when two fingerprints describe the same set (same count and same id-hash XOR). */
export function sameIdSet(a: IdSetFingerprint, b: IdSetFingerprint): boolean {
  return a.count === b.count && a.idHashXor.toLowerCase() === b.idHashXor.toLowerCase();
}
