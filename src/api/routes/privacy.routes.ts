import { z } from 'zod';
import type { RouteModule } from '../server.ts';

export const privacyRoutes: RouteModule = (app, { services }) => {
  app.get(
    '/api/v1/people/:id/export',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['people', 'privacy'],
        summary: 'Everything stored about a person (subject access): record, face embeddings and thumbnails (base64), recognition log, audit entries',
        params: z.strictObject({ id: z.string().max(100) }),
      },
    },
    async (request, reply) => {
      const data = await services.privacy.exportPerson(request.params.id);
      void reply.header('content-disposition', `attachment; filename="person-${request.params.id.replace(/[^A-Za-z0-9_-]/g, '')}.json"`);
      return reply.type('application/json').send(JSON.stringify(data));
    },
  );
};
