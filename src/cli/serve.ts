import type { Command } from 'commander';
import { createApp } from '../app.ts';
import { maskedConfig } from '../config/config.ts';
import { configFromOptions, type GlobalOptions } from './options.ts';

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('start the API server (the default of `npm start`)')
    .option('-p, --port <port>', 'TCP port (default from config: 8080)', (v) => Number.parseInt(v, 10))
    .option('--host <host>', 'listen address')
    .action(async (options: { port?: number; host?: string }) => {
      const server: Record<string, unknown> = {};
      if (options.port !== undefined) server.port = options.port;
      if (options.host) server.host = options.host;
      const config = configFromOptions(program.opts<GlobalOptions>(), { server });
      console.log(`facegate: effective configuration\n${JSON.stringify(maskedConfig(config), null, 2)}`);
      const app = await createApp(config, (message) => console.log(`facegate: ${message}`));
      const address = await app.server.listen({ host: config.server.host, port: config.server.port });
      console.log(`facegate: listening on ${address} (${config.vision.workers} vision workers, engine ${config.vision.engine})`);
      if (config.ui.enabled) {
        const url = new URL(address);
        if (url.hostname === '0.0.0.0' || url.hostname === '[::]') url.hostname = 'localhost';
        console.log(`facegate: web UI at ${url.origin}/ (sign in with a user, or with the admin key printed above on a first start)`);
      }
      let stopping = false;
      const stop = async (signal: string): Promise<void> => {
        if (stopping) return;
        stopping = true;
        console.log(`facegate: ${signal} received, shutting down`);
        await app.close();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop('SIGINT'));
      process.once('SIGTERM', () => void stop('SIGTERM'));
    });
}
