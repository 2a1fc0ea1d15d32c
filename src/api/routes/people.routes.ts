import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../domain/errors.ts';
import { allows } from '../../services/auth.service.ts';
import { FACE_REFUSAL_REASONS, type FaceAddResult, type FaceImageInput } from '../../services/people.service.ts';
import { TEMPLATE_SOURCES, type FaceTemplate } from '../../store/index.ts';
import { decodeBase64Image, MAX_IMAGES_PER_REQUEST, readMultipart, registerMultipart } from '../image-input.ts';
import type { RouteModule } from '../server.ts';

/*
 * People and their faces. Access: reading people and faces is for operators; creating, changing
 * and deleting people, and deleting faces, is for admins. Adding faces is for operators (the desk
 * that takes the photos), but overriding the duplicate check (?allowDuplicate=true) needs admin.
 */

const metadataSchema = z.record(z.string(), z.unknown());

/** Deepest nesting a person's metadata may have (objects and arrays; the metadata object itself is 1). */
export const MAX_METADATA_DEPTH = 32;

/** How deep a parsed JSON value nests, counted without recursion and no further than `limit` + 1. */
function jsonDepth(value: unknown, limit: number): number {
  let deepest = 0;
  const pending: Array<[unknown, number]> = [[value, 1]];
  while (pending.length > 0) {
    const [v, depth] = pending.pop()!;
    if (v === null || typeof v !== 'object') continue;
    deepest = Math.max(deepest, depth);
    if (deepest > limit) break;
    for (const child of Object.values(v)) pending.push([child, depth + 1]);
  }
  return deepest;
}

/**
 * Metadata as a request gives it. It is stored as JSON text, and JSON.stringify recurses: a body
 * nested some thousands deep (which JSON.parse reads) overflowed the stack there, a 500.
 */
export const metadataInput = metadataSchema.refine((m) => jsonDepth(m, MAX_METADATA_DEPTH) <= MAX_METADATA_DEPTH, `metadata nests at most ${MAX_METADATA_DEPTH} levels deep`);

export const personSchema = z.object({
  id: z.string(),
  externalId: z.string().nullable(),
  name: z.string(),
  email: z.string().nullable(),
  department: z.string().nullable(),
  type: z.string().nullable(),
  active: z.boolean(),
  metadata: metadataSchema,
  createdAt: z.number().describe('epoch ms'),
  updatedAt: z.number().describe('epoch ms'),
});

const personFields = {
  externalId: z.string().trim().min(1).max(200).nullable().optional().describe('employee code, roll number…; unique when set'),
  name: z.string().trim().min(1).max(200),
  email: z.string().trim().max(320).nullable().optional(),
  department: z.string().trim().max(200).nullable().optional(),
  type: z.string().trim().max(100).nullable().optional().describe('free label: employee, student, visitor…'),
  active: z.boolean().optional(),
  metadata: metadataInput.optional().describe('free JSON object'),
};

const createPersonBody = z.strictObject(personFields);
const patchPersonBody = z
  .strictObject({ ...personFields, name: personFields.name.optional() })
  .refine((patch) => Object.keys(patch).length > 0, 'give at least one field to change');

const faceSchema = z.object({
  id: z.string(),
  personId: z.string(),
  modelId: z.string(),
  pose: z.object({
    label: z.string().nullable().describe('frontal, left, right, up or down (the subject’s own left/right)'),
    yawDeg: z.number().nullable(),
    pitchDeg: z.number().nullable(),
    rollDeg: z.number().nullable(),
  }),
  quality: z.number().nullable(),
  source: z.enum(TEMPLATE_SOURCES),
  hasThumbnail: z.boolean(),
  thumbnailUrl: z.string().nullable(),
  createdAt: z.number(),
});

const faceSummarySchema = z.object({
  box: z.object({ x: z.number(), y: z.number(), width: z.number(), height: z.number() }),
  pose: z.object({ yawDeg: z.number(), pitchDeg: z.number(), rollDeg: z.number() }),
  quality: z.object({ score: z.number(), pass: z.boolean(), reasons: z.array(z.string()) }),
  liveness: z.number().nullable(),
});

const faceResultSchema = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('added'),
    face: faceSchema,
    detected: faceSummarySchema,
    overriddenDuplicateOf: z.object({ personId: z.string(), similarity: z.number() }).optional(),
  }),
  z.object({
    status: z.literal('refused'),
    reason: z.enum(FACE_REFUSAL_REASONS),
    message: z.string(),
    duplicateOf: z.string().optional().describe('reason duplicate: the person this face already belongs to'),
    similarity: z.number().optional(),
    faceCount: z.number().optional(),
    detected: faceSummarySchema.optional(),
  }),
]);

