import { spawn, type ChildProcess } from 'node:child_process';
import { projectPath } from '../../src/config/paths.ts';
import { createPostgresDatabase, type PostgresDatabase } from '../store/backends.ts';

/*
 * Several Facegate nodes for the cluster tests and bench/cluster.ts: each node is a real
 * `facegate serve` child process (so a test can SIGKILL one), on a random port, against one
 * PostgreSQL database made for the run and dropped after it.
 */

export { postgresProblem } from '../store/backends.ts';

export type ClusterDatabase = PostgresDatabase;

/** A fresh database of its own on the local PostgreSQL. */
export function createClusterDatabase(prefix = 'facegate_cluster'): Promise<ClusterDatabase> {
  return createPostgresDatabase(prefix);
}

export interface NodeProcess {
  nodeId: string;
  base: string;
  proc: ChildProcess;
  /** Everything the node printed. */
  output: string[];
  /** The admin key, when this node created it. */
  printedKey: string | undefined;
  /** SIGKILL: the node vanishes without releasing anything. */
  kill(): Promise<void>;
  /** SIGTERM: a graceful shutdown (leases handed back). */
  stop(): Promise<void>;
}

export interface NodeOptions {
  nodeId: string;
  databaseUrl: string;
  dataDir: string;
  /** More FACEGATE_* variables. */
  env?: Record<string, string>;
  startTimeoutMs?: number;
}

/** Starts `facegate serve` on a random port and resolves once it listens. */
export function startNode(options: NodeOptions): Promise<NodeProcess> {
  const proc = spawn(process.execPath, [projectPath('bin/facegate.mjs'), 'serve', '--port', '0', '--host', '127.0.0.1'], {
    cwd: projectPath('.'),
    env: {
      ...process.env,
      DATABASE_URL: options.databaseUrl,
      FACEGATE_DATA_DIR: options.dataDir,
      FACEGATE_VISION__WORKERS: '1',
      FACEGATE_SERVER__LOG_LEVEL: 'silent',
      FACEGATE_GALLERY__SAVE_EVERY_MS: '3600000',
      FACEGATE_CLUSTER__NODE_ID: options.nodeId,
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return new Promise<NodeProcess>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`node ${options.nodeId} did not start in time:\n${output.join('').slice(-3000)}`));
    }, options.startTimeoutMs ?? 120_000);
    const onData = (chunk: Buffer): void => {
      output.push(chunk.toString());
      const text = output.join('');
      const listening = /listening on (http:\/\/[^\s]+)/.exec(text);
      if (listening) {
        clearTimeout(timer);
        proc.stdout!.off('data', onData);
        proc.stdout!.on('data', (c: Buffer) => output.push(c.toString()));
        resolve({
          nodeId: options.nodeId,
          base: listening[1]!,
          proc,
          output,
          printedKey: /fg_[A-Za-z0-9_-]+/.exec(text)?.[0],
          async kill() {
            if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
            await exited;
          },
          async stop() {
            if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
            await exited;
          },
        });
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (c: Buffer) => output.push(c.toString()));
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`node ${options.nodeId} exited (${code ?? signal}) before listening:\n${output.join('').slice(-3000)}`));
    });
  });
}

/** Polls fn every intervalMs until it returns a value that is not undefined, or throws after timeoutMs. */
export async function waitUntil<T>(fn: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 20, what = 'the condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
