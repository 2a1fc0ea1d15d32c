import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Replaces directory `dir` with what `write` puts into a fresh temporary directory beside it,
 * flushed to disk first. A crash leaves either the old directory, or none (then the gallery is
 * rebuilt from the store), never a half-written one under the name `dir`.
 * `write` is called synchronously (the temporary directory is made with mkdirSync), so whatever
 * it does before its first await sees the same in-memory state as the caller: a consistent snapshot.
 */
export async function replaceDirAtomically(dir: string, write: (tmpDir: string) => Promise<void>): Promise<void> {
  const suffix = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmp = `${dir}.tmp-${suffix}`;
  const old = `${dir}.old-${suffix}`;
  mkdirSync(dirname(dir), { recursive: true });
  mkdirSync(tmp, { recursive: true });
  try {
    await write(tmp);
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw error;
  }
  const hadOld = await exists(dir);
  if (hadOld) await rename(dir, old);
  await rename(tmp, dir);
  if (hadOld) await rm(old, { recursive: true, force: true });
}

/** Writes bytes to a file and flushes it to disk. */
export async function writeFileSynced(path: string, data: Uint8Array | string): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Flushes a file another writer (usearch) produced. */
export async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
