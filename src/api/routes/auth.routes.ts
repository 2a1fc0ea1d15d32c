import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { USER_ROLES } from '../../store/index.ts';
import type { SignIn } from '../../services/users.service.ts';
import { CSRF_HEADER, SESSION_COOKIE } from '../auth.ts';
import type { RouteModule } from '../server.ts';

/*
 * Web UI sign-in. POST /api/v1/auth/login with a user name and password (admins, operators) or
 * with an API key (a kiosk's device key; the first-start admin key) sets an HttpOnly,
 * SameSite=Strict session cookie (Secure behind TLS) and answers the CSRF token that
 * cookie-authenticated requests which change something must send in X-CSRF-Token.
 */

const sessionSchema = z.object({
  signedIn: z.boolean(),
  name: z.string().nullable().describe('user name, or the key name for a key session'),
  level: z.enum(['public', 'device', 'operator', 'admin']),
  via: z.enum(['password', 'key', 'none']),
  csrfToken: z.string().nullable().describe(`send as ${CSRF_HEADER} on POST/PUT/PATCH/DELETE`),
  expiresAt: z.number().nullable(),
});

const loginBody = z.union([
  z.strictObject({ username: z.string().trim().min(1).max(64), password: z.string().min(1).max(1024) }),
  z.strictObject({ key: z.string().trim().min(1).max(200) }),
]);

const userSchema = z.object({
  id: z.string(),
  name: z.string(),
  role: z.enum(USER_ROLES),
  createdAt: z.number(),
  lastLoginAt: z.number().nullable(),
  lockedUntil: z.number().nullable(),
});

function isTls(request: FastifyRequest): boolean {
  return request.protocol === 'https';
}

function setSessionCookie(request: FastifyRequest, reply: FastifyReply, signIn: SignIn): void {
  reply.setCookie(SESSION_COOKIE, signIn.token, {
    path: '/',
    httpOnly: true,
    sameSite: 'strict',
    secure: isTls(request),
    expires: new Date(signIn.expiresAt),
  });
}

export const authRoutes: RouteModule = (app, { services }) => {
  const { users } = services;

  app.post(
    '/api/v1/auth/login',
    {
      config: { access: 'public' },
      schema: {
        tags: ['auth'],
        summary: 'Sign in to the web UI (user + password, or an API key); sets the session cookie',
        description: 'Repeated failures lock the user (and the client address) out for ui.lockoutMinutes: 429 locked_out.',
        body: loginBody,
        response: { 200: sessionSchema },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const signIn = 'key' in body ? await users.signInWithKey(body.key, request.ip) : await users.signInWithPassword(body.username, body.password, request.ip);
      setSessionCookie(request, reply, signIn);
      return {
        signedIn: true,
        name: signIn.principal.keyName,
        level: signIn.principal.level,
        via: 'key' in body ? ('key' as const) : ('password' as const),
        csrfToken: signIn.csrfToken,
        expiresAt: signIn.expiresAt,
      };
    },
  );

  app.get(
    '/api/v1/auth/session',
    {
      config: { access: 'public' },
      schema: { tags: ['auth'], summary: 'Who this browser is signed in as, and its CSRF token', response: { 200: sessionSchema } },
    },
    async (request) => {
      const token = request.sessionToken;
      const session = token ? await users.principalForSession(token) : undefined;
      if (!session) return { signedIn: false, name: null, level: 'public' as const, via: 'none' as const, csrfToken: null, expiresAt: null };
      return {
        signedIn: true,
        name: session.principal.keyName,
        level: session.principal.level,
        via: session.principal.userId ? ('password' as const) : ('key' as const),
        csrfToken: session.csrfToken,
        expiresAt: session.expiresAt,
      };
    },
  );

  app.post(
    '/api/v1/auth/logout',
    { config: { access: 'device' }, schema: { tags: ['auth'], summary: 'End this browser session and clear its cookie' } },
    async (request, reply) => {
      if (request.sessionToken) await users.signOut(request.sessionToken);
      reply.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'strict', secure: isTls(request) });
      return reply.code(204).send();
    },
  );

  app.get(
    '/api/v1/users',
    { config: { access: 'admin' }, schema: { tags: ['auth'], summary: 'Web UI users (never their password hashes)', response: { 200: z.object({ items: z.array(userSchema) }) } } },
    async () => ({ items: await users.listUsers() }),
  );

  app.post(
    '/api/v1/users',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['auth'],
        summary: 'Create a web UI user',
        body: z.strictObject({ name: z.string().trim().min(1).max(64), role: z.enum(USER_ROLES), password: z.string().min(1).max(1024) }),
        response: { 201: userSchema },
      },
    },
    async (request, reply) => reply.code(201).send(await users.createUser(request.body.name, request.body.role, request.body.password)),
  );

  app.put(
    '/api/v1/users/:id/password',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['auth'],
        summary: 'Set a user’s password (also lifts a lockout)',
        params: z.strictObject({ id: z.string().min(1).max(100) }),
        body: z.strictObject({ password: z.string().min(1).max(1024) }),
      },
    },
    async (request, reply) => {
      await users.setPassword(request.params.id, request.body.password);
      return reply.code(204).send();
    },
  );

  app.delete(
    '/api/v1/users/:id',
    { config: { access: 'admin' }, schema: { tags: ['auth'], summary: 'Delete a user and end their sessions', params: z.strictObject({ id: z.string().min(1).max(100) }) } },
    async (request, reply) => {
      await users.deleteUser(request.params.id);
      return reply.code(204).send();
    },
  );
};
