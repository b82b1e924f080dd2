#!/usr/bin/env node
// The `berth` entry point. The verbs are declared in bin/commands.ts; only the invoked verb is
// defined and only the module its action needs is imported: start-up time counts (`berth run`
// races podman, and the registry's Koa stack costs ~45 ms).
import module from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';

// Node ≥ 22.1 caches compiled code on disk (V8's code cache): later starts skip parsing and
// compiling the modules a verb loads. Node 20 has no such API: nothing to do there.
const enableCompileCache = (module as { enableCompileCache?: (dir?: string) => unknown }).enableCompileCache;
if (enableCompileCache && !process.env.NODE_COMPILE_CACHE) {
  try {
    enableCompileCache(join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'berth', 'compile-cache'));
  } catch {
    // a read-only or missing home: run uncached
  }
}

function usage(VERBS: typeof import('./commands.js').VERBS): string {
  const rows = Object.entries(VERBS).map(([v, { summary }]) => `  ${v.padEnd(10)} ${summary}`);
  return ['Usage: berth COMMAND [OPTIONS]', '', 'Commands:', ...rows, '', "Run 'berth COMMAND --help' for a command's options."].join('\n');
}

async function main(argv: string[]): Promise<number> {
  // No top-level await: the CLI bundle (scripts/bundle-cli.mjs) is CommonJS.
  const [{ VERBS, programFor }, { run }] = await Promise.all([import('./commands.js'), import('./command-line.js')]);
  // `berth help VERB [SUB]` is `berth VERB [SUB] --help`, as docker's.
  if (argv[0] === 'help' && argv.length > 1) return main([...argv.slice(1), '--help']);
  const [verb] = argv;
  if (verb === undefined || verb === '--help' || verb === '-h' || verb === 'help') {
    process.stdout.write(usage(VERBS) + '\n');
    return verb === undefined ? 1 : 0;
  }
  if (verb === '--version' || verb === '-v') {
    const { readFile } = await import('node:fs/promises');
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`berth ${pkg.version}\n`);
    return 0;
  }
  const program = await programFor(verb);
  if (!program) {
    process.stderr.write(`berth: '${verb}' is not a berth command.\nSee 'berth --help'.\n`);
    return 125;
  }
  return run(program, argv);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`berth: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 125;
  },
);
