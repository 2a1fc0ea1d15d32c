import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
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
 * The database refusing writes is the operator's problem to fix, not a bug: a disk that is full or
 * read-only gets a 503 with a code that says which, and requests succeed again once it is fixed.
 * (SQLite's result codes; PostgreSQL's SQLSTATE 53100 disk_full and 25006 read_only_sql_transaction.)
 */
function storageProblem(err: unknown): { code: string; detail: string } | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return undefined;
  if (code === 'SQLITE_FULL' || code === '53100') return { code: 'storage_full', detail: 'the database disk is full: nothing was saved; free space and retry' };
  if (code.startsWith('SQLITE_READONLY') || code === '25006') return { code: 'storage_read_only', detail: 'the database is read-only: nothing was saved; make it writable and retry' };
  if (code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_CANTOPEN')) return { code: 'storage_unavailable', detail: 'the database could not be written: nothing was saved; check its disk and retry' };
  return undefined;
}
