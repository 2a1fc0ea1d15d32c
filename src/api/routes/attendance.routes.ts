import { Readable } from 'node:stream';
import { z } from 'zod';
import { isAttendanceDay } from '../../domain/attendance.ts';
import type { RouteModule } from '../server.ts';

/*
 * Attendance (seed 002's /api/v1/attendance/…, plus corrections and a CSV export). Reading reports
 * and correcting them is the operator's (the HR or class dashboard); a kiosk (device key) may ask
 * whether someone is checked in. Days are 'YYYY-MM-DD' in attendance.timeZone.
 */

const day = z.string().refine(isAttendanceDay, 'a day YYYY-MM-DD');
const id = z.string().min(1).max(100);

const logSchema = z.object({
  id: z.string(),
  personId: z.string(),
  name: z.string(),
  externalId: z.string().nullable(),
  department: z.string().nullable(),
  day: z.string().describe('attendance day, YYYY-MM-DD in attendance.timeZone'),
  checkInAt: z.number().describe('epoch ms'),
  checkOutAt: z.number().describe('epoch ms; the last sighting of the day'),
  checkInTime: z.string().describe('local ISO 8601 with offset'),
  checkOutTime: z.string(),
  late: z.boolean(),
  minutesLate: z.number(),
  method: z.enum(['recognition', 'manual']),
  cameraId: z.string().nullable(),
  sessionId: z.string().nullable(),
  trackId: z.string().nullable(),
  similarity: z.number().nullable(),
  margin: z.number().nullable(),
  liveness: z.number().nullable(),
  agreeingFrames: z.number().nullable(),
  hasSnapshot: z.boolean(),
  note: z.string().nullable(),
  markedBy: z.string().nullable(),
  revoked: z.boolean(),
  revokedReason: z.string().nullable(),
  revokedBy: z.string().nullable(),
  revokedAt: z.number().nullable(),
  createdAt: z.number(),
});

const pageOf = <T extends z.ZodTypeAny>(item: T) => z.object({ items: z.array(item), total: z.number(), limit: z.number(), offset: z.number() });

const dayCountsSchema = z.object({
  day: z.string(),
  workDay: z.boolean(),
  present: z.number(),
  late: z.number(),
  absent: z.number().nullable().describe('null on a day that is not a work day'),
});
const totalsSchema = z.object({ present: z.number(), late: z.number(), absent: z.number() });

const personRef = z.object({ personId: z.string(), name: z.string(), externalId: z.string().nullable(), department: z.string().nullable() });

const filterFields = {
  from: day.optional().describe('first attendance day, included'),
  to: day.optional().describe('last attendance day, included'),
  personId: id.optional(),
  department: z.string().min(1).max(200).optional(),
  cameraId: id.optional(),
  sessionId: id.optional(),
  method: z.enum(['recognition', 'manual']).optional(),
  includeRevoked: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional(),
};

const logsQuery = z.strictObject({
  ...filterFields,
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  offset: z.coerce.number().int().min(0).optional(),
});

const idParams = z.strictObject({ id });

/** Drops undefined fields (the service's filter type has no explicit undefined). */
function defined<T extends object>(value: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}

