import type { WebSocket } from 'ws';
import { z } from 'zod';
import { AppError } from '../../domain/errors.ts';
import type { EventFilter } from '../../events/event-bus.ts';
import {
  ALL_CAMERAS,
  CLIENT_MESSAGE_SCHEMAS,
  envelopeSchema,
  isEventName,
  type AnyFacegateEvent,
  type ErrorMessage,
  type FacegateEvent,
  type FacegateEventName,
} from '../../events/event-map.ts';
import type { EventsRuntime } from '../../events/events-runtime.ts';
import { eventsProtocolSchema, renderEventsMarkdown } from '../../events/protocol-doc.ts';
import type { EnrollmentService } from '../../services/enrollment.service.ts';
import type { RouteModule } from '../server.ts';
import { keepAlive } from '../ws-heartbeat.ts';

/*
 * Real-time events (seeds 000/001): the WebSocket every kiosk and dashboard listens on, the HTTP
 * polling fallback over the persisted ring, registration decisions (WebSocket message or HTTP) and
 * the reset. Access: device for listening and deciding (kiosks), operator for the reset. The
 * protocol document is generated from the event map (GET /api/v1/events/schema, docs/events.md).
 */

/** A socket with more than this waiting to be sent is too slow: it is closed (1013) instead of buffering without bound. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

const cameraIdPattern = z.string().trim().min(1).max(100);

const csvList = z
  .string()
  .max(2000)
  .transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x !== ''),
  );

const camerasParam = csvList
  .refine((list) => list.every((c) => c.length <= 100), 'camera ids are at most 100 characters')
  .describe('comma-separated camera ids; events about every camera ("*") always pass');

const typesParam = csvList
  .refine((list) => list.every(isEventName), { message: 'unknown event type' })
  .transform((list) => list as FacegateEventName[])
  .describe('comma-separated event types');

const eventsQuery = z.object({
  after: z.coerce.number().int().min(0).default(0).describe('polling: the cursor (id of the last event received); 0 = from the oldest kept'),
  limit: z.coerce.number().int().min(1).max(500).default(100).describe('polling: most events returned'),
  camera: camerasParam.optional(),
  types: typesParam.optional(),
  key: z.string().optional().describe('WebSocket only: the API key, for browsers that cannot set headers on a WebSocket'),
});

const pageSchema = z.object({
  events: z.array(envelopeSchema),
  cursor: z.number().int().describe('poll again with after=cursor'),
  has_more: z.boolean().describe('more events are waiting: poll again at once'),
  gap: z.boolean().describe('events between the cursor given and the oldest kept were pruned'),
});

const decisionBody = z.strictObject({
  camera_id: cameraIdPattern.optional().describe('the camera asking; may be left out when only one camera waits'),
  track_id: z.string().min(1).max(100).optional().describe('the track asked about; default the one the camera waits about'),
  register: z.boolean(),
});

const decisionSchema = z.object({
  camera_id: z.string(),
  track_id: z.string().nullable(),
  register: z.boolean(),
  event: z.enum(['registration_approved', 'registration_cancelled']),
});

// A bodiless POST reaches the validator as null.
const resetBody = z.strictObject({ camera_id: cameraIdPattern.optional().describe('absent = every camera') }).nullish();

const resetSchema = z.object({
  camera_id: z.string().describe('"*" when every camera was reset'),
  event_id: z.number().int(),
});

const schemaQuery = z.object({ format: z.enum(['json', 'markdown']).default('json') });

function filterOf(query: { camera?: string[] | undefined; types?: FacegateEventName[] | undefined }): EventFilter {
  return { ...(query.camera?.length ? { cameras: query.camera } : {}), ...(query.types?.length ? { types: query.types } : {}) };
}

function errorMessage(message: string, code: string): string {
  const body: ErrorMessage = { type: 'error', data: { message, code } };
  return JSON.stringify(body);
}

/** The first message of a socket: seed 000's `connected`, with the state of the cameras asked for. */
function connectedMessage(events: EventsRuntime, cameras: readonly string[] | undefined): FacegateEvent<'connected'> {
  const states = events.state.list(cameras);
  const only = cameras?.length === 1 ? cameras[0]! : null;
  return {
    id: events.bus.lastId,
    type: 'connected',
    camera_id: only ?? ALL_CAMERAS,
    track_id: null,
    timestamp: Date.now(),
    data: {
      message: 'Connected to Facegate',
      system_ready: true,
      current_event: only ? events.state.get(only).current_event : null,
      cameras: states,
      cursor: events.bus.lastId,
    },
  };
}

