import { describe, expect, it } from 'vitest';
import type { GalleryRow } from '../../src/gallery/gallery.ts';
import { NearestScan, newView, VIEW_OFFSET, viewSources, type RecallQuery } from '../../src/gallery/recall-check.ts';
import { dot, perturbed, randomUnitMatrix, seededRandom } from './random-vectors.ts';

const DIMS = 32;

/** 120 people with 3 templates each, near their own face; template i belongs to person ⌊i/3⌋. */
function gallery(): GalleryRow[] {
  const random = seededRandom(11);
  const faces = randomUnitMatrix(random, 120, DIMS);
  const templates: GalleryRow[] = [];
  for (let p = 0; p < 120; p++) {
    for (let j = 0; j < 3; j++) {
      templates.push({ id: `t${String(templates.length).padStart(4, '0')}`, personId: `p${p}`, embedding: perturbed(random, faces.subarray(p * DIMS, (p + 1) * DIMS), 0.6) });
    }
  }
  return templates;
}

/** Each query's nearest template, by a plain loop. */
function nearest(templates: GalleryRow[], queries: Float32Array[]): GalleryRow[] {
  return queries.map((q) => {
    let best = templates[0]!;
    for (const t of templates) if (dot(q, t.embedding) > dot(q, best.embedding)) best = t;
    return best;
  });
}

function scanInBatches(templates: GalleryRow[], queries: RecallQuery[], batchSize: number): NearestScan {
  const scan = new NearestScan(queries, DIMS);
  for (let i = 0; i < templates.length; i += batchSize) scan.add(templates.slice(i, i + batchSize));
  return scan;
}

describe('NearestScan', () => {
  const templates = gallery();
  const random = seededRandom(5);
  const views = templates.filter((_, i) => i % 7 === 0).map((t) => perturbed(random, t.embedding, 0.8));
  const truth = nearest(templates, views);
  const answer = (t: GalleryRow): RecallQuery['indexTop'] => ({ templateId: t.id, personId: t.personId });

  it('finds every query’s nearest template over streamed batches of any size', () => {
    const right: RecallQuery[] = views.map((vector, i) => ({ vector, indexTop: answer(truth[i]!) }));
    for (const batchSize of [1, 2, 37, 1000]) {
      expect(scanInBatches(templates, right, batchSize).estimate()).toEqual({ samples: views.length, recallAt1: 1, samePersonAt1: 1 });
    }
  });

  it('counts a wrong template of the right person for the person only, a wrong person for neither, and no answer as a miss', () => {
    const answers: RecallQuery[] = views.map((vector, i) => {
      const right = truth[i]!;
      const sibling = templates.find((t) => t.personId === right.personId && dot(vector, t.embedding) < dot(vector, right.embedding) - 1e-3);
      if (i % 4 === 1 && sibling) return { vector, indexTop: answer(sibling) };
      if (i % 4 === 2) return { vector, indexTop: answer(templates.find((t) => t.personId !== right.personId)!) };
      if (i % 4 === 3) return { vector };
      return { vector, indexTop: answer(right) };
    });
    const hits = answers.filter((a, i) => a.indexTop?.templateId === truth[i]!.id).length;
    const samePerson = answers.filter((a, i) => a.indexTop?.personId === truth[i]!.personId).length;
    expect(hits).toBeLessThan(samePerson); // some sibling answers exist
    expect(hits).toBeGreaterThan(0);
    expect(scanInBatches(templates, answers, 100).estimate()).toEqual({ samples: views.length, recallAt1: hits / views.length, samePersonAt1: samePerson / views.length });
  });

  it('counts a different template at the same similarity as a hit (a copy of the nearest one)', () => {
    const copy: GalleryRow = { id: 'zcopy', personId: truth[0]!.personId, embedding: truth[0]!.embedding.slice() };
    const scan = scanInBatches([...templates, copy], [{ vector: views[0]!, indexTop: answer(copy) }], 50);
    expect(scan.estimate()).toEqual({ samples: 1, recallAt1: 1, samePersonAt1: 1 });
  });

  it('has no sample in an empty gallery', () => {
    expect(scanInBatches([], [{ vector: views[0]! }], 10).estimate()).toEqual({ samples: 0, recallAt1: 1, samePersonAt1: 1 });
  });
});

describe('new views', () => {
  const templates = gallery();
  const byId = new Map(templates.map((t) => [t.id, t]));
  const templatesOf = (personId: string): string[] => templates.filter((t) => t.personId === personId).map((t) => t.id);

  it('move a template of one person along the difference of two templates of another', async () => {
    const random = seededRandom(9);
    const ids = templates.map((t) => t.id);
    for (let i = 0; i < 50; i++) {
      const { templateId, fromId, toId } = await viewSources(ids, (id) => byId.get(id)?.personId, templatesOf, random);
      const [template, from, to] = [byId.get(templateId)!, byId.get(fromId)!, byId.get(toId)!];
      expect(from.personId).not.toBe(template.personId);
      expect(to.personId).toBe(from.personId);
      expect(toId).not.toBe(fromId);
      const view = newView(template.embedding, from.embedding, to.embedding)!;
      // The template moved by VIEW_OFFSET along from − to, at unit length.
      const difference = Math.hypot(...from.embedding.map((f, j) => f - to.embedding[j]!));
      const moved = template.embedding.map((y, j) => y + (VIEW_OFFSET * (from.embedding[j]! - to.embedding[j]!)) / difference);
      const length = Math.hypot(...moved);
      moved.forEach((m, j) => expect(view[j]).toBeCloseTo(m / length, 5));
    }
  });

  it('take any other template when the other person has one only, and no view when the two are equal', async () => {
    const single: GalleryRow[] = [templates[0]!, { ...templates[3]!, personId: 'solo' }, { ...templates[6]!, personId: 'solo2' }];
    const ids = single.map((t) => t.id);
    const personOf = (id: string): string | undefined => single.find((t) => t.id === id)?.personId;
    const sources = await viewSources(ids, personOf, (p) => single.filter((t) => t.personId === p).map((t) => t.id), seededRandom(2));
    expect(sources.toId).not.toBe(sources.fromId);
    expect(newView(templates[0]!.embedding, templates[3]!.embedding, templates[3]!.embedding)).toBeNull();
  });
});
