import { Command, Option } from 'commander';
import { ConfigError } from '../config/config.ts';
import { AppError } from '../domain/errors.ts';
import { MigrationError } from '../store/index.ts';
import { registerAttendanceCommand } from './attendance.ts';
import { registerBenchCommand } from './bench.ts';
import { registerEvalCommand } from './eval.ts';
import { registerImportCommand } from './import.ts';
import { registerMigrateCommand } from './migrate.ts';
import { registerServeCommand } from './serve.ts';
import { registerUserCommands } from './users.ts';
import { registerVisionCommands } from './vision-commands.ts';

const program = new Command()
  .name('facegate')
  .description('Self-hosted face recognition and attendance server')
  .option('-c, --config <file>', 'JSON config file (default: $FACEGATE_CONFIG or ./facegate.config.json)')
  .addOption(new Option('--engine <engine>', 'face engine').choices(['onnx', 'human', 'human-fr']))
  .addOption(new Option('--workers <n>', 'vision worker threads').argParser((v) => Number.parseInt(v, 10)))
  .showHelpAfterError();

registerServeCommand(program);
registerMigrateCommand(program);
registerImportCommand(program);
registerVisionCommands(program);
registerEvalCommand(program);
registerBenchCommand(program);
registerAttendanceCommand(program);
registerUserCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof ConfigError || err instanceof AppError || err instanceof MigrationError) {
    console.error(`facegate: ${err.message}`);
    process.exit(2);
  }
  throw err;
}
