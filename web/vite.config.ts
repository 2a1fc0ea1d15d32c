import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The web UI is built into web/dist and served by the Facegate server (src/api/routes/web.routes.ts).
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  // Preact's JSX runtime, through Vite's own (oxc) transform: no framework plugin needed.
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: { outDir: 'dist', emptyOutDir: true, assetsDir: 'assets', sourcemap: false, chunkSizeWarningLimit: 600 },
  server: { proxy: { '/api': { target: 'http://localhost:8080', ws: true } } },
});
