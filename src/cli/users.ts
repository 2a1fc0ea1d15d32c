import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { Option } from 'commander';
import { openStore, usersServiceFor } from '../app.ts';
import { AppError } from '../domain/errors.ts';
import { USER_ROLES, type UserRole } from '../store/index.ts';
import { configFromOptions, type GlobalOptions } from './options.ts';

/** Reads the password: $FACEGATE_PASSWORD, else piped stdin (first line), else a prompt that does not echo. */
async function readPassword(): Promise<string> {
  const fromEnv = process.env.FACEGATE_PASSWORD;
  if (fromEnv) return fromEnv;
  if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
  }
  const ask = (question: string): Promise<string> =>
    new Promise((resolve) => {
      const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
      // Echo nothing of what is typed: only the question is written.
      (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) => {
        if (s.startsWith(question)) process.stdout.write(question);
      };
      rl.question(question, (answer) => {
        rl.close();
        process.stdout.write('\n');
        resolve(answer);
      });
    });
  const first = await ask('Password: ');
  const again = await ask('Password again: ');
  if (first !== again) throw new AppError('password_mismatch', 400, 'the two passwords differ');
  return first;
}

export function registerUserCommands(program: Command): void {
  const user = program.command('user').description('web UI users (admins and operators who sign in with a password)');

  user
    .command('add <name>')
    .description('create a user; the password comes from $FACEGATE_PASSWORD, stdin, or a prompt')
    .addOption(new Option('--role <role>', 'what the user may do').choices([...USER_ROLES]).default('operator'))
    .action(async (name: string, options: { role: UserRole }) => {
      const config = configFromOptions(program.opts<GlobalOptions>());
      const password = await readPassword();
      const store = await openStore(config);
      try {
        const created = await usersServiceFor(config, store).createUser(name, options.role, password);
        console.log(`facegate: user ${created.name} (${created.role}) created`);
      } finally {
        await store.close();
      }
    });

  user
    .command('list')
    .description('list users')
    .action(async () => {
      const config = configFromOptions(program.opts<GlobalOptions>());
      const store = await openStore(config);
      try {
        for (const u of await usersServiceFor(config, store).listUsers()) {
          const locked = u.lockedUntil && u.lockedUntil > Date.now() ? `  locked until ${new Date(u.lockedUntil).toISOString()}` : '';
          console.log(`${u.name}\t${u.role}\tlast sign-in ${u.lastLoginAt ? new Date(u.lastLoginAt).toISOString() : 'never'}${locked}`);
        }
      } finally {
        await store.close();
      }
    });

  user
    .command('passwd <name>')
    .description('set a user’s password (lifts a lockout); from $FACEGATE_PASSWORD, stdin, or a prompt')
    .action(async (name: string) => {
      const config = configFromOptions(program.opts<GlobalOptions>());
      const password = await readPassword();
      const store = await openStore(config);
      try {
        const found = (await store.users.list()).find((u) => u.name === name);
        if (!found) throw new AppError('user_not_found', 404, `no user ${name}`);
        await usersServiceFor(config, store).setPassword(found.id, password);
        console.log(`facegate: password of ${name} set`);
      } finally {
        await store.close();
      }
    });

  user
    .command('remove <name>')
    .description('delete a user and end their sessions')
    .action(async (name: string) => {
      const config = configFromOptions(program.opts<GlobalOptions>());
      const store = await openStore(config);
      try {
        const found = (await store.users.list()).find((u) => u.name === name);
        if (!found) throw new AppError('user_not_found', 404, `no user ${name}`);
        await usersServiceFor(config, store).deleteUser(found.id);
        console.log(`facegate: user ${name} removed`);
      } finally {
        await store.close();
      }
    });
}
