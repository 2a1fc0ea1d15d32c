import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../domain/errors.ts';
import type { VerifyProbe } from '../../services/recognition.service.ts';
import { decodeBase64Image, readMultipart, registerMultipart } from '../image-input.ts';
import type { RouteModule } from '../server.ts';

/*
 * Recognition: who is in this image (1:N), is this the same person (1:1), the recognition log
 * and the gallery's state. Access: recognize and verify are for devices (kiosks, cameras); the
 * log and the gallery status are for operators.
 */

const faceSummaryFields = {
  box: z.object({ x: z.number(), y: z.number(), width: z.number(), height: z.number() }),
  pose: z.object({ yawDeg: z.number(), pitchDeg: z.number(), rollDeg: z.number() }),
  quality: z.object({ score: z.number(), pass: z.boolean(), reasons: z.array(z.string()).describe('why the face failed quality, when it did') }),
  liveness: z.number().nullable().describe('0..1, 1 = live'),
};
const faceSummarySchema = z.object(faceSummaryFields);

const personSummarySchema = z.object({ id: z.string(), name: z.string(), externalId: z.string().nullable(), active: z.boolean() });

const recognizedFaceSchema = z.object({
  ...faceSummaryFields,
  decision: z.enum(['match', 'unknown']),
  reason: z.enum(['no_face', 'low_quality', 'below_threshold', 'ambiguous', 'spoof_suspected']).nullable(),
  person: personSummarySchema.nullable(),
  similarity: z.number().nullable().describe('the best person’s score'),
  margin: z.number().nullable().describe('the best person’s lead over the runner-up'),
});

const recognizeResponse = z.object({
  width: z.number(),
  height: z.number(),
  modelId: z.string(),
  scorer: z.string(),
  faces: z.array(recognizedFaceSchema),
  reason: z.enum(['no_face']).nullable(),
});

const verifyResponse = z.object({
  same: z.boolean().nullable(),
  similarity: z.number().nullable(),
  threshold: z.number(),
  modelId: z.string(),
  reason: z.enum(['no_face', 'no_templates']).nullable(),
  detail: z.string().nullable(),
  faces: z.object({ a: faceSummarySchema.nullable(), b: faceSummarySchema.nullable() }),
  person: personSummarySchema.nullable(),
  templateId: z.string().nullable(),
});

const base64Image = z.string().min(1).describe('base64 image bytes (JPEG, PNG or WebP); a data: URL prefix is accepted');
const cameraId = z.string().trim().min(1).max(100);

const recognizeBody = z
  .strictObject({ image: base64Image, cameraId: cameraId.optional(), trackId: z.string().max(100).optional() })
  // A multipart body reaches the validator as null and is read in the handler.
  .nullish();

const multipartRecognizeFields = z.strictObject({ cameraId: cameraId.optional(), trackId: z.string().max(100).optional() });

const verifyBody = z
  .strictObject({ a: base64Image.optional(), b: base64Image.optional(), image: base64Image.optional(), personId: z.string().max(100).optional() })
  .refine((v) => (v.a !== undefined && v.b !== undefined && v.image === undefined && v.personId === undefined) || (v.image !== undefined && v.personId !== undefined && v.a === undefined && v.b === undefined), 'give either a and b, or image and personId')
  // A multipart body reaches the validator as null and is read in the handler.
  .nullish();

const logEntrySchema = z.object({
  id: z.number(),
  at: z.number().describe('epoch ms'),
  cameraId: z.string(),
  trackId: z.string().nullable(),
  personId: z.string().nullable(),
  modelId: z.string().nullable(),
  similarity: z.number().nullable(),
  margin: z.number().nullable(),
  quality: z.number().nullable(),
  liveness: z.number().nullable(),
  decision: z.string(),
  reason: z.string().nullable(),
});

