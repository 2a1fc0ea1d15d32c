import type { GalleryRow } from './gallery.ts';
import { usearch } from './usearch.ts';
import { dotRow, normalizeInto } from './vector-math.ts';

/*
 * How often the gallery's index answers a search with the template an exact scan would, measured
 * on the gallery itself. The queries must look like new photos of enrolled people, not like
 * stored templates: a stored template is a node of the HNSW graph, and a search for it lands on it
 * and its linked neighbours however narrow the search (at 100k realistic templates, searching
 * stored templates for their nearest other gave recall@1 0.998 at every ef from 32 to 256, while
 * new views got 0.86–0.99). So each query is a stored template moved the way another photo
 * would move it: along the difference between two templates of another person in the gallery
 * (their pose, light and expression), by VIEW_OFFSET. The length was set with `npm run
 * bench:gallery-recall`: at 100k, 0.6 (a view ≈0.86 from its template) overstated the recall of
 * the benchmark's new views by 0.01–0.12 and 1.0 understated it by 0.01–0.09; 0.9 follows it
 * within 0.02 at ef 32–256. Everything comes from the gallery's own vectors: it fits whatever
 * model made them.
 */

export interface RecallQuery {
  /** Unit vector. */
  vector: Float32Array;
  /** The index's top-1 for this query (undefined: it found none). */
  indexTop?: { templateId: string; personId: string };
}

export interface RecallEstimate {
  samples: number;
  /** Share whose index top-1 is the exact top-1 (another template at the same exact similarity counts). */
  recallAt1: number;
  /** Share whose index top-1 belongs to the exact top-1's person (what identification needs). */
  samePersonAt1: number;
}

/** Length of the offset that turns a stored template into a new view (cosine to it ≈ 1/√(1 + 0.9²) ≈ 0.74). */
export const VIEW_OFFSET = 0.9;
/** Similarities this close are ties: float32 rows give the same template a slightly different score. */
const TIE = 1e-6;

/**
 * A new view of `template`: moved by offsetLength along from − to (two other templates, ideally of
 * one other person: how that person's photos differ), unit length. null when from equals to.
 */
export function newView(template: Float32Array, from: Float32Array, to: Float32Array, offsetLength = VIEW_OFFSET): Float32Array | null {
  const d = template.length;
  const offset = new Float32Array(d);
  let length = 0;
  for (let i = 0; i < d; i++) {
    offset[i] = from[i]! - to[i]!;
    length += offset[i]! * offset[i]!;
  }
  if (!(length > 1e-12)) return null;
  const scale = offsetLength / Math.sqrt(length);
  const view = new Float32Array(d);
  for (let i = 0; i < d; i++) view[i] = template[i]! + scale * offset[i]!;
  normalizeInto(view, view);
  return view;
}

export interface ViewSources {
  /** The template the view is of. */
  templateId: string;
  /** The view moves it along from − to. */
  fromId: string;
  toId: string;
}

/**
 * Picks what a new view is made of: a random template, and two templates of one other person
 * (how that person's photos differ); any other template as `to` when that person has one only.
 */
export async function viewSources(
  ids: readonly string[],
  personOf: (templateId: string) => string | undefined,
  templatesOf: (personId: string) => Promise<readonly string[]> | readonly string[],
  random: () => number,
): Promise<ViewSources> {
  const pick = (): string => ids[Math.floor(random() * ids.length)]!;
  const templateId = pick();
  let fromId = pick();
  for (let tries = 0; tries < 8 && personOf(fromId) === personOf(templateId); tries++) fromId = pick();
  const fromPerson = personOf(fromId);
  const siblings = (fromPerson === undefined ? [] : await templatesOf(fromPerson)).filter((id) => id !== fromId);
  let toId = siblings.length > 0 ? siblings[Math.floor(random() * siblings.length)]! : pick();
  for (let tries = 0; tries < 8 && toId === fromId; tries++) toId = pick();
  return { templateId, fromId, toId };
}

/**
 * The exact side: each query's nearest stored template, folded in one batch at a time (the store
 * streams them), plus the exact similarity of the index's answer.
 */
export class NearestScan {
  readonly #dims: number;
  readonly #queries: readonly RecallQuery[];
  readonly #matrix: Float32Array;
  readonly #best: ({ templateId: string; personId: string; similarity: number } | undefined)[];
  /** Index answer id → the queries it answered. */
  readonly #watched = new Map<string, number[]>();
  readonly #indexTopSimilarity: (number | undefined)[];

  constructor(queries: readonly RecallQuery[], dims: number) {
    this.#dims = dims;
    this.#queries = queries;
    this.#matrix = new Float32Array(queries.length * dims);
    queries.forEach((q, i) => {
      normalizeInto(q.vector, this.#matrix, i * dims);
      if (q.indexTop) this.#watched.set(q.indexTop.templateId, [...(this.#watched.get(q.indexTop.templateId) ?? []), i]);
    });
    this.#best = queries.map(() => undefined);
    this.#indexTopSimilarity = queries.map(() => undefined);
  }

  add(batch: readonly GalleryRow[]): void {
    const d = this.#dims;
    const n = batch.length;
    if (n === 0 || this.#queries.length === 0) return;
    const rows = new Float32Array(n * d);
    batch.forEach((t, i) => normalizeInto(t.embedding, rows, i * d));
    const found = usearch.exactSearch(rows, this.#matrix, d, 1, usearch.MetricKind.IP, 1);
    for (let q = 0; q < this.#queries.length; q++) {
      const row = Number(found.keys[q]);
      if (!(row < n)) continue;
      const similarity = this.#similarity(q, rows, row);
      const best = this.#best[q];
      if (!best || similarity > best.similarity) this.#best[q] = { templateId: batch[row]!.id, personId: batch[row]!.personId, similarity };
    }
    for (let row = 0; row < n; row++) {
      for (const q of this.#watched.get(batch[row]!.id) ?? []) this.#indexTopSimilarity[q] = this.#similarity(q, rows, row);
    }
  }

  /** Compares the index's answers with the exact ones (call after the last batch). */
  estimate(): RecallEstimate {
    let samples = 0;
    let hits = 0;
    let samePerson = 0;
    this.#queries.forEach((query, q) => {
      const exact = this.#best[q];
      if (!exact) return;
      samples++;
      const top = query.indexTop;
      if (!top) return;
      const topSimilarity = this.#indexTopSimilarity[q];
      if (top.templateId === exact.templateId || (topSimilarity !== undefined && topSimilarity >= exact.similarity - TIE)) hits++;
      if (top.personId === exact.personId) samePerson++;
    });
    return { samples, recallAt1: samples ? hits / samples : 1, samePersonAt1: samples ? samePerson / samples : 1 };
  }

  /** Query q against a batch row, summed in float64 (usearch's float32 sum can differ in the 7th digit). */
  #similarity(q: number, rows: Float32Array, row: number): number {
    const d = this.#dims;
    return dotRow(this.#matrix, q, d, rows.subarray(row * d, (row + 1) * d));
  }
}
