import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import { projectPath } from '../../config/paths.ts';
import { sendProblem } from '../problem.ts';
import type { RouteModule } from '../server.ts';

/*
 * The web UI: the static files Vite builds into web/dist (by `npm install` / `npm run build:web`).
 * Hashed assets under /assets/ are cached for good; index.html is never cached, so a new build
 * is picked up on reload. Each page of the UI answers index.html (the UI routes in the browser).
 * Only these routes are public; the UI then signs in through the API.
 */

/** The pages of the UI (web/src/main.tsx routes them in the browser); each answers index.html. */
export const UI_PATHS = ['/', '/login', '/kiosk', '/people', '/people/:id', '/attendance', '/live', '/settings', '/ws-tester'] as const;

export const webRoutes: RouteModule = (app, { config }) => {
  if (!config.ui.enabled) return;
  const root = projectPath(config.ui.root);
  const built = existsSync(join(root, 'index.html'));

  app.register(async (scope) => {
    await scope.register(fastifyStatic, {
      root: built ? join(root, 'assets') : root,
      prefix: '/assets/',
      // One route per built file, found at start (a rebuild is picked up at the next start), rather
      // than a wildcard: the route table then names every public file.
      wildcard: false,
      // With no build there is nothing to serve; sendFile (index.html) still needs the decorator.
      globIgnore: built ? [] : ['**'],
      // Vite names assets by content hash: a name never changes meaning.
      immutable: true,
      maxAge: '365d',
    });

    for (const path of UI_PATHS) {
      scope.get(path, { config: { access: 'public' }, schema: { hide: true } }, async (_request, reply) => {
        if (!built) return sendProblem(reply, 503, 'ui_not_built', 'the web UI is not built: run `npm run build:web` (npm install does it)');
        return reply.header('cache-control', 'no-cache').sendFile('index.html', root, { cacheControl: false });
      });
    }
  });
};