const base64Image = z.string().min(1).describe('base64 image bytes (JPEG, PNG or WebP); a data: URL prefix is accepted');
const httpUrl = z.url({ protocol: /^https?$/ }).max(2048);

const facesBody = z
  .strictObject({
    image: base64Image.optional(),
    images: z.array(base64Image).min(1).max(MAX_IMAGES_PER_REQUEST).optional(),
    url: httpUrl.optional(),
    urls: z.array(httpUrl).min(1).max(MAX_IMAGES_PER_REQUEST).optional(),
  })
  .refine((b) => [b.image, b.images, b.url, b.urls].filter((v) => v !== undefined).length === 1, 'give exactly one of image, images, url, urls')
  // A multipart body reaches the validator as null and is read in the handler.
  .nullish();

const idParams = z.strictObject({ id: z.string().max(100) });
const faceParams = z.strictObject({ id: z.string().max(100), faceId: z.string().max(100) });
const problemNote = 'Errors are application/problem+json.';

function toFace(t: FaceTemplate): z.infer<typeof faceSchema> {
  return {
    id: t.id,
    personId: t.personId,
    modelId: t.modelId,
    pose: t.pose,
    quality: t.quality,
    source: t.source,
    hasThumbnail: t.hasThumbnail,
    thumbnailUrl: t.hasThumbnail ? `/api/v1/people/${t.personId}/faces/${t.id}/thumbnail` : null,
    createdAt: t.createdAt,
  };
}

function toFaceResult(r: FaceAddResult): z.infer<typeof faceResultSchema> {
  if (r.status === 'added') {
    return { status: 'added', face: toFace(r.template), detected: r.face, ...(r.overriddenDuplicateOf ? { overriddenDuplicateOf: r.overriddenDuplicateOf } : {}) };
  }
  const { face, ...rest } = r;
  return { ...rest, ...(face ? { detected: face } : {}) };
}