export const attendanceRoutes: RouteModule = (app, { services }) => {
  const { attendance } = services;
  const tags = ['attendance'];

  app.get(
    '/api/v1/attendance/logs',
    {
      config: { access: 'operator' },
      schema: {
        tags,
        summary: 'Check-ins, newest first (filter by days, person, department, camera, session, method; paged)',
        querystring: logsQuery,
        response: { 200: pageOf(logSchema) },
      },
    },
    async (request) => attendance.logs(defined(request.query)),
  );

  app.get(
    '/api/v1/attendance/logs/:id',
    { config: { access: 'operator' }, schema: { tags, summary: 'One check-in', params: idParams, response: { 200: logSchema } } },
    async (request) => attendance.get(request.params.id),
  );

  app.get(
    '/api/v1/attendance/logs/:id/snapshot',
    {
      config: { access: 'operator' },
      schema: { tags, summary: 'The camera frame of a check-in (JPEG), when one was kept', params: idParams },
    },
    async (request, reply) => reply.type('image/jpeg').header('cache-control', 'private, max-age=3600').send(await attendance.snapshot(request.params.id)),
  );

  app.get(
    '/api/v1/attendance/today',
    {
      config: { access: 'operator' },
      schema: {
        tags,
        summary: "Today's attendance: who is present (late flagged) and which active people are absent",
        querystring: z.strictObject({ department: z.string().min(1).max(200).optional() }),
        response: {
          200: z.object({
            day: z.string(),
            timeZone: z.string(),
            workDay: z.boolean(),
            startTime: z.string(),
            lateAfterMin: z.number(),
            counts: z.object({ expected: z.number(), present: z.number(), late: z.number(), absent: z.number() }),
            present: z.array(logSchema),
            absent: z.array(personRef),
          }),
        },
      },
    },
    async (request) => attendance.today(request.query.department),
  );

  app.get(
    '/api/v1/attendance/stats',
    {
      config: { access: 'operator' },
      schema: {
        tags,
        summary: 'Per day present / late / absent, overall and per department (default: the last 7 days)',
        querystring: z.strictObject({ from: day.optional(), to: day.optional() }),
        response: {
          200: z.object({
            from: z.string(),
            to: z.string(),
            timeZone: z.string(),
            days: z.array(dayCountsSchema),
            departments: z.array(z.object({ department: z.string().nullable(), days: z.array(dayCountsSchema), totals: totalsSchema })),
            totals: totalsSchema,
          }),
        },
      },
    },
    async (request) => attendance.stats(request.query.from, request.query.to),
  );

  const historySchema = {
    tags,
    summary: "One person's check-ins, newest first",
    params: idParams,
    querystring: z.strictObject({
      from: day.optional(),
      to: day.optional(),
      includeRevoked: filterFields.includeRevoked,
      limit: z.coerce.number().int().min(1).max(1000).optional(),
      offset: z.coerce.number().int().min(0).optional(),
    }),
    response: {
      200: pageOf(logSchema).extend({
        person: z.object({ id: z.string(), name: z.string(), externalId: z.string().nullable(), department: z.string().nullable(), active: z.boolean() }),
      }),
    },
  };
  for (const path of ['/api/v1/attendance/people/:id', '/api/v1/attendance/employee/:id']) {
    app.get(path, { config: { access: 'operator' }, schema: path.includes('employee') ? { ...historySchema, summary: 'Seed 002 name of people/{id}' } : historySchema }, async (request) =>
      attendance.personHistory(request.params.id, defined(request.query)),
    );
  }

  app.get(
    '/api/v1/attendance/check-in-status/:id',
    {
      config: { access: 'device' },
      schema: {
        tags,
        summary: 'Whether a person is checked in today',
        params: idParams,
        response: { 200: z.object({ personId: z.string(), name: z.string(), day: z.string(), checkedIn: z.boolean(), record: logSchema.nullable() }) },
      },
    },
    async (request) => attendance.checkInStatus(request.params.id),
  );

  app.get(
    '/api/v1/attendance/export.csv',
    {
      config: { access: 'operator' },
      schema: {
        tags,
        summary: 'The check-ins matching the filters as CSV, oldest first (cells are safe to open in a spreadsheet)',
        querystring: z.strictObject(filterFields),
      },
    },
    async (request, reply) => {
      const filter = defined(request.query);
      const lines = attendance.exportCsv(filter);
      // The first line is produced before the answer starts, so a bad filter is still a 400.
      const first = await lines.next();
      async function* rest() {
        if (!first.done) yield first.value;
        yield* lines;
      }
      const name = `attendance-${filter.from ?? 'start'}-${filter.to ?? 'now'}.csv`;
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="${name}"`)
        .send(Readable.from(rest()));
    },
  );

  app.post(
    '/api/v1/attendance/mark',
    {
      config: { access: 'operator' },
      schema: {
        tags,
        summary: 'Mark a person present by hand (method manual); 409 already_checked_in',
        body: z.strictObject({
          personId: id,
          at: z.iso.datetime({ offset: true }).optional().describe('check-in time, ISO 8601; default now'),
          note: z.string().trim().max(500).nullable().optional(),
        }),
        response: { 201: logSchema },
      },
    },
    async (request, reply) => {
      const { personId, at, note } = request.body;
      const record = await attendance.mark({
        personId,
        ...(at === undefined ? {} : { atMs: Date.parse(at) }),
        note: note ?? null,
        by: request.principal?.keyName ?? null,
      });
      return reply.code(201).send(record);
    },
  );

  app.post(
    '/api/v1/attendance/logs/:id/revoke',
    {
      config: { access: 'operator' },
      schema: {
        tags,
        summary: 'Revoke a wrong check-in with a reason; its face becomes "this was not X" evidence for the identity decision',
        params: idParams,
        body: z.strictObject({ reason: z.string().trim().min(1).max(500) }),
        response: { 200: logSchema },
      },
    },
    async (request) => attendance.revoke(request.params.id, request.body.reason, request.principal?.keyName ?? null),
  );
};
