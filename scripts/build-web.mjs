// Builds the web UI (web/ → web/dist) with Vite. Run by `npm install` (postinstall), `npm run
// build:web`, and `npm start` with --if-missing (builds only when web/dist is not there yet).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const webDir = fileURLToPath(new URL('../web/', import.meta.url));
if (process.argv.includes('--if-missing') && existsSync(new URL('../web/dist/index.html', import.meta.url))) process.exit(0);

let vite;
try {
  vite = await import('vite');
} catch {
  console.warn('facegate: vite is not installed, so the web UI was not built (run npm install)');
  process.exit(0);
}
await vite.build({ configFile: `${webDir}vite.config.ts`, logLevel: 'warn' });
console.log(`facegate: web UI built into ${webDir}dist`);
