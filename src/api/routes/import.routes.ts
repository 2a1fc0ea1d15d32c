import { z } from 'zod';
import { IMPORT_ROW_REASONS, type ImportRowInput } from '../../services/import.service.ts';
import type { RouteModule } from '../server.ts';

/*
 * Bulk import of people with photo URLs (admin). Two bodies are accepted: Facegate's own
 * `{ people: [...] }`, and the `{ classStudents: [{ rollNo, url }] }` body of roll-number
 * registration services, as is (rollNo becomes the external id and the name, type "student").
 * Every row is answered; the request fails as a whole only when the body is invalid.
 */

/** Rows per request: each row fetches and analyses photos, and the answer comes when all are done. */
export const MAX_IMPORT_ROWS = 1000;
const MAX_PHOTOS_PER_ROW = 10;

const text = (max: number) => z.string().trim().min(1).max(max);
const photoUrl = z.string().trim().min(1).max(2048).describe('http(s) URL of a face photo');

const personRow = z
  .strictObject({
    externalId: text(200).nullable().optional().describe('employee code, roll number…; a row whose external id exists is skipped (see onExisting)'),
    name: text(200).nullable().optional().describe('default: the external id'),
    email: z.string().trim().max(320).nullable().optional(),
    department: z.string().trim().max(200).nullable().optional(),
    type: z.string().trim().max(100).nullable().optional().describe('free label: employee, student, visitor…'),
    photoUrl: photoUrl.optional().describe('one photo URL (tried first)'),
    photoUrls: z.array(photoUrl).max(MAX_PHOTOS_PER_ROW).optional().describe('more photo URLs'),
  })
  .refine((row) => row.externalId || row.name, 'give a name or an external id');

const onExisting = z
  .enum(['skip', 'add_faces'])
  .optional()
  .describe('a row whose external id exists: skip it (default; re-running an import changes nothing) or add its photos to that person');

const peopleBody = z.strictObject({ people: z.array(personRow).min(1).max(MAX_IMPORT_ROWS), onExisting });
const classStudentsBody = z.strictObject({
  classStudents: z.array(z.strictObject({ rollNo: text(200), url: photoUrl })).min(1).max(MAX_IMPORT_ROWS),
  onExisting,
});

const photoResult = z.object({
  photo: z.string(),
  status: z.enum(['added', 'refused', 'not_tried']),
  templateId: z.string().optional(),
  reason: z.string().optional().describe('refused: no_face, several_faces, low_quality, duplicate, invalid_image, url_not_allowed, url_fetch_failed, …'),
  message: z.string().optional(),
  duplicateOf: z.string().optional().describe('reason duplicate: the person the face belongs to'),
  similarity: z.number().optional(),
});

const rowResult = z.object({
  index: z.number().int().describe('0-based position in the request'),
  externalId: z.string().nullable(),
  name: z.string().nullable(),
  status: z.enum(['added', 'updated', 'skipped', 'failed']),
  personId: z.string().nullable().describe('added/updated: the person; skipped: the existing person (same external id, or whose face it is)'),
  templatesAdded: z.number().int(),
  reason: z.enum(IMPORT_ROW_REASONS).nullable(),
  message: z.string(),
  photos: z.array(photoResult),
});

const importAnswer = z.object({
  status: z.literal('success').describe('the request was processed; see each row'),
  message: z.string(),
  summary: z.object({
    rows: z.number().int(),
    added: z.number().int(),
    updated: z.number().int(),
    skipped: z.number().int(),
    failed: z.number().int(),
    templatesAdded: z.number().int(),
  }),
  rows: z.array(rowResult),
});

export const importRoutes: RouteModule = (app, { services }) => {
  app.post(
    '/api/v1/people/import',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['people'],
        summary: 'Import people with face photo URLs; every row is answered',
        description:
          'One row is one person and one unit of work: a person is created only when at least one of its photos gives a usable face ' +
          'that is not already someone else’s. A row whose faces all belong to another person is skipped and names that person. ' +
          `At most ${MAX_IMPORT_ROWS} rows and ${MAX_PHOTOS_PER_ROW} photos a row; URLs are fetched with the urlFetch limits.`,
        body: z.union([peopleBody, classStudentsBody]),
        response: { 200: importAnswer },
      },
    },
    async (request) => {
      const body = request.body;
      const rows: ImportRowInput[] =
        'people' in body
          ? body.people.map((p) => ({
              externalId: p.externalId ?? null,
              name: p.name ?? null,
              email: p.email ?? null,
              department: p.department ?? null,
              type: p.type ?? null,
              photos: [...(p.photoUrl ? [p.photoUrl] : []), ...(p.photoUrls ?? [])].map((url) => ({ url })),
            }))
          : body.classStudents.map((s) => ({ externalId: s.rollNo, name: s.rollNo, type: 'student', photos: [{ url: s.url }] }));
      const result = await services.import.importRows(rows, { onExisting: body.onExisting ?? 'skip' });
      const s = result.summary;
      // The wording of roll-number registration services, so their clients read it unchanged.
      const noun = 'classStudents' in body ? 'student' : 'person';
      const updated = s.updated > 0 ? ` Updated: ${s.updated} existing ${noun}(s).` : '';
      const message = `Data received. Added: ${s.added} new ${noun}(s).${updated} Skipped: ${s.skipped} duplicate(s). Failed: ${s.failed}.`;
      return { status: 'success' as const, message, summary: s, rows: result.rows };
    },
  );
};