/** Acts on one client message; returns the error text to send back, or null. */
function handleClientMessage(
  events: EventsRuntime,
  raw: string,
  socketCameras: readonly string[] | undefined,
  enrollments?: Pick<EnrollmentService, 'cancelOnCamera' | 'camerasEnrolling'>,
): string | null {
  let message: unknown;
  try {
    message = JSON.parse(raw);
  } catch {
    return errorMessage('the message is not JSON', 'invalid_json');
  }
  if (typeof message !== 'object' || message === null || Array.isArray(message) || typeof (message as { type?: unknown }).type !== 'string') {
    return errorMessage('a message is a JSON object {"type": …, "data": {…}}', 'invalid_message');
  }
  const { type, data } = message as { type: string; data?: unknown };
  if (type === 'registration_cancel' && enrollments) return cancelEnrollment(enrollments, data, socketCameras);
  if (type !== 'registration_decision') {
    return errorMessage(`unknown message type "${type.slice(0, 50)}"; this socket accepts: ${Object.keys(CLIENT_MESSAGE_SCHEMAS).join(', ')}`, 'unknown_type');
  }
  const parsed = CLIENT_MESSAGE_SCHEMAS.registration_decision.safeParse(data);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.') || 'data'}: ${i.message}`).join('; ');
    return errorMessage(`invalid registration_decision: ${detail}`, 'validation_failed');
  }
  let cameraId = parsed.data.camera_id;
  if (cameraId === undefined && socketCameras && socketCameras.length > 0) {
    // A socket watching some cameras answers for one of them, never for a camera it does not see.
    const waiting = events.state.camerasWaiting().filter((c) => socketCameras.includes(c));
    if (waiting.length !== 1) {
      return waiting.length === 0
        ? errorMessage('none of the cameras of this socket is waiting for a registration decision', 'not_waiting')
        : errorMessage(`several cameras wait for a decision (${waiting.join(', ')}): say which with camera_id`, 'camera_required');
    }
    cameraId = waiting[0];
  }
  try {
    events.decisions.decide({ cameraId, trackId: parsed.data.track_id, register: parsed.data.register });
    return null;
  } catch (err) {
    if (err instanceof AppError) return errorMessage(err.message, err.code);
    throw err;
  }
}

/** The WebSocket registration_cancel message: cancels the enrollment under way on the (only) camera meant. */
function cancelEnrollment(enrollments: Pick<EnrollmentService, 'cancelOnCamera' | 'camerasEnrolling'>, data: unknown, socketCameras: readonly string[] | undefined): string | null {
  const parsed = CLIENT_MESSAGE_SCHEMAS.registration_cancel.safeParse(data ?? {});
  if (!parsed.success) return errorMessage(`invalid registration_cancel: ${parsed.error.issues.map((i) => i.message).join('; ')}`, 'validation_failed');
  let cameraId = parsed.data.camera_id;
  if (cameraId === undefined) {
    const enrolling = enrollments.camerasEnrolling().filter((c) => !socketCameras || socketCameras.length === 0 || socketCameras.includes(c));
    if (enrolling.length !== 1) {
      return enrolling.length === 0
        ? errorMessage('no camera of this socket has an enrollment under way', 'not_enrolling')
        : errorMessage(`several cameras are enrolling (${enrolling.join(', ')}): say which with camera_id`, 'camera_required');
    }
    cameraId = enrolling[0]!;
  }
  return enrollments.cancelOnCamera(cameraId) ? null : errorMessage(`camera ${cameraId} has no enrollment under way`, 'not_enrolling');
}