const galleryStatusSchema = z.object({
  modelId: z.string(),
  size: z.number(),
  kind: z.enum(['exact', 'hnsw', 'empty']),
  startedFrom: z.enum(['saved', 'rebuilt', 'empty']).nullable(),
  rebuildReason: z.string().nullable(),
  lastCheck: z
    .object({
      at: z.number(),
      inStep: z.boolean(),
      store: z.object({ modelId: z.string(), count: z.number(), idHashXor: z.string(), latestSeq: z.number() }),
      gallery: z.object({ count: z.number(), idHashXor: z.string() }),
    })
    .nullable(),
  lastSavedAt: z.number().nullable(),
  unsaved: z.boolean(),
  otherModels: z.array(z.object({ modelId: z.string(), count: z.number() })),
  subspace: z
    .object({ rank: z.number().describe("dimensions the HNSW index stores per template"), outside: z.number().describe('templates added since it was learnt that lie outside it') })
    .nullable()
    .describe('the subspace the HNSW index stores coordinates in; null: whole vectors (exact index, or not low-rank)'),
  hnswExpansionSearch: z.number().nullable().describe('candidates the HNSW search keeps (gallery.hnswExpansionSearch); null: exact index'),
});

export const recognitionRoutes: RouteModule = (root, { config, services }) => {
  root.register(async (plugin) => {
    await registerMultipart(plugin, config.vision.image.maxBytes);
    const app = plugin.withTypeProvider<ZodTypeProvider>();
    const { recognition, gallery } = services;

    app.post(
      '/api/v1/recognize',
      {
        config: { access: 'device' },
        schema: {
          tags: ['recognition'],
          summary: 'Every face in an image with box, pose, quality, liveness and who it is',
          description:
            'Multipart file "image" (optional fields cameraId, trackId) or JSON {"image": base64, "cameraId"?}. ' +
            'Each face: decision match (person, similarity, margin) or unknown with a reason ' +
            '(low_quality, spoof_suspected, below_threshold, ambiguous). No face at all: faces = [] and reason no_face. ' +
            'Every decision is written to the recognition log.',
          consumes: ['application/json', 'multipart/form-data'],
          body: recognizeBody,
          response: { 200: recognizeResponse },
        },
      },
      async (request) => {
        let image: Uint8Array;
        let fields: { cameraId?: string; trackId?: string };
        if (request.isMultipart()) {
          const input = await readMultipart(request, { files: ['image'], fields: ['cameraId', 'trackId'] });
          if (input.files.length > 1) throw new AppError('validation_failed', 400, 'send one image to recognise');
          image = input.files[0]!.bytes;
          const parsed = multipartRecognizeFields.safeParse(input.fields);
          if (!parsed.success) throw new AppError('validation_failed', 400, parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
          fields = parsed.data;
        } else {
          if (!request.body) throw new AppError('validation_failed', 400, 'send the image as a multipart file or a JSON body');
          image = decodeBase64Image(request.body.image, 'image');
          fields = request.body;
        }
        return recognition.recognize(image, { cameraId: fields.cameraId ?? `api:${request.principal?.keyName ?? 'unknown'}`, trackId: fields.trackId });
      },
    );

    app.post(
      '/api/v1/verify',
      {
        config: { access: 'device' },
        schema: {
          tags: ['recognition'],
          summary: 'Are two faces the same person? Two images, or an image and a person id',
          description:
            'Multipart files "a" and "b", or file "image" with field "personId"; or JSON {"a", "b"} / {"image", "personId"} (base64). ' +
            'Compares the largest face of each image (or against the person’s best template): same = similarity ≥ threshold. ' +
            'same is null with reason no_face or no_templates when it cannot be judged.',
          consumes: ['application/json', 'multipart/form-data'],
          body: verifyBody,
          response: { 200: verifyResponse },
        },
      },
      async (request) => {
        let a: Uint8Array;
        let b: VerifyProbe;
        if (request.isMultipart()) {
          const input = await readMultipart(request, { files: ['a', 'b', 'image'], fields: ['personId'] });
          const byField = (field: string) => input.files.filter((f) => f.field === field);
          const [fa, fb, fi] = [byField('a'), byField('b'), byField('image')];
          const personId = input.fields.personId;
          if (fa.length === 1 && fb.length === 1 && fi.length === 0 && personId === undefined) {
            a = fa[0]!.bytes;
            b = { image: fb[0]!.bytes };
          } else if (fi.length === 1 && fa.length === 0 && fb.length === 0 && personId) {
            a = fi[0]!.bytes;
            b = { personId };
          } else {
            throw new AppError('validation_failed', 400, 'send files "a" and "b", or file "image" with field "personId"');
          }
        } else {
          const body = request.body;
          if (!body) throw new AppError('validation_failed', 400, 'send the images as multipart files or a JSON body');
          if (body.personId !== undefined) {
            a = decodeBase64Image(body.image!, 'image');
            b = { personId: body.personId };
          } else {
            a = decodeBase64Image(body.a!, 'a');
            b = { image: decodeBase64Image(body.b!, 'b') };
          }
        }
        return recognition.verify(a, b);
      },
    );

    app.get(
      '/api/v1/recognition/log',
      {
        config: { access: 'operator' },
        schema: {
          tags: ['recognition'],
          summary: 'The recognition log, newest first',
          description: 'Page on with beforeId = the last id received.',
          querystring: z.strictObject({
            personId: z.string().max(100).optional(),
            cameraId: z.string().max(100).optional(),
            decision: z.enum(['match', 'unknown']).optional(),
            sinceMs: z.coerce.number().int().min(0).optional(),
            untilMs: z.coerce.number().int().min(0).optional(),
            beforeId: z.coerce.number().int().min(1).optional(),
            limit: z.coerce.number().int().min(1).max(1000).default(100),
          }),
          response: { 200: z.object({ items: z.array(logEntrySchema) }) },
        },
      },
      async (request) => ({ items: await recognition.log(request.query) }),
    );

    app.get(
      '/api/v1/gallery/status',
      {
        config: { access: 'operator' },
        schema: {
          tags: ['recognition'],
          summary: 'The face gallery: model, size, index kind, and whether it is in step with the store',
          description: '?check=true compares the index with the store now (count and checksum) and rebuilds it when they differ.',
          querystring: z.strictObject({ check: z.enum(['true', 'false']).transform((v) => v === 'true').optional() }),
          response: { 200: galleryStatusSchema },
        },
      },
      async (request) => {
        if (request.query.check) await gallery.verify();
        return gallery.status();
      },
    );

    app.post(
      '/api/v1/gallery/recall-check',
      {
        // Reads every stored embedding and costs CPU in proportion to the gallery: admins only.
        config: { access: 'admin' },
        schema: {
          tags: ['recognition'],
          summary: "How often the index's top-1 is the exact top-1 on this gallery (an estimate)",
          description:
            'Makes `samples` new views of random stored templates (each moved along the difference between two templates of another person), ' +
            'searches them in the index and by an exact scan of the store, and answers the share whose top-1 agree ' +
            '(recallAt1; a different template at the same similarity counts) and that name the same person (samePersonAt1). ' +
            'HNSW recall falls as a gallery grows: raise gallery.hnswExpansionSearch when it is too low. One check at a time (409 while one runs); ' +
            'it takes about as long as reading every embedding from the store.',
          body: z.strictObject({ samples: z.number().int().min(10).max(5000).optional().describe('new views to search (default 500)') }).nullish(),
          response: {
            200: z.object({
              modelId: z.string(),
              kind: z.enum(['exact', 'hnsw', 'empty']),
              hnswExpansionSearch: z.number().nullable(),
              size: z.number().describe('templates in the gallery when the check began'),
              samples: z.number().describe('new views searched (fewer than asked when templates were deleted meanwhile; 0 below two templates)'),
              recallAt1: z.number(),
              samePersonAt1: z.number(),
              elapsedMs: z.number(),
            }),
          },
        },
      },
      async (request) => gallery.measureRecall(request.body?.samples ?? 500),
    );
  });
};
