#!/usr/bin/env node
// The `berth` entry point. Each verb lives in its own module and is imported only when used:
// start-up time counts (`berth run` races podman), and the registry's Koa stack costs ~45 ms.

type VerbModule = { main(argv: string[]): Promise<number> };

const VERBS: Record<string, { summary: string; load: () => Promise<VerbModule> }> = {
  serve: { summary: 'Run the registry (OCI Distribution API) on this machine', load: () => import('../server/cli.js') },
  fsck: { summary: "Check a registry's stored data; --repair removes dangling metadata", load: () => import('../server/fsck-cli.js') },
  login: { summary: 'Log in to a registry', load: () => import('../client/cli/login.js') },
  logout: { summary: 'Log out from a registry', load: async () => ({ main: (await import('../client/cli/login.js')).logout }) },
  pull: { summary: 'Download an image from a registry', load: () => import('../client/cli/pull.js') },
  push: { summary: 'Upload an image to a registry', load: () => import('../client/cli/push.js') },
  search: { summary: 'Search a registry for repositories', load: () => import('../client/cli/search.js') },
  images: { summary: 'List images', load: async () => ({ main: (await import('../client/cli/local-images.js')).images }) },
  tag: { summary: 'Create a tag that refers to an image', load: async () => ({ main: (await import('../client/cli/local-images.js')).tag }) },
  rmi: { summary: 'Remove images', load: async () => ({ main: withLayerCleanup(refusingImagesInUse((await import('../client/cli/local-images.js')).rmi, 0), 'removed') }) },
  history: { summary: 'Show the history of an image', load: async () => ({ main: (await import('../client/cli/local-images.js')).history }) },
  image: { summary: 'Manage images (ls, rm, inspect, history, tag, prune)', load: () => imageVerb() },
  system: { summary: 'Local store information (df)', load: async () => ({ main: (await import('../client/cli/local-images.js')).system }) },
  save: { summary: 'Save images to a tar archive (docker-archive or OCI layout)', load: () => import('../client/cli/save.js') },
  load: { summary: 'Load images from a tar archive', load: () => import('../client/cli/load.js') },
  import: { summary: 'Create an image from a rootfs tarball', load: () => import('../client/cli/import.js') },
  build: { summary: 'Build an image from a Dockerfile', load: () => import('../build/cli.js') },
  run: { summary: 'Create and run a new container from an image', load: () => import('../runtime/cli-run.js') },
  exec: { summary: 'Run a command in a running container', load: () => import('../runtime/cli-exec.js') },
  ps: { summary: 'List containers', load: () => verb('ps') },
  start: { summary: 'Start stopped containers (detached)', load: () => verb('start') },
  stop: { summary: 'Stop running containers (stop signal, then SIGKILL)', load: () => verb('stop') },
  restart: { summary: 'Restart containers', load: () => verb('restart') },
  kill: { summary: 'Send a signal to running containers', load: () => verb('kill') },
  rm: { summary: 'Remove containers', load: () => verb('rm') },
  logs: { summary: "Show a detached container's output", load: () => verb('logs') },
  wait: { summary: 'Wait for containers to stop, print their exit codes', load: () => verb('wait') },
  inspect: { summary: 'Show containers or images as JSON', load: () => inspectVerb() },
  top: { summary: 'Show the processes of a container', load: () => verb('top') },
  commit: { summary: "Make a container's changes a new image", load: () => verb('commit') },
  stats: { summary: 'Show CPU, memory and process counts of running containers', load: () => verb('stats') },
  cp: { summary: 'Copy files or folders between a container and the host', load: async () => ({ main: (await import('../runtime/cli-cp.js')).cp }) },
  export: { summary: "Export a container's filesystem as a tar archive", load: async () => ({ main: (await import('../runtime/cli-cp.js')).exportVerb }) },
  diff: { summary: "Show the changes in a container's filesystem", load: () => verb('diff') },
  container: { summary: 'Manage containers (prune, ls, and the verbs above)', load: () => containerVerb() },
  volume: { summary: 'Manage named volumes', load: () => import('../runtime/cli-volume.js') },
  network: { summary: 'Manage networks (ls, create, rm, inspect, connect, disconnect, prune)', load: () => import('../runtime/cli-network.js') },
  port: { summary: 'List the published ports of a container', load: async () => ({ main: (await import('../runtime/cli-network.js')).port }) },
};

