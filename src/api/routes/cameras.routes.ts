import { z } from 'zod';
import { CAMERA_ID_PATTERN } from '../../config/config.ts';
import { CAMERA_KINDS } from '../../sources/camera-input.ts';
import { SOURCE_STATES } from '../../sources/ffmpeg-source.ts';
import type { RouteModule } from '../server.ts';

const cameraIdSchema = z.string().regex(CAMERA_ID_PATTERN, 'letters, digits, "_", "-" and "." (at most 64, starting with a letter or digit)');

const cameraSchema = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.enum(CAMERA_KINDS),
  source: z.string().nullable().describe('The URL (credentials hidden), device or file path; null for push cameras'),
  maxFps: z.number().nullable().describe('The processing rate in force, frames per second; null = no limit'),
  enabled: z.boolean().describe('ffmpeg cameras: started at boot; push cameras: accept streams'),
  loop: z.boolean(),
  origin: z.enum(['config', 'api', 'transient']),
  state: z.enum([...SOURCE_STATES, 'idle']),
  since: z.number().describe('When the state was entered, epoch ms'),
  lastError: z.string().nullable(),
  stats: z.object({
    framesIn: z.number(),
    framesDropped: z.number(),
    framesProcessed: z.number(),
    fps: z.number(),
    processingFps: z.number(),
  }),
  ffmpeg: z.object({ pid: z.number().nullable(), failures: z.number(), nextRetryAt: z.number().nullable(), stderrTail: z.array(z.string()) }).nullable(),
  stream: z
    .object({ connected: z.boolean(), connectedAt: z.number().nullable(), remoteAddress: z.string().nullable(), rateLimited: z.number(), rejected: z.number() })
    .nullable(),
  node: z
    .object({
      assigned: z.string().nullable().describe('The node it is assigned to (null = any)'),
      runningOn: z.string().nullable().describe('The node holding its lease now (ffmpeg cameras with several nodes; null = none or one node)'),
    })
    .describe('Several nodes on one PostgreSQL: where the camera runs'),
});

const createBody = z.strictObject({
  id: cameraIdSchema.optional().describe('Default: made from the name'),
  name: z.string().trim().min(1).max(200),
  kind: z.enum(CAMERA_KINDS),
  url: z.string().max(2000).optional().describe('rtsp: rtsp:// or rtsps://; mjpeg: http:// or https://'),
  device: z.string().max(100).optional().describe('v4l2: /dev/videoN'),
  path: z.string().max(1000).optional().describe('file: a video under sources.allowedFileRoots (relative paths are taken under the first root)'),
  maxFps: z.number().min(0.1).max(240).optional().describe('Default: realtime.defaultMaxFps'),
  autoStart: z.boolean().optional().describe('Start now and at every boot (default true)'),
  loop: z.boolean().optional().describe('file: start over at the end'),
  node: z.string().trim().min(1).max(200).nullable().optional().describe('Several nodes: the cluster.nodeId that runs it (default: any node)'),
});

const idParams = z.strictObject({ id: cameraIdSchema });

export const cameraRoutes: RouteModule = (app, { services }) => {
  const cameras = services.cameras;

  app.get(
    '/api/v1/cameras',
    { config: { access: 'operator' }, schema: { tags: ['cameras'], summary: 'Cameras with their state and frame counters', response: { 200: z.object({ items: z.array(cameraSchema) }) } } },
    async () => ({ items: cameras.list() }),
  );

  app.post(
    '/api/v1/cameras',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['cameras'],
        summary: 'Define a camera: rtsp, mjpeg (HTTP), v4l2, file (read by ffmpeg) or push (streamed by a client over WebSocket /api/v1/stream)',
        body: createBody,
        response: { 201: cameraSchema },
      },
    },
    async (request, reply) => reply.code(201).send(await cameras.create(request.body)),
  );

  app.get(
    '/api/v1/cameras/:id',
    { config: { access: 'operator' }, schema: { tags: ['cameras'], summary: 'One camera', params: idParams, response: { 200: cameraSchema } } },
    async (request) => cameras.get(request.params.id),
  );

  app.delete(
    '/api/v1/cameras/:id',
    {
      config: { access: 'admin' },
      schema: { tags: ['cameras'], summary: 'Stop and delete a camera (409 for cameras defined in the configuration)', params: idParams },
    },
    async (request, reply) => {
      await cameras.remove(request.params.id);
      return reply.code(204).send();
    },
  );

  app.post(
    '/api/v1/cameras/:id/start',
    {
      config: { access: 'operator' },
      schema: {
        tags: ['cameras'],
        summary: 'Start a camera (it stays enabled across restarts); a push camera accepts streams again',
        params: idParams,
        response: { 200: cameraSchema },
      },
    },
    async (request) => cameras.startCamera(request.params.id),
  );

  app.post(
    '/api/v1/cameras/:id/stop',
    {
      config: { access: 'operator' },
      schema: {
        tags: ['cameras'],
        summary: 'Stop a camera (it stays stopped across restarts); a push camera ends its stream and refuses new ones',
        params: idParams,
        response: { 200: cameraSchema },
      },
    },
    async (request) => cameras.stopCamera(request.params.id),
  );

  app.put(
    '/api/v1/cameras/:id/node',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['cameras'],
        summary: 'Assign a camera to a node (several nodes on one PostgreSQL); null = any node. Its lease moves within a renewal period',
        params: idParams,
        body: z.strictObject({ node: z.string().trim().min(1).max(200).nullable() }),
        response: { 200: cameraSchema },
      },
    },
    async (request) => cameras.assignNode(request.params.id, request.body.node),
  );
};
