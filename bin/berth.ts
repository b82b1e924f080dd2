#!/usr/bin/env node
// The `berth` entry point. Each verb lives in its own module and is imported only when used:
// start-up time counts (`berth run` races podman), and the registry's Koa stack costs ~45 ms.

type VerbModule = { main(argv: string[]): Promise<number> };

const VERBS: Record<string, { summary: string; load: () => Promise<VerbModule> }> = {
  serve: { summary: 'Run the registry (OCI Distribution API) on this machine', load: () => import('../server/cli.js') },
  login: { summary: 'Log in to a registry', load: () => import('../client/cli/login.js') },
  logout: { summary: 'Log out from a registry', load: async () => ({ main: (await import('../client/cli/login.js')).logout }) },
  pull: { summary: 'Download an image from a registry', load: () => import('../client/cli/pull.js') },
  push: { summary: 'Upload an image to a registry', load: () => import('../client/cli/push.js') },
  images: { summary: 'List images', load: async () => ({ main: (await import('../client/cli/local-images.js')).images }) },
  tag: { summary: 'Create a tag that refers to an image', load: async () => ({ main: (await import('../client/cli/local-images.js')).tag }) },
  rmi: { summary: 'Remove images', load: async () => ({ main: (await import('../client/cli/local-images.js')).rmi }) },
  inspect: { summary: 'Show an image as JSON', load: async () => ({ main: (await import('../client/cli/local-images.js')).inspect }) },
  history: { summary: 'Show the history of an image', load: async () => ({ main: (await import('../client/cli/local-images.js')).history }) },
  image: { summary: 'Manage images (ls, rm, inspect, history, tag, prune)', load: async () => ({ main: (await import('../client/cli/local-images.js')).image }) },
  system: { summary: 'Local store information (df)', load: async () => ({ main: (await import('../client/cli/local-images.js')).system }) },
  save: { summary: 'Save images to a tar archive (docker-archive or OCI layout)', load: () => import('../client/cli/save.js') },
  load: { summary: 'Load images from a tar archive', load: () => import('../client/cli/load.js') },
  import: { summary: 'Create an image from a rootfs tarball', load: () => import('../client/cli/import.js') },
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
