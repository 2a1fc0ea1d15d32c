/*
 * Synthetic people for bench/gallery.ts, made from real fr_feature embeddings.
 *
 * 'realistic' (the default). Each synthetic person has a face of its own — a centre made of the
 * real mean face, a mix of a few real identities' offsets from it and a larger random direction,
 * at the real identities' distance from the mean — and several templates, each the centre plus a
 * real photo's offset from its own identity's centre (so a person's views differ from each other
 * as real photos of one person do: pose, light, expression), half of it as it is and half taken
 * from a photo of another identity, so that two people borrowing one photo do not share all of
 * it. Queries are further views of a stored person the same way, plus a little noise.
 *
 * Every part stays inside the subspace real embeddings span. fr_feature's 512-d vectors do not
 * fill their dimensions: over the 2,068 real photos, 150 principal directions hold 99.96 % of the
 * variance and 200 hold 99.9996 % (participation ratio 33; `npx tsx bench/gallery.ts
 * --spectrum`). The random direction of a centre weights each principal direction holding 99.9 %
 * of the variance alike, and the query noise lies in the same directions. The random share is
 * sized so that at 10k templates a template's nearest other person is about as similar as in the
 * real datasets (p50 0.40 against 0.37; ≥ 0.50 for 9–10 % of templates against 8 % of real photos).
 * As a gallery grows, people come closer (p50 0.44 at 100k): a subspace of ≈150 dimensions
 * holds fewer well-separated faces than 512 random ones would.
 *
 * 'isotropic' (--isotropic): the earlier default, kept for comparison. Its random parts (a
 * centre's random direction, per-coordinate random signs on a view's offset, the query noise)
 * are isotropic in all 512 dimensions, which no face embedding is; its people stay as far apart
 * at 1M as at 10k (nearest other p50 0.35–0.38, < 1 % above 0.50).
 *
 * 'crowded' (--crowded): the earlier generator, kept as a stress case. Every synthetic template is
 * a person of its own, derived from a random earlier template with face-shaped noise; each one has
 * another person at ≈0.72 cosine, which the duplicate check would refuse.
 */
import { gaussian, seededRandom } from '../src/domain/random.ts';
import type { GalleryRow } from '../src/gallery/gallery.ts';

export const DIMS = 512;

export interface RealEmbeddings {
  modelId: string;
  count: number;
  vectors: Float32Array;
  /** Identity number of each vector (one per dataset folder). */
  identities: Uint32Array;
}

export type PeopleMode = 'realistic' | 'isotropic' | 'crowded';

/** Fills out with a standard-normal vector (Box–Muller, both outputs used). */
export function gaussianInto(random: () => number, out: Float32Array): void {
  for (let i = 0; i < out.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - random()));
    const phi = 2 * Math.PI * random();
    out[i] = r * Math.cos(phi);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(phi);
  }
}

function normalizeInto(v: Float32Array, out: Float32Array, offset = 0): void {
  let sum = 0;
  for (let i = 0; i < DIMS; i++) sum += v[i]! * v[i]!;
  const inv = 1 / Math.sqrt(sum);
  for (let i = 0; i < DIMS; i++) out[offset + i] = v[i]! * inv;
}

/**
 * Principal components of the real embeddings (covariance about their mean), largest first:
 * eigenvalues, and eigenvectors as rows of `vectors` (n × 512). Cyclic Jacobi rotations — O(n³)
 * a sweep, ≈15 s for 512 dimensions — memoised per embeddings object.
 */