/** The container verbs other than run and exec share one small module. */
function verb(name: string): Promise<VerbModule> {
  return import('../runtime/cli-containers.js').then((m) => ({ main: (argv: string[]) => m.runVerb(name, argv) }));
}

/**
 * `rmi`, `image rm` and `image prune` remove images from the local store (client); the trees the
 * runtime unpacked from their layers go with them (runtime/layer-gc.ts): of the layers removed,
 * or, for prune, of every layer no image or container uses.
 */
function withLayerCleanup(main: VerbModule['main'], which: 'removed' | 'unused'): VerbModule['main'] {
  return async (argv) => {
    const [gc, { LocalImageStore }, { RuntimeLayout }] = await Promise.all([import('../runtime/layer-gc.js'), import('../client/store/image-store.js'), import('../runtime/runtime-layout.js')]);
    const layout = new RuntimeLayout();
    const store = await LocalImageStore.open(layout.root);
    const before = which === 'removed' ? await gc.storedLayerDigests(store) : undefined;
    const code = await main(argv);
    try {
      if (before) {
        const after = await gc.storedLayerDigests(store);
        await gc.dropUnpackedLayers(layout, [...before].filter((d) => !after.has(d)));
      } else {
        await gc.dropUnpackedLayers(layout);
      }
    } catch (err) {
      process.stderr.write(`berth: warning: unpacked layers not removed: ${(err as Error).message}\n`);
    }
    return code;
  };
}

/**
 * `rmi` without -f leaves out, with docker's conflict line, every image a container was created
 * from (runtime/image-use.ts); the others are removed. `skip` leading words (`image rm`).
 */
function refusingImagesInUse(main: VerbModule['main'], skip: number): VerbModule['main'] {
  return async (argv) => {
    const args = argv.slice(skip);
    if (args.some((a) => a === '-f' || a === '--force' || a === '-h' || a === '--help')) return main(argv);
    const inputs = args.filter((a) => !a.startsWith('-'));
    const [{ rmiConflicts }, { LocalImageStore }, { RuntimeLayout }] = await Promise.all([import('../runtime/image-use.js'), import('../client/store/image-store.js'), import('../runtime/runtime-layout.js')]);
    const layout = new RuntimeLayout();
    const conflicts = await rmiConflicts(layout, await LocalImageStore.open(layout.root), inputs);
    for (const message of conflicts.values()) process.stderr.write(`berth rmi: ${message}\n`);
    if (conflicts.size === 0) return main(argv);
    const rest = args.filter((a) => !conflicts.has(a));
    if (!rest.some((a) => !a.startsWith('-'))) return 1;
    return Math.max(1, await main([...argv.slice(0, skip), ...rest]));
  };
}

function imageVerb(): Promise<VerbModule> {
  return import('../client/cli/local-images.js').then((m) => ({
    main: (argv: string[]) => (argv[0] === 'rm' ? withLayerCleanup(refusingImagesInUse(m.image, 1), 'removed')(argv) : argv[0] === 'prune' ? withLayerCleanup(m.image, 'unused')(argv) : m.image(argv)),
  }));
}

/** `berth inspect`: containers when every argument names one, images otherwise (docker's order). */
function inspectVerb(): Promise<VerbModule> {
  return Promise.resolve({
    main: async (argv: string[]) => {
      const containers = await import('../runtime/cli-containers.js');
      if (await containers.allContainers(argv)) return containers.runVerb('inspect', argv);
      return (await import('../client/cli/local-images.js')).inspect(argv);
    },
  });
}

/** `berth container SUB …`: docker's long forms (container ls, container rm, container prune, …). */
function containerVerb(): Promise<VerbModule> {
  return Promise.resolve({
    main: async ([sub, ...rest]: string[]) => {
      const name = sub === 'ls' || sub === 'list' ? 'ps' : (sub ?? '');
      if (name === 'run' || name === 'exec') return (await VERBS[name]!.load()).main(rest);
      return (await import('../runtime/cli-containers.js')).runVerb(name, rest);
    },
  });
}

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
