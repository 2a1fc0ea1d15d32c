import { dot } from '../domain/metrics.ts';
import type { TemplateMatch } from '../domain/identity.ts';
import type { AttendanceRepository, NegativeExample } from '../store/index.ts';
import type { Embedding } from '../vision/face-engine.ts';

/*
 * "This was not X" corrections, in memory: the faces of revoked check-ins, each a negative example
 * for the person it was wrongly taken for. The identity decision compares a probe with them
 * (decideIdentity's `negatives`) and does not name X for a face closer to one of X's negative
 * examples than to X's own best template. Revocations are rare, so a linear scan over a few
 * hundred vectors costs microseconds; they are loaded from the store at start.
 */
export class NegativeExamples {
  private readonly examples = new Map<string, NegativeExample>();

  constructor(
    private readonly source: Pick<AttendanceRepository, 'negativeExamples'>,
    private readonly modelId: string,
  ) {}

  async load(): Promise<void> {
    this.examples.clear();
    for (const e of await this.source.negativeExamples(this.modelId)) this.examples.set(e.recordId, e);
  }

  add(example: NegativeExample): void {
    if (example.modelId === this.modelId && example.embedding.length > 0) this.examples.set(example.recordId, example);
  }

  get size(): number {
    return this.examples.size;
  }

  /** The probe's similarity to every negative example of its model, tagged with the person each is not. */
  similarities(probe: Embedding): TemplateMatch[] {
    if (probe.modelId !== this.modelId || this.examples.size === 0) return [];
    const out: TemplateMatch[] = [];
    for (const e of this.examples.values()) {
      if (e.embedding.length !== probe.vector.length) continue;
      out.push({ personId: e.personId, similarity: Math.max(-1, Math.min(1, dot(probe.vector, e.embedding))), templateId: e.recordId });
    }
    return out;
  }
}