export function principalComponents(real: RealEmbeddings): { values: number[]; vectors: Float64Array } {
  const memo = componentsMemo.get(real);
  if (memo) return memo;
  const n = DIMS;
  const mean = new Float64Array(n);
  for (let i = 0; i < real.count; i++) for (let j = 0; j < n; j++) mean[j]! += real.vectors[i * n + j]! / real.count;
  const a = new Float64Array(n * n);
  const x = new Float64Array(n);
  for (let i = 0; i < real.count; i++) {
    for (let j = 0; j < n; j++) x[j] = real.vectors[i * n + j]! - mean[j]!;
    for (let r = 0; r < n; r++) {
      const xr = x[r]! / (real.count - 1);
      for (let c = r; c < n; c++) a[r * n + c]! += xr * x[c]!;
    }
  }
  for (let r = 0; r < n; r++) for (let c = 0; c < r; c++) a[r * n + c] = a[c * n + r]!;
  // v holds the rotations applied so far: its columns end as the eigenvectors.
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 30; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q]! ** 2;
    if (off < 1e-24) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * n + q]! - a[p * n + p]!) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const sn = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]!;
          const akq = a[k * n + q]!;
          a[k * n + p] = c * akp - sn * akq;
          a[k * n + q] = sn * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!;
          const aqk = a[q * n + k]!;
          a[p * n + k] = c * apk - sn * aqk;
          a[q * n + k] = sn * apk + c * aqk;
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - sn * vkq;
          v[k * n + q] = sn * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j]! - a[i * n + i]!);
  const vectors = new Float64Array(n * n);
  order.forEach((col, row) => {
    for (let k = 0; k < n; k++) vectors[row * n + k] = v[k * n + col]!;
  });
  const result = { values: order.map((i) => a[i * n + i]!), vectors };
  componentsMemo.set(real, result);
  return result;
}

const componentsMemo = new WeakMap<RealEmbeddings, { values: number[]; vectors: Float64Array }>();

/** Principal directions kept for face-shaped random directions: those holding this share of the real variance. */
const FACE_SUBSPACE_VARIANCE = 0.999;

/**
 * A synthetic gallery: template i's vector (generated in order, i = 0, 1, …), the person it
 * belongs to, and queries (new views of a stored template's person).
 */
export interface PeopleGenerator {
  readonly mode: PeopleMode;
  /** Writes template i's unit vector into out. Must be called for i = 0, 1, 2, … in order. */
  next(i: number, out: Float32Array): void;
  /** The person template i belongs to (only for templates already generated). */
  personOf(i: number): number;
  /** A new view (query) of template i's person, unit length, into out. */
  query(random: () => number, i: number, out: Float32Array): void;
  /** How many people the first `size` templates belong to. */
  people(size: number): number;
}

/**
 * Share of a synthetic centre's offset from the mean face that is a random direction (the rest
 * mixes real identities). Chosen so the nearest-other-person similarity matches the datasets'
 * (measured by the bench's data table at each size).
 */
const RANDOM_SHARE = 0.95;
/** The same for --isotropic, whose random directions spread over all 512 dimensions. */
const ISOTROPIC_RANDOM_SHARE = 0.75;
/** Weight of a borrowed photo's offset kept unchanged (see #view). */
const SHARED_VIEW = 0.5;
/** Real identities mixed into one synthetic centre. */
const MIXED_IDENTITIES = 3;
/** Templates per synthetic person: 2–6 (enrolment photos at a few angles). */
const MIN_TEMPLATES = 2;
const MAX_TEMPLATES = 6;
/** Length of a query's extra noise, relative to a unit face (a re-capture is never a stored photo). */
const QUERY_NOISE = 0.15;

export class RealisticPeople implements PeopleGenerator {
  readonly mode: 'realistic' | 'isotropic';
  readonly #real: RealEmbeddings;
  readonly #mean = new Float32Array(DIMS);
  /** Each real identity's centre (mean of its photos, not normalised) and photo list. */
  readonly #centres: Float32Array[] = [];
  readonly #photos: number[][] = [];
  /** Identities with ≥ 3 photos: their offsets are the views given to synthetic people. */
  readonly #viewIdentities: number[] = [];
  /** RMS distance of a real identity's centre from the mean face. */
  readonly #centreSpread: number;
  /** Template → person; person → (seed of its centre, identity whose views it borrows). */
  #personOfTemplate = new Uint32Array(1024);
  readonly #personSeed: number[] = [];
  readonly #personViews: number[] = [];
  readonly #firstTemplate = new Map<number, number>();
  readonly #planner: () => number;
  #left = 0;
  readonly #scratch = new Float32Array(DIMS);
  readonly #centre = new Float32Array(DIMS);
  readonly #gauss = new Float32Array(DIMS);
  readonly #signs = new Float32Array(DIMS);
  readonly #randomShare: number;
  readonly #sharedView: number;

