import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import { Option, type Command } from 'commander';
import { openStore } from '../app.ts';
import { isAttendanceDay } from '../domain/attendance.ts';
import { AppError } from '../domain/errors.ts';
import { AttendanceService } from '../services/attendance.service.ts';
import { calibratedThresholds } from '../vision/engine-factory.ts';
import { configFromOptions, type GlobalOptions } from './options.ts';

/*
 * `facegate attendance export --from YYYY-MM-DD --to YYYY-MM-DD --out file.csv`: the same CSV as
 * GET /api/v1/attendance/export.csv, read straight from the store (the server may be running: SQLite
 * allows a reader next to it). The file is written beside the target and renamed at the end, so an
 * interrupted export never leaves a half-written file under the asked name.
 */

function day(label: string) {
  return (value: string): string => {
    if (!isAttendanceDay(value)) throw new AppError('validation_failed', 400, `${label} must be a day YYYY-MM-DD, got "${value}"`);
    return value;
  };
}

interface ExportOptions {
  from?: string;
  to?: string;
  out?: string;
  person?: string;
  department?: string;
  camera?: string;
  session?: string;
  includeRevoked?: boolean;
}

export function registerAttendanceCommand(program: Command): void {
  const attendance = program.command('attendance').description('attendance reports');
  attendance
    .command('export')
    .description('write check-ins as CSV (the same columns as GET /api/v1/attendance/export.csv)')
    .addOption(new Option('--from <day>', 'first attendance day, YYYY-MM-DD').argParser(day('--from')))
    .addOption(new Option('--to <day>', 'last attendance day, YYYY-MM-DD').argParser(day('--to')))
    .option('--out <file>', 'CSV file to write (default: standard output)')
    .option('--person <id>', 'only this person')
    .option('--department <name>', 'only this department')
    .option('--camera <id>', 'only check-ins from this camera')
    .option('--session <id>', 'only check-ins of this recognition session')
    .option('--include-revoked', 'also list revoked check-ins')
    .action(async (options: ExportOptions) => {
      const config = configFromOptions(program.opts<GlobalOptions>());
      const store = await openStore(config);
      try {
        const service = new AttendanceService({
          store,
          config: config.attendance,
          searchThreshold: calibratedThresholds(config).search,
          livenessThreshold: config.vision.livenessThreshold,
          storeImages: config.privacy.storeImages,
        });
        const lines = service.exportCsv({
          ...(options.from === undefined ? {} : { from: options.from }),
          ...(options.to === undefined ? {} : { to: options.to }),
          ...(options.person === undefined ? {} : { personId: options.person }),
          ...(options.department === undefined ? {} : { department: options.department }),
          ...(options.camera === undefined ? {} : { cameraId: options.camera }),
          ...(options.session === undefined ? {} : { sessionId: options.session }),
          ...(options.includeRevoked ? { includeRevoked: true } : {}),
        });
        if (!options.out) {
          for await (const line of lines) process.stdout.write(line);
          return;
        }
        const partial = `${options.out}.partial`;
        const file = createWriteStream(partial);
        let rows = -1;
        try {
          for await (const line of lines) {
            rows++;
            if (!file.write(line)) await new Promise<void>((resolve) => file.once('drain', () => resolve()));
          }
          file.end();
          await finished(file);
          await rename(partial, options.out);
        } catch (err) {
          file.destroy();
          await rm(partial, { force: true });
          throw err;
        }
        console.error(`facegate: wrote ${rows} check-ins to ${options.out}`);
      } finally {
        await store.close();
      }
    });
}
