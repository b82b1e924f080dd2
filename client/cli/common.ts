// What every client verb shares: the error-to-message mapping and the exit code. The verbs'
// flags are declared in bin/commands.ts (usage errors are the command line's: exit 125).

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
 * Runs a verb's work; every failure is one stderr line `berth NAME: …` and exit code 1, for the
 * verbs that open no connection (the local store's): the caller gets the code and may go on
 * (bin/commands.ts drops unpacked layers after `rmi`).
 */
export async function runVerb(name: string, work: () => Promise<void>): Promise<number> {
  try {
    await work();
    return 0;
  } catch (e) {
    if (e instanceof ExitCode) return e.code;
    process.stderr.write(`berth ${name}: ${errorLine(e)}\n`);
    return 1;
  }
}

/**
 * The same for verbs that talk to registries: the process exits as soon as the verb is done.
 * undici keeps the event loop alive for ~200 ms after its agents are closed, a quarter of a warm
 * push. (stdout/stderr writes to files, pipes and terminals are synchronous on Linux, so nothing
 * written is lost.)
 */
export async function run(name: string, work: () => Promise<void>): Promise<number> {
  process.exit(await runVerb(name, work));
}

/** Thrown by an action that already printed its errors (rmi of several images) to set the exit code. */
export class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}
