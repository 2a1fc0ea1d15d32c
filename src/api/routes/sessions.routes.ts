import { z } from 'zod';
import { AppError } from '../../domain/errors.ts';
import { MAX_ROSTER_ENTRIES } from '../../services/sessions.service.ts';
import type { RouteModule } from '../server.ts';

/*
 * Recognition sessions (seed 004): start one on a camera, stop it and get who was seen. Access:
 * operator (the backend or dashboard that runs a class or a shift).
 */

const sessionSchema = z.object({
  id: z.string(),
  cameraId: z.string(),
  label: z.string().nullable(),
  roster: z
    .array(z.object({ ref: z.string(), personId: z.string().nullable().describe('the person the entry named at start; null = nobody') }))
    .nullable()
    .describe('null = everyone recognised counts'),
  startedAt: z.number().describe('epoch ms'),
  stoppedAt: z.number().nullable().describe('epoch ms'),
  status: z.enum(['running', 'stopped']),
});

const studentSchema = z.object({
  personId: z.string(),
  externalId: z.string().nullable(),
  name: z.string(),
  firstSeen: z.number().describe('epoch ms'),
  lastSeen: z.number().describe('epoch ms'),
  bestConfidence: z.number(),
  rollNo: z.string().describe('seed 004: the external id (roll number), or the person id when there is none'),
  timestamp: z.string().describe('seed 004: first seen, ISO 8601'),
});

const reportSchema = z.object({
  session: sessionSchema,
  recognizedStudents: z.array(studentSchema).describe('everyone recognised (on the roster, when there is one), in order of first sighting'),
  notOnRoster: z.array(studentSchema).describe('people recognised who are not on the roster; empty without a roster'),
  absent: z
    .array(z.object({ ref: z.string(), personId: z.string().nullable(), externalId: z.string().nullable(), name: z.string().nullable() }))
    .nullable()
    .describe('roster entries not seen; null without a roster'),
  checkIns: z
    .array(
      z.object({
        id: z.string(),
        personId: z.string(),
        externalId: z.string().nullable(),
        name: z.string(),
        day: z.string(),
        checkInAt: z.number().describe('epoch ms'),
        minutesLate: z.number(),
      }),
    )
    .describe('attendance check-ins recorded under this session (GET /api/v1/attendance/logs?sessionId=…)'),
});

const startBody = z.strictObject({
  camera_id: z.string().trim().min(1).max(100).optional(),
  cameraId: z.string().trim().min(1).max(100).optional(),
  label: z.string().trim().max(200).nullable().optional(),
  roster: z
    .array(z.string().trim().min(1).max(200))
    .max(MAX_ROSTER_ENTRIES)
    .nullable()
    .optional()
    .describe('person ids or external ids (roll numbers); absent = everyone recognised counts'),
});

const idParams = z.strictObject({ id: z.string().min(1).max(100) });

const listQuery = z.strictObject({
  cameraId: z.string().min(1).max(100).optional(),
  status: z.enum(['running', 'stopped']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  offset: z.coerce.number().int().min(0).optional(),
});

export const sessionsRoutes: RouteModule = (app, { services }) => {
  const { sessions } = services;

  app.post(
    '/api/v1/sessions',
    {
      config: { access: 'operator' },
      schema: {
        tags: ['sessions'],
        summary: 'Start a recognition session on a camera',
        description:
          'Body {camera_id (or cameraId), label?, roster?: [person ids or external ids]}. Everyone recognised on the camera ' +
          'until the stop is recorded once (first/last seen, best confidence). One running session per camera: 409 session_running.',
        body: startBody,
        response: { 201: sessionSchema },
      },
    },
    async (request, reply) => {
      const cameraId = request.body.camera_id ?? request.body.cameraId;
      if (!cameraId) throw new AppError('validation_failed', 400, 'give camera_id');
      if (request.body.camera_id && request.body.cameraId && request.body.camera_id !== request.body.cameraId) {
        throw new AppError('validation_failed', 400, 'camera_id and cameraId disagree; give one');
      }
      const session = await sessions.startSession({ cameraId, label: request.body.label ?? null, roster: request.body.roster ?? null });
      return reply.code(201).send(session);
    },
  );

  app.post(
    '/api/v1/sessions/:id/stop',
    {
      config: { access: 'operator' },
      schema: {
        tags: ['sessions'],
        summary: 'Stop a session and get who was seen (seed 004 recognizedStudents)',
        params: idParams,
        response: { 200: reportSchema },
      },
    },
    async (request) => sessions.stopSession(request.params.id),
  );

  app.get(
    '/api/v1/sessions',
    {
      config: { access: 'operator' },
      schema: {
        tags: ['sessions'],
        summary: 'Sessions, newest first',
        querystring: listQuery,
        response: { 200: z.object({ items: z.array(sessionSchema), total: z.number(), limit: z.number(), offset: z.number() }) },
      },
    },
    async (request) => sessions.list(request.query),
  );

  app.get(
    '/api/v1/sessions/:id',
    {
      config: { access: 'operator' },
      schema: {
        tags: ['sessions'],
        summary: 'A session and who was seen so far',
        params: idParams,
        response: { 200: reportSchema },
      },
    },
    async (request) => sessions.get(request.params.id),
  );
};
