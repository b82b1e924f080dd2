// `berth serve user add|rm|passwd|ls NAME --htpasswd FILE`: the users file of --auth htpasswd|token.
// Passwords come from standard input (first line) or an echo-less prompt; only bcrypt hashes are written.
import type { Command } from 'commander';
import { createInterface } from 'node:readline';
import { hashPassword, isValidUserName, readHtpasswdFile, writeHtpasswd } from './htpasswd.js';

async function readPasswordFromStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
}

async function prompt(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  // Echo nothing of what is typed: readline writes the input through _writeToOutput.
  const r = rl as unknown as { _writeToOutput: (s: string) => void; output: NodeJS.WritableStream };
  let asked = false;
  r._writeToOutput = (s: string) => {
    if (!asked) {
      r.output.write(s);
      asked = true;
    }
  };
  try {
    return await new Promise<string>((resolve) => rl.question(question, resolve));
  } finally {
    process.stderr.write('\n');
    rl.close();
  }
}

async function newPassword(): Promise<string> {
  if (!process.stdin.isTTY) {
    const p = await readPasswordFromStdin();
    if (!p) throw new Error('no password on standard input');
    return p;
  }
  const a = await prompt('New password: ');
  const b = await prompt('Repeat password: ');
  if (a !== b) throw new Error('the passwords differ');
  if (!a) throw new Error('empty password');
  return a;
}

/** An action whose failure is one line `berth serve user: …` and exit code 1. */
function action<A extends unknown[]>(work: (...args: A) => Promise<void>): (...args: A) => Promise<number> {
  return async (...args) => {
    try {
      await work(...args);
      return 0;
    } catch (e) {
      process.stderr.write(`berth serve user: ${(e as Error).message}\n`);
      return 1;
    }
  };
}

/** `berth serve user add|passwd|rm|ls` as subcommands of `cmd` (the command line is bin/commands.ts's). */
export function defineUsers(program: Command): void {
  const file = (o: { htpasswd?: string }): string => {
    const f = o.htpasswd ?? process.env.BERTH_HTPASSWD;
    if (!f) throw new Error('name the users file with --htpasswd FILE (or BERTH_HTPASSWD)');
    return f;
  };
  const checkName = (name: string) => {
    if (!isValidUserName(name)) throw new Error(`invalid user name ${JSON.stringify(name.slice(0, 80))}: no ':' or whitespace, at most 255 characters`);
  };
  program.description('Manage the users file (htpasswd format, bcrypt) of berth serve --auth htpasswd|token');
  program
    .command('add <name>')
    .description('add a user; the password is read from standard input or prompted for')
    .option('--htpasswd <file>', 'users file (env BERTH_HTPASSWD); created when missing')
    .action(
      action(async (name: string, o: { htpasswd?: string }) => {
        checkName(name);
        const users = await readHtpasswdFile(file(o));
        if (users.has(name)) throw new Error(`user ${name} exists: use 'berth serve user passwd ${name}'`);
        users.set(name, await hashPassword(await newPassword()));
        await writeHtpasswd(file(o), users);
        process.stderr.write(`added user ${name}\n`);
      }),
    );
  program
    .command('passwd <name>')
    .description("change a user's password (standard input or prompt)")
    .option('--htpasswd <file>', 'users file (env BERTH_HTPASSWD)')
    .action(
      action(async (name: string, o: { htpasswd?: string }) => {
        const users = await readHtpasswdFile(file(o));
        if (!users.has(name)) throw new Error(`no user ${name}`);
        users.set(name, await hashPassword(await newPassword()));
        await writeHtpasswd(file(o), users);
        process.stderr.write(`changed the password of ${name}\n`);
      }),
    );
  program
    .command('rm <name>')
    .description('remove a user')
    .option('--htpasswd <file>', 'users file (env BERTH_HTPASSWD)')
    .action(
      action(async (name: string, o: { htpasswd?: string }) => {
        const users = await readHtpasswdFile(file(o));
        if (!users.delete(name)) throw new Error(`no user ${name}`);
        await writeHtpasswd(file(o), users);
        process.stderr.write(`removed user ${name}\n`);
      }),
    );
  program
    .command('ls')
    .description('list the users')
    .option('--htpasswd <file>', 'users file (env BERTH_HTPASSWD)')
    .action(
      action(async (o: { htpasswd?: string }) => {
        for (const name of (await readHtpasswdFile(file(o))).keys()) process.stdout.write(`${name}\n`);
      }),
    );
}
