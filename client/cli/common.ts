// What every client verb shares: commander set-up whose errors are one line on stderr and a
// non-zero exit, and the error-to-message mapping.
import { Command, CommanderError } from 'commander';

export function command(name: string, summary: string): Command {
  const program = new Command(`berth ${name}`);
  program
    .description(summary)
    .helpOption('-h, --help', 'Show this help')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(`berth ${name}: ${(s.split('\n').filter(Boolean)[0] ?? '').replace(/^error: /, '')}\n`) })
    .allowExcessArguments(false);
  return program;
}

/** One line, no stack: what a user (or a script) needs to see. */
export function errorLine(e: unknown): string {
  if (e instanceof Error) {
    const msg = e.message.split('\n')[0]!;
    if ((e as NodeJS.ErrnoException).code === 'ENOSPC') return `no space left on device: ${msg}`;
    return msg;
  }
  return String(e);
}

/**
 * Parses argv and runs the action; every failure is one stderr line and exit code 1. The process
 * exits as soon as the verb is done: undici keeps the event loop alive for ~200 ms after its
 * agents are closed, a quarter of a warm push. (stdout/stderr writes to files, pipes and
 * terminals are synchronous on Linux, so nothing written is lost.)
 */
export async function run(name: string, program: Command, argv: string[]): Promise<number> {
  const code = await runVerb(name, program, argv);
  process.exit(code);
}

/**
 * The same without the early exit, for verbs that open no connection (the local store's): the
 * caller gets the code and may go on (bin/berth.ts drops unpacked layers after `rmi`).
 */
export async function runVerb(name: string, program: Command, argv: string[]): Promise<number> {
  let code = 0;
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof ExitCode) return e.code;
    if (e instanceof CommanderError) {
      // --help and --version exit 0; a usage error was already printed by commander.
      return e.exitCode === 0 ? 0 : 1;
    }
    process.stderr.write(`berth ${name}: ${errorLine(e)}\n`);
    code = 1;
  }
  return code;
}

/** Thrown by an action that already printed its errors (rmi of several images) to set the exit code. */
export class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}
