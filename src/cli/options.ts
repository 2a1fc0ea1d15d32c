import { loadConfig, type Config } from '../config/config.ts';

/** Options every command shares: a config file and the engine/worker overrides. */
export interface GlobalOptions {
  config?: string;
  engine?: Config['vision']['engine'];
  workers?: number;
}

/** Loads the effective config with the global flags applied on top of file and environment. */
export function configFromOptions(options: GlobalOptions, overrides: Record<string, unknown> = {}): Config {
  const vision: Record<string, unknown> = { ...((overrides.vision as Record<string, unknown>) ?? {}) };
  if (options.engine) vision.engine = options.engine;
  if (options.workers) vision.workers = options.workers;
  return loadConfig({ file: options.config, overrides: { ...overrides, vision } });
}
