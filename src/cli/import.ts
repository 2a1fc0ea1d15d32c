import { lstat, readdir, readFile, realpath, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import cliProgress from 'cli-progress';
import { Option, type Command } from 'commander';
import { createServices } from '../app.ts';
import { AppError } from '../domain/errors.ts';
import type { ImportPhoto, ImportResult, ImportRowInput, ImportRowResult, OnExisting } from '../services/import.service.ts';
import { configFromOptions, type GlobalOptions } from './options.ts';

/*
 * `facegate import SOURCE`: people with their photos, from a folder of <person>/<images> or from a
 * CSV file, through the same services as the server (the store, the gallery index and the people
 * rules), so the index stays in step. Photos are read only from inside the folder (or the CSV's
 * folder): a path that resolves outside it, through "..", an absolute path or a symlink, is refused.
 */

const IMAGE_FILE = /\.(jpe?g|png|webp)$/i;
const byName = new Intl.Collator('en', { numeric: true }).compare;

/** CSV column names accepted for each field (compared lower-case, with spaces, dashes and underscores removed). */
const COLUMNS = {
  externalId: ['externalid', 'employeecode', 'rollno', 'rollnumber', 'id'],
  name: ['name', 'fullname'],
  email: ['email'],
  department: ['department', 'dept'],
  type: ['type'],
  photo: ['photo', 'photos', 'photourl', 'photopath', 'url', 'image', 'imagepath'],
} as const;

const normalizeHeader = (h: string): string => h.toLowerCase().replace(/[\s_-]+/g, '');

/** RFC 4180 CSV: quoted fields may hold commas, quotes ("") and line breaks; CRLF or LF line ends. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  for (; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += ch;
  }
  if (quoted) throw new AppError('csv_invalid', 400, 'the CSV ends inside a quoted field');
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows.filter((r) => r.some((cell) => cell.trim() !== ''));
}

const isUrl = (value: string): boolean => /^[a-z][a-z0-9+.-]*:\/\//i.test(value);

/**
 * A photo file inside `root` (a real, resolved folder): refused when the path is absolute, leaves
 * the folder (directly or through a symlink), is not a regular file or is larger than maxBytes.
 */
export function confinedFile(root: string, path: string, maxBytes: number): ImportPhoto {
  return {
    label: path,
    async load() {
      if (isAbsolute(path)) throw new AppError('file_not_allowed', 422, 'only paths relative to the import folder are read');
      const target = resolve(root, path);
      const outside = (p: string): boolean => {
        const rel = relative(root, p);
        return rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel);
      };
      // First the path as written ("../x"), then the file it really is (a symlink may point out).
      if (outside(target)) throw new AppError('file_not_allowed', 422, 'the path leads outside the import folder');
      let real: string;
      try {
        real = await realpath(target);
      } catch {
        throw new AppError('file_not_found', 422, 'no such file');
      }
      if (outside(real)) throw new AppError('file_not_allowed', 422, 'the path resolves outside the import folder');
      const info = await stat(real);
      if (!info.isFile()) throw new AppError('file_not_allowed', 422, 'not a regular file');
      if (info.size > maxBytes) throw new AppError('image_too_large', 413, `${info.size} bytes, more than the ${maxBytes} allowed`);
      try {
        return await readFile(real);
      } catch (err) {
        throw new AppError('file_unreadable', 422, `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    },
  };
}

export interface ImportSource {
  rows: ImportRowInput[];
  /** What was read, for the summary. */
  description: string;
}

/** Rows from a folder of <person>/<images>: the folder name is the external id (or the name, with folderIs 'name'). */
export async function rowsFromFolder(dir: string, options: { folderIs: 'external-id' | 'name'; type?: string; maxBytes: number }): Promise<ImportSource> {
  const root = await realpath(dir);
  const rows: ImportRowInput[] = [];
  const people = (await readdir(root, { withFileTypes: true })).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort(byName);
  for (const person of people) {
    const files = (await readdir(join(root, person), { withFileTypes: true }))
      // Symlinked files are checked by confinedFile like any other path; symlinked folders are not walked.
      .filter((e) => (e.isFile() || e.isSymbolicLink()) && IMAGE_FILE.test(e.name) && !e.name.startsWith('.'))
      .map((e) => e.name)
      .sort(byName);
    rows.push({
      ...(options.folderIs === 'name' ? { name: person } : { externalId: person }),
      type: options.type ?? null,
      photos: files.map((f) => confinedFile(root, join(person, f), options.maxBytes)),
    });
  }
  return { rows, description: `${people.length} folders under ${root}` };
}

/**
 * Rows from a CSV with a header row (see COLUMNS). A photo cell may hold several photos separated
 * by ";" or "|"; rows with the same external id are merged into one person with all their photos.
 * A photo is a URL, or a path relative to the CSV's folder.
 */
export async function rowsFromCsv(file: string, options: { type?: string; maxBytes: number }): Promise<ImportSource> {
  const table = parseCsv(await readFile(file, 'utf8'));
  if (table.length === 0) throw new AppError('csv_invalid', 400, `${file} is empty`);
  const header = table[0]!.map(normalizeHeader);
  const column = (field: keyof typeof COLUMNS): number => header.findIndex((h) => (COLUMNS[field] as readonly string[]).includes(h));
  const at = Object.fromEntries(Object.keys(COLUMNS).map((f) => [f, column(f as keyof typeof COLUMNS)])) as Record<keyof typeof COLUMNS, number>;
  if (at.externalId < 0 && at.name < 0) throw new AppError('csv_invalid', 400, `${file}: no external_id/employee_code/rollNo or name/full_name column`);
  if (at.photo < 0) throw new AppError('csv_invalid', 400, `${file}: no photo column (photo, photo_url, url, image)`);
  const root = await realpath(dirname(resolve(file)));
  const rows: ImportRowInput[] = [];
  const byExternalId = new Map<string, ImportRowInput>();
  for (const cells of table.slice(1)) {
    const cell = (i: number): string | null => (i >= 0 ? cells[i]?.trim() || null : null);
    const photos = (cell(at.photo) ?? '')
      .split(/[;|]/)
      .map((p) => p.trim())
      .filter(Boolean)
      .map((p): ImportPhoto => (isUrl(p) ? { url: p } : confinedFile(root, p, options.maxBytes)));
    const externalId = cell(at.externalId);
    const existing = externalId ? byExternalId.get(externalId) : undefined;
    if (existing) {
      existing.photos = [...existing.photos, ...photos];
      continue;
    }
    const row: ImportRowInput = {
      externalId,
      name: cell(at.name),
      email: cell(at.email),
      department: cell(at.department),
      type: cell(at.type) ?? options.type ?? null,
      photos,
    };
    rows.push(row);
    if (externalId) byExternalId.set(externalId, row);
  }
  return { rows, description: `${table.length - 1} CSV rows of ${file}` };
}

/** The summary: counts, then every row that was not added, with its reason. */
export function formatImportSummary(result: ImportResult, source: string): string {
  const s = result.summary;
  const lines = [
    `Facegate import: ${source}`,
    `  people: ${s.rows} rows — ${s.added} added, ${s.updated} updated, ${s.skipped} skipped, ${s.failed} failed; ${s.templatesAdded} faces added`,
  ];
  const notable = result.rows.filter((r) => r.status !== 'added' || r.photos.some((p) => p.status === 'refused'));
  if (notable.length > 0) {
    const table: string[][] = [['row', 'person', 'status', 'reason', 'detail']];
    const who = (r: ImportRowResult): string => r.externalId ?? r.name ?? '—';
    for (const r of notable) {
      table.push([String(r.index + 1), who(r), r.status, r.reason ?? '', r.message]);
      for (const p of r.photos) if (p.status === 'refused') table.push(['', '', '', `  ${p.reason}`, `${p.photo}: ${p.message}`]);
    }
    const widths = table[0]!.map((_, i) => Math.min(40, Math.max(...table.map((row) => row[i]!.length))));
    for (const row of table) lines.push(`  ${row.map((v, i) => (i === row.length - 1 ? v : v.padEnd(widths[i]!))).join('  ')}`);
  }
  return `${lines.join('\n')}\n`;
}

interface ImportCommandOptions {
  onExisting: OnExisting;
  folderIs: 'external-id' | 'name';
  type?: string;
  concurrency?: number;
  json?: string;
}

/** Registers `facegate import SOURCE`. */
export function registerImportCommand(program: Command): void {
  program
    .command('import')
    .description('import people with their face photos from a folder of <person>/<images> or a CSV file')
    .argument('<source>', 'a folder with one sub-folder of photos per person, or a CSV file')
    .addOption(new Option('--on-existing <what>', 'a person whose external id exists: skip the row, or add its photos').choices(['skip', 'add_faces']).default('skip'))
    .addOption(new Option('--folder-is <field>', 'what a folder name is (folder source)').choices(['external-id', 'name']).default('external-id'))
    .option('--type <label>', 'the type given to imported people (employee, student…) when the source does not say')
    .option('--concurrency <n>', 'people analysed at once (default: 2 × vision workers)', (v) => Number.parseInt(v, 10))
    .option('--json <file>', 'also write every row’s result as JSON')
    .addHelpText(
      'after',
      '\nCSV columns (header row, any order): external_id | employee_code | rollNo, name | full_name, email, department, type,\n' +
        'photo (a URL, or a path relative to the CSV; several separated by ";"). Rows with the same external id are one person.\n' +
        'Exit code: 0 when no row failed, 1 otherwise.',
    )
    .action(async (sourcePath: string, options: ImportCommandOptions) => {
      const config = configFromOptions(program.opts<GlobalOptions>());
      const maxBytes = config.vision.image.maxBytes;
      let info;
      try {
        info = await lstat(sourcePath);
      } catch {
        throw new AppError('source_not_found', 400, `${sourcePath}: no such file or folder`);
      }
      const source =
        info.isDirectory() || (info.isSymbolicLink() && (await stat(sourcePath)).isDirectory())
          ? await rowsFromFolder(sourcePath, { folderIs: options.folderIs, type: options.type, maxBytes })
          : await rowsFromCsv(sourcePath, { type: options.type, maxBytes });
      if (source.rows.length === 0) {
        process.stderr.write(`facegate import: nothing to import in ${sourcePath}\n`);
        return;
      }
      const services = await createServices(config, (message) => process.stderr.write(`facegate: ${message}\n`));
      let result: ImportResult;
      const progress = progressBar(process.stderr, source.rows.length);
      try {
        result = await services.importer.importRows(source.rows, {
          onExisting: options.onExisting,
          concurrency: options.concurrency ?? config.vision.workers * 2,
          onRow: (row) => progress.update(row),
        });
      } finally {
        progress.stop();
        await services.close();
      }
      process.stdout.write(formatImportSummary(result, `${basename(sourcePath)} (${source.description})`));
      if (options.json) {
        await writeFile(options.json, `${JSON.stringify(result, null, 2)}\n`);
        process.stderr.write(`facegate import: wrote ${options.json}\n`);
      }
      if (result.summary.failed > 0) process.exitCode = 1;
    });
}

/** A cli-progress bar on a terminal; a line every few seconds otherwise. */
function progressBar(stream: NodeJS.WriteStream, total: number) {
  const counts = { added: 0, skipped: 0, failed: 0 };
  const tally = (row: ImportRowResult): void => {
    if (row.status === 'added' || row.status === 'updated') counts.added++;
    else if (row.status === 'skipped') counts.skipped++;
    else counts.failed++;
  };
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      { stream, format: 'importing [{bar}] {value}/{total} people | {added} added | {skipped} skipped | {failed} failed | {eta_formatted} left', hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, counts);
    let done = 0;
    return {
      update(row: ImportRowResult): void {
        tally(row);
        bar.update(++done, counts);
      },
      stop: (): void => bar.stop(),
    };
  }
  let done = 0;
  let lastMs = Date.now();
  const line = (): boolean => stream.write(`importing: ${done}/${total} people, ${counts.added} added, ${counts.skipped} skipped, ${counts.failed} failed\n`);
  return {
    update(row: ImportRowResult): void {
      tally(row);
      done++;
      if (Date.now() - lastMs >= 5000) {
        lastMs = Date.now();
        line();
      }
    },
    stop: (): void => void line(),
  };
}
