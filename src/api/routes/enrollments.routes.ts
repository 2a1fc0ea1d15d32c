import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../domain/errors.ts';
import { allows } from '../../services/auth.service.ts';
import type { NewPerson } from '../../store/index.ts';
import { decodeBase64Image, readMultipart, registerMultipart } from '../image-input.ts';
import type { RouteModule } from '../server.ts';
import { metadataInput } from './people.routes.ts';

/*
 * Enrollment sessions (issue 5): the circular scan over REST (seed 002) and guided multi-angle
 * capture, from uploaded frames or from a camera's stream. Access: operator (the desk or kiosk
 * that registers people); overriding the duplicate check needs admin.
 */

const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'application/octet-stream'];

const personBody = z.strictObject({
  externalId: z.string().trim().min(1).max(200).nullable().optional(),
  name: z.string().trim().min(1).max(200),
  email: z.string().trim().max(320).nullable().optional(),
  department: z.string().trim().max(200).nullable().optional(),
  type: z.string().trim().max(100).nullable().optional(),
  metadata: metadataInput.optional(),
});

const startBody = z.strictObject({
  mode: z.enum(['scan', 'guided']).default('scan').describe('scan: circular scan, frames as fast as the client sends them; guided: multi-angle capture'),
  person: personBody.optional().describe('the new person; or give personId, or seed 002’s flat fields'),
  personId: z.string().min(1).max(100).optional().describe('add templates to this existing person instead'),
  employee_code: z.string().trim().min(1).max(200).optional().describe('seed 002: the external id'),
  full_name: z.string().trim().min(1).max(200).optional().describe('seed 002: the name'),
  email: z.string().trim().max(320).optional().describe('seed 002'),
  department: z.string().trim().max(200).optional().describe('seed 002'),
  cameraId: z.string().trim().min(1).max(100).optional().describe('take the frames from this camera (guided capture from a stream)'),
  camera_id: z.string().trim().min(1).max(100).optional(),
  trackId: z.string().trim().min(1).max(100).optional().describe('with a camera: the track to enroll; default the only face in view'),
  track_id: z.string().trim().min(1).max(100).optional(),
  allowDuplicate: z.boolean().optional().describe('admin only: save even when the face matches someone else'),
});

const poseSchema = z.object({ label: z.string().nullable(), yawDeg: z.number().nullable(), pitchDeg: z.number().nullable(), rollDeg: z.number().nullable() });

const coverageSchema = z.object({
  bins: z.array(z.object({ yawDeg: z.tuple([z.number(), z.number()]), pitchDeg: z.tuple([z.number(), z.number()]), kept: z.number(), bestQuality: z.number().nullable() })),
  coveredBins: z.number(),
  totalBins: z.number(),
  coverage: z.number().describe('percent of bins holding a frame'),
});

export const enrollmentSchema = z.object({
  id: z.string(),
  mode: z.enum(['scan', 'guided']),
  status: z.enum(['capturing', 'saving', 'complete', 'failed', 'cancelled']),
  cameraId: z.string().nullable(),
  trackId: z.string().nullable(),
  personId: z.string().nullable().describe('the existing person, or the one created at completion'),
  name: z.string().nullable(),
  progress: z.number().describe('percent: guided = frames captured of all asked for; scan = grid coverage'),
  framesReceived: z.number(),
  framesUsed: z.number(),
  guidance: z
    .object({
      angle_name: z.string(),
      instruction: z.string(),
      angle_number: z.number(),
      total_angles: z.number(),
      progress: z.number(),
      pose_error: z.object({ yaw: z.number(), pitch: z.number() }).nullable().describe('current pose minus the target, degrees'),
      problem: z.string().describe('no_face, several_faces, low_quality, off_pose, moving, holding, not_live, ready'),
      angles_done: z.array(z.string()),
    })
    .nullable(),
  coverage: coverageSchema.nullable(),
  templates: z.array(z.object({ id: z.string(), pose: poseSchema, quality: z.number().nullable() })),
  failure: z
    .object({
      reason: z.string().describe('timeout, cancelled, left_area, person_changed, inconsistent, duplicate, planar_spoof, no_usable_frames, duplicate_external_id …'),
      message: z.string(),
      duplicateOf: z.string().optional().describe('reason duplicate: the person the face already belongs to'),
      similarity: z.number().optional(),
    })
    .nullable(),
  computeMs: z.number().describe('server time spent on this enrollment (detection, embedding, saving)'),
  createdAt: z.number(),
  updatedAt: z.number(),
  expiresAt: z.number().describe('when it times out (under way) or is forgotten (finished), epoch ms'),
});

