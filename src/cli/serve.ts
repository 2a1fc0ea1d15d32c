import { networkInterfaces } from 'node:os';
import type { Command } from 'commander';
import { createApp } from '../app.ts';
import { maskedConfig } from '../config/config.ts';
import { configFromOptions, type GlobalOptions } from './options.ts';

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '[::]']);

/**
 * The start line: the address Fastify answers (127.0.0.1 for a wildcard host, which tests and
 * scripts read) and, for a wildcard host, that other machines can connect too, and at what.
 */
export function listeningLine(address: string, host: string, detail: string, addresses: string[] = networkAddresses()): string {
  if (!WILDCARD_HOSTS.has(host)) return `facegate: listening on ${address} (${detail})`;
  const { port } = new URL(address);
  const elsewhere = addresses.map((ip) => `http://${ip}:${port}`);
  return `facegate: listening on ${address} (${detail}; every interface${elsewhere.length ? `, e.g. ${elsewhere.join(', ')}` : ''})`;
}

/** This machine's external IPv4 addresses (what a camera or kiosk on the network would use). */
function networkAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flatMap((entries) => entries ?? [])
    .filter((entry) => entry.family === 'IPv4' && !entry.internal)
    .map((entry) => entry.address);
}

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
      console.log(listeningLine(address, config.server.host, `${config.vision.workers} vision workers, engine ${config.vision.engine}`));
      if (config.ui.enabled) {
        console.log(`facegate: web UI at ${new URL(address).origin}/ (sign in with a user, or with the admin key printed above on a first start)`);
      }
      // Graceful shutdown: stop accepting (new requests get 503 while closing), let in-flight requests
      // finish for trust.shutdownGraceMs, then cut what is left; close WebSockets, cameras, the event
      // outputs, the vision workers and the database (its WAL checkpointed); exit 0. A second signal exits at once.
      let stopping = false;
      const stop = async (signal: string): Promise<void> => {
        if (stopping) {
          console.error(`facegate: ${signal} again, exiting without a clean shutdown`);
          process.exit(1);
        }
        stopping = true;
        const graceMs = config.trust.shutdownGraceMs;
        console.log(`facegate: ${signal} received, shutting down (in-flight requests get ${graceMs} ms)`);
        const cut = setTimeout(() => {
          console.log('facegate: grace period over, closing the remaining connections');
          app.server.server.closeAllConnections();
        }, graceMs);
        cut.unref();
        // A keep-alive connection whose request finishes after close began would otherwise stay open until the cut.
        const idle = setInterval(() => app.server.server.closeIdleConnections(), 100);
        idle.unref();
        const giveUp = setTimeout(() => {
          console.error('facegate: shutdown did not finish in time, exiting');
          process.exit(1);
        }, graceMs + 15_000);
        giveUp.unref();
        try {
          await app.close();
          console.log('facegate: stopped cleanly');
          process.exit(0);
        } catch (err) {
          console.error(`facegate: error while shutting down: ${(err as Error).message}`);
          process.exit(1);
        }
      };
      process.on('SIGINT', () => void stop('SIGINT'));
      process.on('SIGTERM', () => void stop('SIGTERM'));
    });
}
