import { embeddingToBytes, type AuditEntry, type RecognitionLogEntry, type Store } from '../store/index.ts';
import type { Person } from '../store/index.ts';
import { PersonNotFoundError } from '../store/index.ts';

/** Everything Facegate holds about one person, as handed over on a subject-access request. */
export interface PersonExport {
  format: 'facegate-person-export/1';
  exportedAt: string;
  person: Person;
  faces: Array<{
    id: string;
    modelId: string;
    source: string;
    createdAt: number;
    pose: { label: string | null; yawDeg: number | null; pitchDeg: number | null; rollDeg: number | null };
    quality: number | null;
    /** The face embedding as stored (decrypted): Float32 little-endian, base64. */
    embedding: { dims: number; encoding: 'float32le-base64'; data: string };
    /** The aligned face thumbnail, when one is stored. */
    thumbnail: { contentType: 'image/jpeg'; base64: string } | null;
  }>;
  recognitionLog: RecognitionLogEntry[];
  /** Changes made to this person's records. */
  audit: AuditEntry[];
}

/** Most log rows exported per person (a year of daily check-ins is far below it). */
const MAX_LOG_ROWS = 100_000;

export class PrivacyService {
  constructor(private readonly store: Store) {}

  async exportPerson(id: string): Promise<PersonExport> {
    const person = await this.store.people.get(id);
    if (!person) throw new PersonNotFoundError(id);
    const templates = await this.store.templates.listByPerson(id);
    const faces: PersonExport['faces'] = [];
    for (const t of templates) {
      const thumbnail = t.hasThumbnail ? await this.store.templates.getThumbnail(t.id) : null;
      faces.push({
        id: t.id,
        modelId: t.modelId,
        source: t.source,
        createdAt: t.createdAt,
        pose: t.pose,
        quality: t.quality,
        embedding: { dims: t.embedding.length, encoding: 'float32le-base64', data: embeddingToBytes(t.embedding).toString('base64') },
        thumbnail: thumbnail ? { contentType: 'image/jpeg', base64: Buffer.from(thumbnail).toString('base64') } : null,
      });
    }
    const recognitionLog: RecognitionLogEntry[] = [];
    for (let beforeId: number | undefined; recognitionLog.length < MAX_LOG_ROWS; ) {
      const page = await this.store.recognitionLog.list({ personId: id, limit: 1000, ...(beforeId !== undefined ? { beforeId } : {}) });
      recognitionLog.push(...page);
      if (page.length < 1000) break;
      beforeId = page[page.length - 1]!.id;
    }
    const audit = await this.store.audit.list({ targetId: id, limit: 1000 });
    return { format: 'facegate-person-export/1', exportedAt: new Date().toISOString(), person, faces, recognitionLog, audit };
  }
}