export const peopleRoutes: RouteModule = (root, { config, services }) => {
  root.register(async (plugin) => {
    await registerMultipart(plugin, config.vision.image.maxBytes);
    const app = plugin.withTypeProvider<ZodTypeProvider>();
    const { people } = services;

    app.post(
      '/api/v1/people',
      {
        config: { access: 'admin' },
        schema: { tags: ['people'], summary: 'Create a person (faces are added after)', description: problemNote, body: createPersonBody, response: { 201: personSchema } },
      },
      async (request, reply) => reply.code(201).send(await people.create(request.body)),
    );

    app.get(
      '/api/v1/people',
      {
        config: { access: 'operator' },
        schema: {
          tags: ['people'],
          summary: 'List people, by name, with search and pagination',
          querystring: z.strictObject({
            search: z.string().max(200).optional().describe('words that must all appear in name, external id, email or department'),
            limit: z.coerce.number().int().min(1).max(1000).default(50),
            offset: z.coerce.number().int().min(0).default(0),
            active: z.enum(['true', 'false']).transform((v) => v === 'true').optional(),
            type: z.string().max(100).optional(),
            department: z.string().max(200).optional(),
          }),
          response: { 200: z.object({ items: z.array(personSchema), total: z.number(), limit: z.number(), offset: z.number() }) },
        },
      },
      async (request) => people.list(request.query),
    );

    app.get(
      '/api/v1/people/:id',
      {
        config: { access: 'operator' },
        schema: { tags: ['people'], summary: 'One person, with their face count', params: idParams, response: { 200: personSchema.extend({ faceCount: z.number() }) } },
      },
      async (request) => {
        const person = await people.get(request.params.id);
        const faces = await people.listFaces(person.id);
        return { ...person, faceCount: faces.length };
      },
    );

    app.patch(
      '/api/v1/people/:id',
      {
        config: { access: 'admin' },
        schema: { tags: ['people'], summary: 'Change a person’s fields (null clears one)', params: idParams, body: patchPersonBody, response: { 200: personSchema } },
      },
      async (request) => people.update(request.params.id, request.body),
    );

    app.delete(
      '/api/v1/people/:id',
      {
        config: { access: 'admin' },
        schema: { tags: ['people'], summary: 'Delete a person with every face template, thumbnail and gallery entry', params: idParams },
      },
      async (request, reply) => {
        await people.delete(request.params.id);
        return reply.code(204).send();
      },
    );

    app.post(
      '/api/v1/people/:id/faces',
      {
        config: { access: 'operator' },
        schema: {
          tags: ['people'],
          summary: 'Add face photos to a person',
          description:
            `One or more photos, each showing exactly one face: multipart files under "image" (up to ${MAX_IMAGES_PER_REQUEST}), ` +
            'or JSON {"image": base64} / {"images": [base64…]} / {"url": …} / {"urls": […]}. Each photo is answered on its own: ' +
            'added, or refused with a reason (no_face, several_faces, low_quality, duplicate with duplicateOf, invalid_image…). ' +
            'Photos are processed in order. 201 when at least one face was added, else 200. ' +
            '?allowDuplicate=true (admin only) saves a face even when it matches another person.',
          consumes: ['application/json', 'multipart/form-data'],
          params: idParams,
          querystring: z.strictObject({ allowDuplicate: z.enum(['true', 'false']).transform((v) => v === 'true').optional() }),
          body: facesBody,
          response: {
            200: z.object({ added: z.number(), refused: z.number(), results: z.array(faceResultSchema) }),
            201: z.object({ added: z.number(), refused: z.number(), results: z.array(faceResultSchema) }),
          },
        },
      },
      async (request, reply) => {
        const allowDuplicate = request.query.allowDuplicate === true;
        if (allowDuplicate && !allows(request.principal, 'admin')) {
          throw new AppError('forbidden', 403, 'overriding the duplicate check (allowDuplicate) needs the admin scope');
        }
        // 404 before reading a possibly large body.
        await people.get(request.params.id);
        let images: FaceImageInput[];
        let source: 'upload' | 'url' = 'upload';
        if (request.isMultipart()) {
          const { files } = await readMultipart(request, { files: ['image', 'images'], fields: [] });
          if (files.length > MAX_IMAGES_PER_REQUEST) throw new AppError('too_many_images', 413, `at most ${MAX_IMAGES_PER_REQUEST} images per request`);
          images = files.map((f) => ({ bytes: f.bytes }));
        } else {
          const body = request.body;
          if (!body) throw new AppError('validation_failed', 400, 'send the photos as multipart files or a JSON body');
          if (body.url !== undefined || body.urls !== undefined) {
            source = 'url';
            images = (body.urls ?? [body.url!]).map((url) => ({ url }));
          } else {
            images = (body.images ?? [body.image!]).map((text, i) => ({ bytes: decodeBase64Image(text, body.images ? `images[${i}]` : 'image') }));
          }
        }
        const results = await people.addFaces(request.params.id, images, { allowDuplicate, source });
        const added = results.filter((r) => r.status === 'added').length;
        return reply.code(added > 0 ? 201 : 200).send({ added, refused: results.length - added, results: results.map(toFaceResult) });
      },
    );

    app.get(
      '/api/v1/people/:id/faces',
      {
        config: { access: 'operator' },
        schema: { tags: ['people'], summary: 'A person’s face templates (never their embeddings)', params: idParams, response: { 200: z.object({ items: z.array(faceSchema) }) } },
      },
      async (request) => ({ items: (await people.listFaces(request.params.id)).map(toFace) }),
    );

    app.get(
      '/api/v1/people/:id/faces/:faceId',
      {
        config: { access: 'operator' },
        schema: { tags: ['people'], summary: 'One face template', params: faceParams, response: { 200: faceSchema } },
      },
      async (request) => toFace(await people.getFace(request.params.id, request.params.faceId)),
    );

    app.get(
      '/api/v1/people/:id/faces/:faceId/thumbnail',
      {
        config: { access: 'operator' },
        schema: {
          tags: ['people'],
          summary: 'The aligned 112×112 face the template was made from (JPEG); 404 when none is stored',
          params: faceParams,
          produces: ['image/jpeg'],
        },
      },
      async (request, reply) => {
        const jpeg = await people.getThumbnail(request.params.id, request.params.faceId);
        return reply.type('image/jpeg').header('cache-control', 'private, max-age=3600').send(Buffer.from(jpeg.buffer, jpeg.byteOffset, jpeg.byteLength));
      },
    );

    app.delete(
      '/api/v1/people/:id/faces/:faceId',
      {
        config: { access: 'admin' },
        schema: { tags: ['people'], summary: 'Delete one face template (and its thumbnail and gallery entry)', params: faceParams },
      },
      async (request, reply) => {
        await people.deleteFace(request.params.id, request.params.faceId);
        return reply.code(204).send();
      },
    );
  });
};
