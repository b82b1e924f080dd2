#!/usr/bin/env node
// The `berth` entry point. Each verb lives in its own module and is imported only when used:
// start-up time counts (`berth run` races podman), and the registry's Koa stack costs ~45 ms.

type VerbModule = { main(argv: string[]): Promise<number> };

const VERBS: Record<string, { summary: string; load: () => Promise<VerbModule> }> = {
  serve: { summary: 'Run the registry (OCI Distribution API) on this machine', load: () => import('../server/cli.js') },
};

function usage(): string {
  const rows = Object.entries(VERBS).map(([v, { summary }]) => `  ${v.padEnd(10)} ${summary}`);
  return ['Usage: berth COMMAND [OPTIONS]', '', 'Commands:', ...rows, '', "Run 'berth COMMAND --help' for a command's options."].join('\n');
}

async function run(): Promise<number> {
  const [verb, ...rest] = process.argv.slice(2);
  if (verb === undefined || verb === '--help' || verb === '-h' || verb === 'help') {
    process.stdout.write(usage() + '\n');
    return verb === undefined ? 1 : 0;
  }
  if (verb === '--version' || verb === 'version') {
    const { readFile } = await import('node:fs/promises');
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`berth ${pkg.version}\n`);
    return 0;
  }
  const entry = VERBS[verb];
  if (!entry) {
    process.stderr.write(`berth: unknown command ${JSON.stringify(verb)}\n${usage()}\n`);
    return 125;
  }
  const mod = await entry.load();
  return mod.main(rest);
}

run().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`berth: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 125;
  },
);