  constructor(real: RealEmbeddings, options: { isotropic?: boolean; seed?: number; randomShare?: number; sharedView?: number } = {}) {
    const { seed = 0x9e3779b9, sharedView = SHARED_VIEW } = options;
    this.mode = options.isotropic ? 'isotropic' : 'realistic';
    const randomShare = options.randomShare ?? (options.isotropic ? ISOTROPIC_RANDOM_SHARE : RANDOM_SHARE);
    this.#sharedView = sharedView;
    this.#real = real;
    this.#planner = seededRandom(seed);
    this.#randomShare = randomShare;
    const v = real.vectors;
    for (let i = 0; i < real.count; i++) for (let j = 0; j < DIMS; j++) this.#mean[j]! += v[i * DIMS + j]! / real.count;
    for (let i = 0; i < real.count; i++) {
      const id = real.identities[i]!;
      while (this.#photos.length <= id) this.#photos.push([]);
      this.#photos[id]!.push(i);
    }
    let spread = 0;
    for (const [id, photos] of this.#photos.entries()) {
      const c = new Float32Array(DIMS);
      for (const p of photos) for (let j = 0; j < DIMS; j++) c[j]! += v[p * DIMS + j]! / photos.length;
      this.#centres.push(c);
      let d = 0;
      for (let j = 0; j < DIMS; j++) d += (c[j]! - this.#mean[j]!) ** 2;
      spread += d;
      if (photos.length >= 3) this.#viewIdentities.push(id);
    }
    this.#centreSpread = Math.sqrt(spread / this.#photos.length);
    if (this.mode === 'realistic') {
      const { values, vectors } = principalComponents(real);
      const total = values.reduce((x, y) => x + Math.max(0, y), 0);
      let k = 0;
      for (let held = 0; k < DIMS && held < FACE_SUBSPACE_VARIANCE * total; k++) held += Math.max(0, values[k]!);
      const basis = new Float32Array(k * DIMS);
      for (let i = 0; i < k * DIMS; i++) basis[i] = vectors[i]!;
      this.#subspace = { basis, k };
    }
  }

  people(size: number): number {
    return size <= 0 ? 0 : this.#personOfTemplate[Math.min(size, this.#generated) - 1]! + 1;
  }

  #generated = 0;

  personOf(i: number): number {
    return this.#personOfTemplate[i]!;
  }

  next(i: number, out: Float32Array): void {
    if (i !== this.#generated) throw new Error('templates are generated in order');
    if (i >= this.#personOfTemplate.length) {
      const grown = new Uint32Array(this.#personOfTemplate.length * 2);
      grown.set(this.#personOfTemplate);
      this.#personOfTemplate = grown;
    }
    this.#generated++;
    const real = this.#real;
    if (i < real.count) {
      // The real photos themselves: their dataset identities are people 0 … (identities − 1).
      this.#personOfTemplate[i] = real.identities[i]!;
      while (this.#personSeed.length < this.#photos.length) {
        this.#personSeed.push(-1);
        this.#personViews.push(this.#personSeed.length - 1);
      }
      out.set(real.vectors.subarray(i * DIMS, (i + 1) * DIMS));
      return;
    }
    if (this.#left === 0) {
      const random = this.#planner;
      this.#personSeed.push(Math.floor(random() * 2 ** 32));
      const views = this.#viewIdentities[Math.floor(random() * this.#viewIdentities.length)]!;
      this.#personViews.push(views);
      // One photo of the borrowed identity is always left for queries.
      const wanted = MIN_TEMPLATES + Math.floor(random() * (MAX_TEMPLATES - MIN_TEMPLATES + 1));
      this.#left = Math.min(wanted, this.#photos[views]!.length - 1);
      this.#templateOfPerson = 0;
      this.#firstTemplate.set(this.#personSeed.length - 1, i);
    }
    this.#left--;
    const person = this.#personSeed.length - 1;
    this.#personOfTemplate[i] = person;
    this.#view(person, this.#templateOfPerson++, undefined, out);
  }

  #templateOfPerson = 0;
  /** The principal subspace of the real embeddings (realistic mode): k directions, row-major. */
  readonly #subspace: { basis: Float32Array; k: number } | null = null;
  readonly #subspaceWeights = new Float64Array(DIMS);
  /** A person's templates are made one after another: the last centre's random direction is kept. */
  #lastCentreSeed = -1;
  readonly #lastDirection = new Float32Array(DIMS);
  /** The (identity · 65536 + photo draw) whose offset gives the current view its own part (realistic mode). */
  #ownView = 0;

  query(random: () => number, i: number, out: Float32Array): void {
    const person = this.personOf(i);
    const seed = this.#personSeed[person]!;
    const photos = this.#photos[this.#personViews[person]!]!;
    // Real people: any of their photos (each is also stored); synthetic: a view none of its templates uses.
    if (seed < 0) this.#view(person, Math.floor(random() * photos.length), random, out);
    else {
      const used = this.#templatesOf(person);
      this.#view(person, used + Math.floor(random() * (photos.length - used)), random, out);
    }
  }

  /** How many templates a synthetic person has (its templates are consecutive). */
  #templatesOf(person: number): number {
    let first = this.#firstTemplate.get(person);
    if (first === undefined) throw new Error(`person ${person} is not generated`);
    let n = 0;
    while (first < this.#generated && this.#personOfTemplate[first] === person) {
      n++;
      first++;
    }
    return n;
  }

  /**
   * View `nth` of the person: its centre plus the offset of the nth photo (in the person's own
   * seeded order) of the identity it borrows views from, from that identity's centre; plus
   * noise when a random source is given (queries: a re-capture is never a stored photo).
   */
  #view(person: number, nth: number, noise: (() => number) | undefined, out: Float32Array): void {
    const seed = this.#personSeed[person]!;
    const views = this.#personViews[person]!;
    const photos = this.#photos[views]!;
    let photo: number;
    if (seed < 0) {
      this.#centre.set(this.#centres[person]!);
      photo = photos[nth]!;
    } else {
      const random = this.#centreInto(seed, this.#centre);
      if (this.mode === 'isotropic') for (let j = 0; j < DIMS; j++) this.#signs[j] = random() < 0.5 ? -1 : 1;
      // The person's own order of the borrowed photos: a partial Fisher–Yates shuffle up to nth.
      const order = photos.slice();
      for (let k = 0; k <= nth; k++) {
        const j = k + Math.floor(random() * (order.length - k));
        [order[k], order[j]] = [order[j]!, order[k]!];
      }
      photo = order[nth]!;
      if (this.mode === 'realistic') {
        // The view's own part: another identity's photo offset, drawn per (person, view).
        for (let k = 0; k <= nth; k++) this.#ownView = this.#viewIdentities[Math.floor(random() * this.#viewIdentities.length)]! * 65536 + Math.floor(random() * 65536);
      }
    }
    const idCentre = this.#centres[views]!;
    // Offsets from a centre of n photos are shrunk by √((n − 1)/n); undo it.
    const grow = Math.sqrt(photos.length / (photos.length - 1));
    const v = this.#scratch;
    const p = this.#real.vectors.subarray(photo * DIMS, (photo + 1) * DIMS);
    if (seed < 0) for (let j = 0; j < DIMS; j++) v[j] = this.#centre[j]! + grow * (p[j]! - idCentre[j]!);
    else {
      // Part of the borrowed offset is kept as it is (pose and light move every face alike), the
      // rest with the person's own random signs, so two people borrowing one photo do not share
      // all of its offset.
      const kept = grow * this.#sharedView;
      const own = grow * Math.sqrt(1 - this.#sharedView ** 2);
      if (this.mode === 'isotropic') {
        for (let j = 0; j < DIMS; j++) {
          const o = p[j]! - idCentre[j]!;
          v[j] = this.#centre[j]! + kept * o + own * this.#signs[j]! * o;
        }
      } else {
        const otherId = Math.floor(this.#ownView / 65536);
        const otherPhotos = this.#photos[otherId]!;
        const other = otherPhotos[(this.#ownView % 65536) % otherPhotos.length]!;
        const otherCentre = this.#centres[otherId]!;
        const otherGrow = Math.sqrt(otherPhotos.length / (otherPhotos.length - 1)) / grow;
        const q = this.#real.vectors.subarray(other * DIMS, (other + 1) * DIMS);
        for (let j = 0; j < DIMS; j++) v[j] = this.#centre[j]! + kept * (p[j]! - idCentre[j]!) + own * otherGrow * (q[j]! - otherCentre[j]!);
      }
    }
    if (noise && this.#subspace) {
      // A re-capture is still a face embedding: its noise stays in the real subspace too.
      this.#drawSubspaceWeights(noise);
      this.#addSubspaceDirection(QUERY_NOISE / Math.sqrt(this.#subspace.k), v);
    } else if (noise) {
      gaussianInto(noise, this.#gauss);
      const scale = QUERY_NOISE / Math.sqrt(DIMS);
      for (let j = 0; j < DIMS; j++) v[j]! += scale * this.#gauss[j]!;
    }
    normalizeInto(v, out);
  }

  /** One standard-normal weight per direction of the real subspace, into #subspaceWeights. */
  #drawSubspaceWeights(random: () => number): void {
    for (let i = 0; i < this.#subspace!.k; i++) this.#subspaceWeights[i] = gaussian(random);
  }

  /** out += scale · Σ weightᵢ · directionᵢ over the real subspace (the weights last drawn). */
  #addSubspaceDirection(scale: number, out: Float32Array): void {
    const { basis, k } = this.#subspace!;
    for (let i = 0; i < k; i++) {
      const w = scale * this.#subspaceWeights[i]!;
      for (let j = 0; j < DIMS; j++) out[j]! += w * basis[i * DIMS + j]!;
    }
  }

  /** mean + spread · (√(1−s) · mix of real identities' offsets + √s · random unit direction: isotropic, or in the real subspace). */
  #centreInto(seed: number, out: Float32Array): () => number {
    const random = seededRandom(seed);
    const mix = this.#scratch;
    mix.fill(0);
    for (let k = 0; k < MIXED_IDENTITIES; k++) {
      const c = this.#centres[Math.floor(random() * this.#centres.length)]!;
      const w = random() * 2 - 1;
      for (let j = 0; j < DIMS; j++) mix[j]! += w * (c[j]! - this.#mean[j]!);
    }
    let mixNorm = 0;
    for (let j = 0; j < DIMS; j++) mixNorm += mix[j]! * mix[j]!;
    if (this.mode === 'isotropic') gaussianInto(random, this.#gauss);
    else {
      // Face-shaped: a random direction inside the subspace real embeddings span, every principal
      // direction weighted alike (the draws are made even when the centre is reused, so that
      // the random stream that follows stays the same).
      this.#drawSubspaceWeights(random);
      const g = this.#gauss;
      if (this.#lastCentreSeed === seed) g.set(this.#lastDirection);
      else {
        g.fill(0);
        this.#addSubspaceDirection(1, g);
        this.#lastDirection.set(g);
        this.#lastCentreSeed = seed;
      }
    }
    let gaussNorm = 0;
    for (let j = 0; j < DIMS; j++) gaussNorm += this.#gauss[j]! * this.#gauss[j]!;
    const a = (this.#centreSpread * Math.sqrt(1 - this.#randomShare)) / Math.sqrt(mixNorm);
    const b = (this.#centreSpread * Math.sqrt(this.#randomShare)) / Math.sqrt(gaussNorm);
    for (let j = 0; j < DIMS; j++) out[j] = this.#mean[j]! + a * mix[j]! + b * this.#gauss[j]!;
    return random;
  }
}

/** The earlier, crowded generator (see the file comment): a stress case. */
export class CrowdedPeople implements PeopleGenerator {
  readonly mode = 'crowded' as const;
  readonly #real: RealEmbeddings;
  readonly #mean = new Float32Array(DIMS);
  readonly #scratch = new Float32Array(DIMS);
  readonly #gauss = new Float32Array(DIMS);
  readonly #random: () => number;
  /** Every template so far (a new person derives from a random earlier one). */
  #vectors = new Float32Array(1024 * DIMS);

  constructor(real: RealEmbeddings, seed = 0x9e3779b9) {
    this.#real = real;
    this.#random = seededRandom(seed);
    for (let i = 0; i < real.count; i++) for (let j = 0; j < DIMS; j++) this.#mean[j]! += real.vectors[i * DIMS + j]! / real.count;
  }

  people(size: number): number {
    return size <= this.#real.count ? new Set(this.#real.identities.subarray(0, size)).size : new Set(this.#real.identities).size + size - this.#real.count;
  }

  personOf(i: number): number {
    return i < this.#real.count ? this.#real.identities[i]! : 1_000_000 + i;
  }

  next(i: number, out: Float32Array): void {
    if ((i + 1) * DIMS > this.#vectors.length) {
      const grown = new Float32Array(this.#vectors.length * 2);
      grown.set(this.#vectors);
      this.#vectors = grown;
    }
    if (i < this.#real.count) out.set(this.#real.vectors.subarray(i * DIMS, (i + 1) * DIMS));
    else {
      // A new person derived from a random earlier template (≈0.55–0.75 cosine to it).
      const parent = Math.floor(this.#random() * i);
      this.#perturb(this.#random, this.#vectors.subarray(parent * DIMS, (parent + 1) * DIMS), 0.8 + 0.4 * this.#random(), 0.5, out);
    }
    this.#vectors.set(out, i * DIMS);
  }

  query(random: () => number, i: number, out: Float32Array): void {
    // A re-capture of the stored face (≈0.7–0.9 cosine to it).
    this.#perturb(random, this.#vectors.subarray(i * DIMS, (i + 1) * DIMS), 0.4 + 0.4 * random(), 0.4, out);
  }

  /** normalize(base + shaped · Σ₈(r − mean)/√8 + isotropic · g/√d) into out. */
  #perturb(random: () => number, base: Float32Array, shaped: number, isotropic: number, out: Float32Array): void {
    const v = this.#scratch;
    gaussianInto(random, this.#gauss);
    const isoScale = isotropic / Math.sqrt(DIMS);
    for (let i = 0; i < DIMS; i++) v[i] = base[i]! + isoScale * this.#gauss[i]!;
    const scale = shaped / Math.sqrt(8);
    for (let m = 0; m < 8; m++) {
      const r = Math.floor(random() * this.#real.count) * DIMS;
      for (let i = 0; i < DIMS; i++) v[i]! += scale * (this.#real.vectors[r + i]! - this.#mean[i]!);
    }
    normalizeInto(v, out);
  }
}

/** The first `count` templates of a generator as gallery rows (ids t0, t1, …; people p0, p1, …). */
export function galleryRows(people: PeopleGenerator, count: number): GalleryRow[] {
  const rows: GalleryRow[] = [];
  for (let i = 0; i < count; i++) {
    const embedding = new Float32Array(DIMS);
    people.next(i, embedding);
    rows.push({ id: `t${i}`, personId: `p${people.personOf(i)}`, embedding });
  }
  return rows;
}
