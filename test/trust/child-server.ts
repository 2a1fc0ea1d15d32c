import { spawn, type ChildProcess } from 'node:child_process';
import { projectPath } from '../../src/config/paths.ts';

/** `facegate serve` as a child process over a data folder, as an operator runs it (one vision worker). */
export interface ChildServer {
  proc: ChildProcess;
  base: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code (or the signal) when the process ends. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function startChildServer(dataDir: string, env: Record<string, string> = {}, timeoutMs = 60_000): Promise<ChildServer> {
  const proc = spawn(process.execPath, [projectPath('bin/facegate.mjs'), 'serve', '--host', '127.0.0.1', '--port', '0'], {
    cwd: projectPath('.'),
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      FACEGATE_DATA_DIR: dataDir,
      FACEGATE_VISION__WORKERS: '1',
      FACEGATE_SERVER__LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  proc.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in ${timeoutMs} ms:\n${text}`)), timeoutMs);
    const onData = (): void => {
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    proc.stdout!.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? signal}) before listening:\n${text}`));
    });
  });
  return { proc, base, output: () => text, exited };
}

/** The admin key a first start prints. */
export function printedKey(output: string): string {
  const key = /fg_[A-Za-z0-9_-]+/.exec(output)?.[0];
  if (!key) throw new Error(`no admin key in the server output:\n${output}`);
  return key;
}
