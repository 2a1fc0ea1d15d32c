import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../domain/errors.ts';

/** RFC 9457 problem details, the body of every error answer. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  [extra: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export function sendProblem(reply: FastifyReply, status: number, code: string, detail: string, extra: Record<string, unknown> = {}): FastifyReply {
  const problem: Problem = { type: `urn:facegate:problem:${code}`, title: TITLES[status] ?? 'Error', status, code, detail, ...extra };
  return reply.code(status).type('application/problem+json').send(problem);
}

/**
 * The one error mapper: AppErrors keep their code and safe message; Fastify's own client errors
 * (bad JSON, body too large, validation) keep their status with a stable code; anything else is
 * logged and answered with a generic 500 that echoes nothing internal.
 */
export function installErrorHandling(app: FastifyInstance): void {
  const refusals: StorageRefusal[] = [];
  storageRefusals.set(app, refusals);
  // A change that went through after a refusal means the database takes writes again.
  app.addHook('onResponse', async (request, reply) => {
    if (refusals.length > 0 && request.method !== 'GET' && request.method !== 'HEAD' && reply.statusCode < 300) refusals.length = 0;
  });
  app.setErrorHandler((err: FastifyError | AppError | Error, request, reply) => {
    if (err instanceof AppError) {
      if (err.status >= 500) request.log.warn({ code: err.code }, err.message);
      return sendProblem(reply, err.status, err.code, err.message, err.details);
    }
    const fe = err as FastifyError;
    if (fe.validation) return sendProblem(reply, 400, 'validation_failed', fe.message);
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      const code = (fe.code ?? 'bad_request').replace(/^FST_ERR_/, '').toLowerCase();
      return sendProblem(reply, fe.statusCode, code, fe.message);
    }
    const storage = storageProblem(err);
    if (storage) {
      request.log.error({ code: storage.code, cause: (err as { code?: unknown }).code }, storage.detail);
      refusals[0] = { code: storage.code, atMs: Date.now() };
      return sendProblem(reply, 503, storage.code, storage.detail);
    }
    request.log.error({ err }, 'unhandled error');
    return sendProblem(reply, 500, 'internal_error', 'an internal error occurred; it has been logged');
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, 404, 'not_found', `no route for ${request.method} ${request.url.split('?')[0]}`),
  );
}

/**
 * Errors Fastify's router answers before any route, hook or error handler runs: a malformed
 * %-escape in the path (400) and a path parameter longer than maxParamLength (414). Given as the
 * server's `frameworkErrors` option, they are problem+json too instead of Fastify's own JSON.
 */
export function frameworkErrorProblem(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err.code === 'FST_ERR_BAD_URL') return sendProblem(reply, 400, 'bad_url', 'the URL path is not valid (a malformed %-escape)');
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') return sendProblem(reply, 414, 'max_param_length', 'a path parameter is too long');
  reply.log.error({ err }, 'unhandled framework error');
  return sendProblem(reply, 500, 'internal_error', 'an internal error occurred; it has been logged');
}

/** The last write the database refused (a 503 storage_* answer), for the health check. */
export interface StorageRefusal {
  code: string;
  atMs: number;
}

const storageRefusals = new WeakMap<FastifyInstance, StorageRefusal[]>();

/** The last storage refusal answered by this server, if any. */
export function lastStorageRefusal(app: FastifyInstance): StorageRefusal | undefined {
  return storageRefusals.get(app)?.[0];
}

const CONNECTION_LOST = { code: 'storage_unavailable', detail: 'the connection to the database was lost: nothing was saved; retry' };

/**
 * The database refusing writes is the operator's problem to fix, not a bug: a disk that is full or
 * read-only gets a 503 with a code that says which, and requests succeed again once it is fixed.
 * (SQLite's result codes; PostgreSQL's SQLSTATE 53100 disk_full and 25006 read_only_sql_transaction.)
 */
function storageProblem(err: unknown): { code: string; detail: string } | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  // A PostgreSQL connection ended under a query (a failover, a restart, pg_terminate_backend): pg
  // gives no code for the socket closing; the pool replaces the connection for the next request.
  if (code === undefined && err instanceof Error && /^Connection terminated( unexpectedly)?$/.test(err.message)) return CONNECTION_LOST;
  if (typeof code !== 'string') return undefined;
  // SQLSTATE class 08 (connection exception) and 57P01-57P03 (the server shutting down or starting).
  if (/^(08...|57P0[123])$/.test(code)) return CONNECTION_LOST;
  if (code === 'SQLITE_FULL' || code === '53100') return { code: 'storage_full', detail: 'the database disk is full: nothing was saved; free space and retry' };
  if (code.startsWith('SQLITE_READONLY') || code === '25006') return { code: 'storage_read_only', detail: 'the database is read-only: nothing was saved; make it writable and retry' };
  if (code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_CANTOPEN')) return { code: 'storage_unavailable', detail: 'the database could not be written: nothing was saved; check its disk and retry' };
  return undefined;
}
