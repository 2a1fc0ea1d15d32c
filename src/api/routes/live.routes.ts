import { z } from 'zod';
import { CAMERA_ID_PATTERN } from '../../config/config.ts';
import { sendProblem } from '../problem.ts';
import type { RouteModule } from '../server.ts';

/*
 * The web UI's live view: the last frame a camera processed, and the faces found in it (the same
 * `recognition_result` a stream client gets). Polled by the Live page; nothing is stored.
 */

const idParams = z.strictObject({ id: z.string().regex(CAMERA_ID_PATTERN) });

export const liveRoutes: RouteModule = (app, { services }) => {
  app.get(
    '/api/v1/cameras/:id/live',
    {
      config: { access: 'operator' },
      schema: {
        tags: ['cameras'],
        summary: 'The faces (tracks, names, boxes) in the last frame the camera processed',
        params: idParams,
        response: { 200: z.object({ cameraId: z.string(), result: z.record(z.string(), z.unknown()).nullable(), frameUrl: z.string().nullable() }) },
      },
    },
    async (request) => {
      const view = services.pipeline.lastView(request.params.id);
      return {
        cameraId: request.params.id,
        result: view ? (view.result as unknown as Record<string, unknown>) : null,
        frameUrl: view ? `/api/v1/cameras/${encodeURIComponent(request.params.id)}/frame?t=${view.result.timestamp}` : null,
      };
    },
  );

  app.get(
    '/api/v1/cameras/:id/frame',
    {
      config: { access: 'operator' },
      schema: { tags: ['cameras'], summary: 'The last frame the camera processed (JPEG); 404 before any', params: idParams },
    },
    async (request, reply) => {
      const view = services.pipeline.lastView(request.params.id);
      if (!view) return sendProblem(reply, 404, 'no_frame', `camera ${request.params.id} has processed no frame yet`);
      return reply.type('image/jpeg').header('cache-control', 'no-store').send(Buffer.from(view.frame));
    },
  );
};