export const eventsRoutes: RouteModule = (app, deps) => {
  const events = deps.services.events;

  // One JSON text per event, however many sockets it goes to (dispatch is synchronous, so the last one is enough).
  let lastSerialized: { event: AnyFacegateEvent | null; json: string } = { event: null, json: '' };
  const serialize = (event: AnyFacegateEvent): string => {
    if (lastSerialized.event !== event) lastSerialized = { event, json: JSON.stringify(event) };
    return lastSerialized.json;
  };

  const listen = (socket: WebSocket, filter: EventFilter): void => {
    socket.send(JSON.stringify(connectedMessage(events, filter.cameras)));
    const unsubscribe = events.bus.subscribe((event) => {
      if (socket.readyState !== socket.OPEN) return;
      if (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
        socket.close(1013, 'too slow: reconnect and poll GET /api/v1/events?after=<last id>');
        return;
      }
      socket.send(serialize(event));
      // Events of cameras other nodes run reach this node's clients too (several nodes, issue 9).
    }, filter, { withRelayed: true });

    keepAlive(socket);

    socket.on('message', (raw, isBinary) => {
      if (socket.readyState !== socket.OPEN) return;
      const reply = isBinary
        ? errorMessage('binary messages are not accepted here; send JSON text', 'invalid_message')
        : handleClientMessage(events, raw.toString(), filter.cameras, deps.services.enrollments);
      if (reply) socket.send(reply);
    });
    socket.on('close', () => {
      unsubscribe();
    });
  };

  app.route({
    method: 'GET',
    url: '/api/v1/events',
    config: { access: 'device' },
    schema: {
      tags: ['events'],
      summary: 'Events after a cursor (polling), or the event stream as a WebSocket',
      description:
        'As a plain GET: the events after `after`, oldest first, from the persisted ring. As a WebSocket upgrade: `connected` first, ' +
        'then every event passing the `camera`/`types` filters; the socket accepts `registration_decision` messages. Browsers may ' +
        'pass the key as `?key=` on the WebSocket. The protocol: GET /api/v1/events/schema.',
      querystring: eventsQuery,
      response: { 200: pageSchema },
    },
    handler: async (request) => {
      const q = request.query;
      const page = await events.ring.since(q.after, { limit: q.limit, cameras: q.camera, types: q.types });
      return { events: page.events, cursor: page.cursor, has_more: page.hasMore, gap: page.gap };
    },
    wsHandler: (socket, request) => {
      listen(socket, filterOf(request.query as { camera?: string[]; types?: FacegateEventName[] }));
    },
  });

  app.get(
    '/api/v1/events/schema',
    {
      config: { access: 'device' },
      schema: {
        tags: ['events'],
        summary: 'The real-time event protocol, generated from the event map',
        description: 'JSON Schema of the envelope, of every event payload and of the client messages; `?format=markdown` gives docs/events.md.',
        querystring: schemaQuery,
      },
    },
    async (request, reply) => {
      if (request.query.format === 'markdown') return reply.type('text/markdown; charset=utf-8').send(renderEventsMarkdown());
      return eventsProtocolSchema();
    },
  );

  app.post(
    '/api/v1/decisions',
    {
      config: { access: 'device' },
      schema: {
        tags: ['events'],
        summary: 'Answer "register this unknown person?" for the track a camera waits about',
        description: 'The same as the WebSocket `registration_decision` message. 409 when the camera is not waiting for a decision (about that track).',
        body: decisionBody,
        response: { 200: decisionSchema },
      },
    },
    async (request) => {
      const { camera_id, track_id, register } = request.body;
      const decision = events.decisions.decide({ cameraId: camera_id, trackId: track_id, register });
      return {
        camera_id: decision.cameraId,
        track_id: decision.trackId,
        register: decision.register,
        event: decision.register ? ('registration_approved' as const) : ('registration_cancelled' as const),
      };
    },
  );

  app.post(
    '/api/v1/system/reset',
    {
      config: { access: 'operator' },
      schema: {
        tags: ['events'],
        summary: 'Return a camera (or every camera) to system_ready',
        body: resetBody,
        response: { 200: resetSchema },
      },
    },
    async (request) => {
      const cameraId = request.body?.camera_id ?? ALL_CAMERAS;
      const event = events.bus.emit('system_ready', { camera_id: cameraId });
      return { camera_id: cameraId, event_id: event.id };
    },
  );
};
