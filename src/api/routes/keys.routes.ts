import { z } from 'zod';
import { API_KEY_SCOPES } from '../../store/index.ts';
import type { RouteModule } from '../server.ts';

const keySchema = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string(),
  scopes: z.array(z.enum(API_KEY_SCOPES)),
  createdAt: z.number(),
  lastUsedAt: z.number().nullable(),
  revokedAt: z.number().nullable(),
});

export const keyRoutes: RouteModule = (app, { services }) => {
  app.get(
    '/api/v1/keys',
    { config: { access: 'admin' }, schema: { tags: ['keys'], summary: 'List API keys (never their secrets)', response: { 200: z.object({ items: z.array(keySchema) }) } } },
    async () => ({ items: await services.auth.listKeys() }),
  );

  app.post(
    '/api/v1/keys',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['keys'],
        summary: 'Create an API key; the key is in this answer only',
        body: z.strictObject({ name: z.string().min(1).max(100), scopes: z.array(z.enum(API_KEY_SCOPES)).min(1) }),
        response: { 201: keySchema.extend({ key: z.string() }) },
      },
    },
    async (request, reply) => {
      const { key, record } = await services.auth.createKey(request.body.name, request.body.scopes);
      return reply.code(201).send({ ...record, key });
    },
  );

  app.delete(
    '/api/v1/keys/:id',
    { config: { access: 'admin' }, schema: { tags: ['keys'], summary: 'Revoke an API key', params: z.strictObject({ id: z.string().min(1).max(100) }) } },
    async (request, reply) => {
      await services.auth.revokeKey(request.params.id);
      return reply.code(204).send();
    },
  );
};
