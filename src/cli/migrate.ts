import type { Command } from 'commander';
import { openStore } from '../app.ts';
import { migrationStatus } from '../store/index.ts';
import { configFromOptions, type GlobalOptions } from './options.ts';

export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('bring the database schema up to date (also done at every start); --status lists migrations')
    .option('--status', 'list every migration and when it ran')
    .action(async (options: { status?: boolean }) => {
      const config = configFromOptions(program.opts<GlobalOptions>());
      const store = await openStore(config, (message) => console.log(`facegate: ${message}`));
      try {
        if (options.status) {
          for (const m of await migrationStatus(store)) {
            console.log(`${m.name}  ${m.executedAt ? new Date(m.executedAt).toISOString() : 'pending'}`);
          }
        } else {
          console.log(`facegate: database ${store.location}: schema up to date`);
        }
      } finally {
        await store.close();
      }
    });
}