const frameResultSchema = z.object({
  session: enrollmentSchema,
  frame: z.object({
    faces: z.number().describe('usable faces in the frame'),
    accepted: z.boolean().describe('scan: kept among its bin’s best; guided: captured'),
    problem: z.string().nullable(),
    pose: z.object({ yaw: z.number(), pitch: z.number() }).nullable(),
    quality: z.number().nullable(),
  }),
});

const frameJsonBody = z
  .strictObject({
    frame_data: z.string().min(1).optional().describe('seed 002: base64 JPEG'),
    image: z.string().min(1).optional().describe('base64 JPEG'),
    frame_number: z.number().optional().describe('seed 002, ignored'),
    timestamp: z.number().optional().describe('seed 002, ignored'),
  })
  .refine((b) => (b.frame_data === undefined) !== (b.image === undefined), 'give frame_data or image (base64)');

const idParams = z.strictObject({ id: z.string().min(1).max(100) });

export const enrollmentsRoutes: RouteModule = (root, { config, services }) => {
  root.register(async (plugin) => {
    await registerMultipart(plugin, config.vision.image.maxBytes);
    // A frame may come as the raw image body too.
    plugin.addContentTypeParser(IMAGE_TYPES, { parseAs: 'buffer', bodyLimit: config.vision.image.maxBytes }, (_request, body, done) => done(null, body));
    const app = plugin.withTypeProvider<ZodTypeProvider>();
    const { enrollments } = services;

    app.post(
      '/api/v1/enrollments',
      {
        config: { access: 'operator' },
        schema: {
          tags: ['enrollments'],
          summary: 'Start an enrollment (circular scan or guided capture)',
          description:
            'Person data as {"person": {name, externalId?, email?, department?…}} or seed 002’s {"employee_code", "full_name", "email", "department"}, ' +
            'or {"personId"} to add templates to an existing person. mode "scan" (default) or "guided". With cameraId the frames come from that ' +
            'camera’s stream and the progress goes out as registration_* events; without it, POST frames to /frames. One enrollment per camera (409 enrollment_running).',
          body: startBody,
          response: { 201: enrollmentSchema },
        },
      },
      async (request, reply) => {
        const body = request.body;
        if (body.allowDuplicate === true && !allows(request.principal, 'admin')) {
          throw new AppError('forbidden', 403, 'overriding the duplicate check (allowDuplicate) needs the admin scope');
        }
        const flat = body.employee_code !== undefined || body.full_name !== undefined || body.email !== undefined || body.department !== undefined;
        const given = [body.person !== undefined, body.personId !== undefined, flat].filter(Boolean).length;
        if (given !== 1) throw new AppError('validation_failed', 400, 'give exactly one of person, personId, or the fields employee_code/full_name/email/department');
        let person: NewPerson | undefined;
        if (body.person) person = body.person;
        else if (flat) {
          const name = body.full_name ?? body.employee_code;
          if (!name) throw new AppError('validation_failed', 400, 'give full_name (or at least employee_code)');
          person = { name, externalId: body.employee_code ?? null, email: body.email ?? null, department: body.department ?? null, type: 'employee' };
        }
        const pick = (a: string | undefined, b: string | undefined, field: string): string | undefined => {
          if (a !== undefined && b !== undefined && a !== b) throw new AppError('validation_failed', 400, `${field} and its snake_case twin disagree; give one`);
          return a ?? b;
        };
        const cameraId = pick(body.cameraId, body.camera_id, 'cameraId');
        const trackId = pick(body.trackId, body.track_id, 'trackId');
        const session = await enrollments.start({
          mode: body.mode,
          ...(person ? { person } : {}),
          ...(body.personId ? { personId: body.personId } : {}),
          ...(cameraId ? { cameraId } : {}),
          ...(trackId ? { trackId } : {}),
          allowDuplicate: body.allowDuplicate === true,
        });
        return reply.code(201).send(session);
      },
    );

    app.post(
      '/api/v1/enrollments/:id/frames',
      {
        config: { access: 'operator' },
        schema: {
          tags: ['enrollments'],
          summary: 'Send one frame; answers with the live coverage (scan) or guidance (guided)',
          description:
            'The frame as a raw image body (image/jpeg, image/png, image/webp), a multipart file "image", or JSON {"frame_data": base64} (seed 002) / {"image": base64}. ' +
            'Scan frames are only detected; the best per pose bin are kept and embedded at /complete. A guided enrollment saves itself when its last angle is captured.',
          consumes: ['application/json', 'multipart/form-data', ...IMAGE_TYPES],
          params: idParams,
          body: z.union([frameJsonBody, z.instanceof(Buffer)]).nullish(),
          response: { 200: frameResultSchema },
        },
      },
      async (request) => {
        let bytes: Uint8Array;
        const body = request.body;
        if (request.isMultipart()) {
          const { files } = await readMultipart(request, { files: ['image', 'frame'], fields: ['frame_number', 'timestamp'] });
          if (files.length !== 1) throw new AppError('validation_failed', 400, 'send one frame per request');
          bytes = files[0]!.bytes;
        } else if (Buffer.isBuffer(body)) {
          if (body.length === 0) throw new AppError('no_image', 400, 'the body is empty');
          bytes = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
        } else if (body) {
          bytes = decodeBase64Image((body.frame_data ?? body.image)!, body.frame_data !== undefined ? 'frame_data' : 'image');
        } else {
          throw new AppError('no_image', 400, 'send the frame as an image body, a multipart file or JSON base64');
        }
        return enrollments.addFrame(request.params.id, bytes);
      },
    );

    app.post(
      '/api/v1/enrollments/:id/complete',
      {
        config: { access: 'operator' },
        schema: {
          tags: ['enrollments'],
          summary: 'Finish a scan: embed its best frames, check they are one person, refuse duplicates, save the person and templates in one unit',
          description:
            '200 with status "complete" (personId, templates) or "failed" (failure.reason: inconsistent, duplicate with duplicateOf, …; nothing saved). ' +
            '409 insufficient_coverage when too few pose bins hold a frame (the scan goes on). A guided enrollment completes by itself (409 enrollment_incomplete before).',
          params: idParams,
          response: { 200: enrollmentSchema },
        },
      },
      async (request) => enrollments.complete(request.params.id),
    );

    app.get(
      '/api/v1/enrollments/:id',
      {
        config: { access: 'operator' },
        schema: { tags: ['enrollments'], summary: 'An enrollment’s state and progress', params: idParams, response: { 200: enrollmentSchema } },
      },
      async (request) => enrollments.get(request.params.id),
    );

    app.get(
      '/api/v1/enrollments',
      {
        config: { access: 'operator' },
        schema: {
          tags: ['enrollments'],
          summary: 'Enrollments under way and recently finished, newest first',
          response: { 200: z.object({ items: z.array(enrollmentSchema) }) },
        },
      },
      async () => ({ items: enrollments.list() }),
    );

    app.delete(
      '/api/v1/enrollments/:id',
      {
        config: { access: 'operator' },
        schema: { tags: ['enrollments'], summary: 'Cancel an enrollment under way (nothing is saved)', params: idParams, response: { 200: enrollmentSchema } },
      },
      async (request) => enrollments.cancel(request.params.id),
    );
  });
};
