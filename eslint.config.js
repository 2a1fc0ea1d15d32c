// Lint rules, including the import boundaries of shared/ARCHITECTURE.md:
// domain imports nothing of ours; vision, gallery, store, sources and events import only
// domain and config; services do not reach into api or cli; only app.ts and the CLI wire
// concrete parts together.
import js from '@eslint/js';
import importX from 'eslint-plugin-import-x';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const layer = (target, from, message) => ({ target, from, message });

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'data/**', 'models/**', '.cache/**', '.scratch/**', 'web/dist/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node }, ecmaVersion: 2023, sourceType: 'module' },
    plugins: { 'import-x': importX },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            layer('./src/domain', './src/!(domain)/**', 'domain is pure: it imports nothing outside src/domain.'),
            layer('./src/domain', './src/*.ts', 'domain is pure: it imports nothing outside src/domain.'),
            ...['vision', 'gallery', 'store', 'sources', 'events'].flatMap((name) => [
              layer(`./src/${name}`, `./src/!(domain|config|${name})/**`, `${name} imports only domain and config.`),
              layer(`./src/${name}`, './src/*.ts', `${name} must not import the composition root.`),
            ]),
            layer('./src/services', './src/{api,cli}/**', 'services do not depend on their callers.'),
            layer('./src/services', './src/*.ts', 'services must not import the composition root.'),
            layer('./src/api', './src/cli/**', 'api does not import the CLI.'),
            layer('./web', './src/**', 'the web UI talks to the server only over HTTP/WebSocket.'),
          ],
        },
      ],
    },
  },
  {
    // The web UI runs in the browser.
    files: ['web/**'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    files: ['**/*.test.ts', 'test/**', 'bench/**', 'e2e/**', 'scripts/**'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);
