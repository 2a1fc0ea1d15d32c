import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { frameworkErrorProblem, installErrorHandling, lastStorageRefusal } from './problem.ts';

/** Throws what the route is given, as a repository call would. */
async function answer(err: Error): Promise<{ status: number; code: string }> {
  const app = Fastify();
  installErrorHandling(app);
  app.get('/', async () => {
    throw err;
  });
  const res = await app.inject({ method: 'GET', url: '/' });
  await app.close();
  return { status: res.statusCode, code: (res.json() as { code: string }).code };
}

function withCode(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

describe('storage errors are 503 with a code naming the cause, never 500', () => {
  it.each([
    ['SQLite disk full', withCode('database or disk is full', 'SQLITE_FULL'), 'storage_full'],
    ['SQLite read-only', withCode('attempt to write a readonly database', 'SQLITE_READONLY'), 'storage_read_only'],
    ['SQLite read-only directory', withCode('attempt to write a readonly database', 'SQLITE_READONLY_DIRECTORY'), 'storage_read_only'],
    ['SQLite write error (a read-only remount)', withCode('disk I/O error', 'SQLITE_IOERR_WRITE'), 'storage_unavailable'],
    ['PostgreSQL disk full', withCode('could not extend file', '53100'), 'storage_full'],
    ['PostgreSQL read-only transaction', withCode('cannot execute INSERT in a read-only transaction', '25006'), 'storage_read_only'],
    ['PostgreSQL session ended by an administrator', withCode('terminating connection due to administrator command', '57P01'), 'storage_unavailable'],
    ['PostgreSQL connection exception', withCode('connection failure', '08006'), 'storage_unavailable'],
    ['pg socket closed under a query', new Error('Connection terminated unexpectedly'), 'storage_unavailable'],
  ])('%s', async (_name, err, code) => {
    expect(await answer(err)).toEqual({ status: 503, code });
  });

  it('anything else stays a generic 500', async () => {
    expect(await answer(new Error('Connection terminated by a bug of ours, not pg'))).toEqual({ status: 500, code: 'internal_error' });
    expect(await answer(withCode('constraint', 'SQLITE_CONSTRAINT_UNIQUE'))).toEqual({ status: 500, code: 'internal_error' });
  });

  it('remembers the last refusal for the health check until a change succeeds', async () => {
    const app = Fastify({ logger: false });
    installErrorHandling(app);
    app.post('/fail', async () => {
      throw withCode('database or disk is full', 'SQLITE_FULL');
    });
    app.post('/ok', async () => ({ ok: true }));
    app.get('/read', async () => ({ ok: true }));
    expect(lastStorageRefusal(app)).toBeUndefined();
    await app.inject({ method: 'POST', url: '/fail' });
    expect(lastStorageRefusal(app)?.code).toBe('storage_full');
    await app.inject({ method: 'GET', url: '/read' });
    expect(lastStorageRefusal(app)?.code).toBe('storage_full');
    await app.inject({ method: 'POST', url: '/ok' });
    expect(lastStorageRefusal(app)).toBeUndefined();
    await app.close();
  });
});

describe("errors of Fastify's router itself", () => {
  it.each([
    ['a malformed %-escape', '/items/%FF', 400, 'bad_url'],
    ['a path parameter over maxParamLength', `/items/${'x'.repeat(101)}`, 414, 'max_param_length'],
  ])('%s is a problem+json answer', async (_name, url, status, code) => {
    const app = Fastify({ frameworkErrors: frameworkErrorProblem });
    installErrorHandling(app);
    app.get('/items/:id', async () => ({ ok: true }));
    const res = await app.inject({ method: 'GET', url });
    await app.close();
    expect([res.statusCode, res.headers['content-type'], (res.json() as { code: string }).code]).toEqual([status, 'application/problem+json; charset=utf-8', code]);
  });
});
