import fastifyCookie from '@fastify/cookie';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type RawReplyDefaultExpression, type RawRequestDefaultExpression, type RawServerDefault } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Config } from '../config/config.ts';
import type { EventsRuntime } from '../events/events-runtime.ts';
import type { AttendanceService } from '../services/attendance.service.ts';
import type { AuthService } from '../services/auth.service.ts';
import type { CameraPipeline } from '../services/camera-pipeline.service.ts';
import type { CamerasService } from '../services/cameras.service.ts';
import type { ClassifierService } from '../services/classifier.service.ts';
import type { EnrollmentService } from '../services/enrollment.service.ts';
import type { GalleryService } from '../services/gallery.service.ts';
import type { ImportService } from '../services/import.service.ts';
import type { PeopleService } from '../services/people.service.ts';
import type { RecognitionService } from '../services/recognition.service.ts';
import type { SessionsService } from '../services/sessions.service.ts';
import type { UsersService } from '../services/users.service.ts';
import type { VisionPool } from '../vision/vision-pool.ts';
import { installAuth, maskKeyInUrl } from './auth.ts';
import { authRoutes } from './routes/auth.routes.ts';
import { liveRoutes } from './routes/live.routes.ts';
import { frameworkErrorProblem, installErrorHandling } from './problem.ts';
import { attendanceRoutes } from './routes/attendance.routes.ts';
import { installHardening, prepareHardening } from './hardening.ts';
import { installAudit } from './audit.ts';
import { auditRoutes } from './routes/audit.routes.ts';
import { privacyRoutes } from './routes/privacy.routes.ts';
import type { PrivacyService } from '../services/privacy.service.ts';
import type { AuditService } from '../services/audit.service.ts';
import { cameraRoutes } from './routes/cameras.routes.ts';
import { clusterRoutes, type ClusterStatusSource } from './routes/cluster.routes.ts';
import { classifierRoutes } from './routes/classifier.routes.ts';
import { enrollmentsRoutes } from './routes/enrollments.routes.ts';
import { eventsRoutes } from './routes/events.routes.ts';
import { importRoutes } from './routes/import.routes.ts';
import { keyRoutes } from './routes/keys.routes.ts';
import { peopleRoutes } from './routes/people.routes.ts';
import { recognitionRoutes } from './routes/recognition.routes.ts';
import { sessionsRoutes } from './routes/sessions.routes.ts';
import { statusRoutes } from './routes/status.routes.ts';
import { streamRoutes } from './routes/stream.routes.ts';
import { systemRoutes, type StorageHealthSource } from './routes/system.routes.ts';
import { webRoutes } from './routes/web.routes.ts';

/** The Fastify instance routes are written against: zod schemas type requests and document responses. */
export type ApiApp = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, ZodTypeProvider>;

export interface ApiServices {
  auth: AuthService;
  gallery: GalleryService;
  people: PeopleService;
  recognition: RecognitionService;
  import: ImportService;
  classifier: ClassifierService;
  events: EventsRuntime;
  sessions: SessionsService;
  pipeline: CameraPipeline;
  cameras: CamerasService;
  enrollments: EnrollmentService;
  attendance: AttendanceService;
  audit: AuditService;
  privacy: PrivacyService;
  /** Several nodes on one PostgreSQL (issue 9); null or absent with one node. */
  cluster?: ClusterStatusSource | null;
  /** The database, as the health check sees it (issue 8); absent in tests that build no store. */
  storage?: StorageHealthSource;
  /** Web UI users and browser sessions. */
  users: UsersService;
}

export interface ServerDeps {
  config: Config;
  vision: VisionPool;
  services: ApiServices;
  version: string;
  startedAt: Date;
}

/** A group of routes; each file under routes/ exports one. */
export type RouteModule = (app: ApiApp, deps: ServerDeps) => void;

const ROUTES: RouteModule[] = [
  systemRoutes,
  keyRoutes,
  peopleRoutes,
  importRoutes,
  recognitionRoutes,
  classifierRoutes,
  sessionsRoutes,
  eventsRoutes,
  statusRoutes,
  cameraRoutes,
  streamRoutes,
  enrollmentsRoutes,
  attendanceRoutes,
  auditRoutes,
  privacyRoutes,
  clusterRoutes,
  authRoutes,
  liveRoutes,
  webRoutes,
];

/** Builds the HTTP server with every route registered; the caller listens and closes it. */
export async function buildServer(deps: ServerDeps): Promise<ApiApp> {
  const app = Fastify({
    logger: {
      level: deps.config.server.logLevel,
      redact: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]'],
      // Fastify's request serializer, with a WebSocket's ?key= masked.
      serializers: {
        req: (req: { method: string; url: string; host?: string; ip?: string; socket?: { remotePort?: number } }) => ({
          method: req.method,
          url: maskKeyInUrl(req.url),
          host: req.host,
          remoteAddress: req.ip,
          remotePort: req.socket?.remotePort,
        }),
      },
    },
    bodyLimit: deps.config.vision.image.maxBytes * 2,
    trustProxy: deps.config.security.trustProxy,
    frameworkErrors: frameworkErrorProblem,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandling(app);
  // Before any route (it hooks onRoute) and before auth: its onRequest hook must mark an upgrade
  // request before auth can answer 401, or the refused upgrade's socket is never destroyed (and
  // server.close() waits for it forever). One registration serves every WebSocket route (events, stream).
  await app.register(fastifyWebsocket, { options: { maxPayload: deps.config.vision.image.maxBytes * 2 } });
  prepareHardening(app);
  // Before auth: the session cookie is read in the auth hook.
  await app.register(fastifyCookie);
  installAuth(app, deps.services.auth, deps.services.users);
  await installHardening(app, deps.config.security);
  installAudit(app, deps.services.audit);

  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'Facegate API', version: deps.version, description: 'Face recognition and attendance server.' },
      components: {
        securitySchemes: {
          apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
          bearer: { type: 'http', scheme: 'bearer' },
        },
      },
      security: [{ apiKey: [] }, { bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  // The UI's assets ship inside @fastify/swagger-ui: /docs works offline.
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  for (const register of ROUTES) register(app, deps);
  await app.ready();
  return app;
}
