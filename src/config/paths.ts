import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder holding package.json: model files are found relative to it, wherever the CLI is run from. */
export const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Resolves a configured path that is relative to the project (models), not to the working directory. */
export function projectPath(path: string): string {
  return isAbsolute(path) ? path : resolve(PROJECT_ROOT, path);
}
