// The command table: every berth verb and subcommand, its usage, flags and operands, declared the
// same way (commander, through bin/command-line.ts for docker's grammar). A verb's definition runs
// only when that verb is invoked, and its action imports only the module that does the work (the
// layer's cli/ folder): start-up time counts.
import { BerthCommand, configure } from './command-line.js';

export interface VerbEntry {
  /** One line for `berth --help` and the verb's own help. */
  summary: string;
  /** Declares usage, operands, flags and action on `cmd` (created as `berth NAME`). */
  define(cmd: BerthCommand): unknown;
}

const containers = () => import('../runtime/cli/containers.js');
const localImages = () => import('../client/cli/local-images.js');
const networks = () => import('../runtime/cli/network.js');
const volumes = () => import('../runtime/cli/volume.js');

type Flags = Record<string, never> & import('../runtime/cli/containers.js').ContainerFlags;

/** A container verb over CONTAINER [CONTAINER...] (runtime/cli/containers.ts). */
function overContainers(verb: string, usage = '[OPTIONS] CONTAINER [CONTAINER...]') {
  return (cmd: BerthCommand) =>
    cmd
      .usage(usage)
      .argument('<containers...>')
      .action(async (refs: string[], o: Flags) => (await containers()).runVerb(verb, refs, o));
}

/** --format's help (client/cli/format.ts: Go templates as docker's). */
const FORMAT_LIST = "Format output using a Go template ('table …' adds headers and aligns columns; 'json': one JSON object per line)";
const FORMAT_INSPECT = "Format output using a Go template ({{.State.Status}}, {{json .Config}}; 'json': one JSON array)";

/** `image inspect`, `network inspect`, `volume inspect`: OBJECT [OBJECT...] and --format, then `run`. */
function inspectCommand(noun: string, run: (names: string[], o: { format?: string }) => Promise<number>) {
  return (cmd: BerthCommand) =>
    cmd
      .usage(`[OPTIONS] ${noun} [${noun}...]`)
      .argument('<names...>')
      .option('-f, --format <string>', FORMAT_INSPECT)
      .action(run);
}

const CONFIG_FLAG = ['--config <file>', 'Client config file (daemon.json keys; default $BERTH_CONFIG)'] as const;

/**
 * `rmi`, `image rm` and `image prune` remove images from the local store (client); the trees the
 * runtime unpacked from their layers go with them (runtime/layer-gc.ts): of the layers removed,
 * or, for prune, of every layer no image or container uses.
 */
async function withLayerCleanup(which: 'removed' | 'unused', work: () => Promise<number>): Promise<number> {
  const [gc, { LocalImageStore }, { RuntimeLayout }] = await Promise.all([import('../runtime/layer-gc.js'), import('../client/store/image-store.js'), import('../runtime/runtime-layout.js')]);
  const layout = new RuntimeLayout();
  const store = await LocalImageStore.open(layout.root);
  const before = which === 'removed' ? await gc.storedLayerDigests(store) : undefined;
  const code = await work();
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
}

/**
 * `rmi` without -f leaves out, with docker's conflict line, every image a container was created
 * from (runtime/image-use.ts); the others are removed.
 */
async function removeImages(inputs: string[], o: { force?: boolean }): Promise<number> {
  const { rmi } = await localImages();
  if (o.force) return withLayerCleanup('removed', () => rmi(inputs, o));
  const [{ rmiConflicts }, { LocalImageStore }, { RuntimeLayout }] = await Promise.all([import('../runtime/image-use.js'), import('../client/store/image-store.js'), import('../runtime/runtime-layout.js')]);
  const layout = new RuntimeLayout();
  const conflicts = await rmiConflicts(layout, await LocalImageStore.open(layout.root), inputs);
  for (const message of conflicts.values()) process.stderr.write(`berth rmi: ${message}\n`);
  const rest = inputs.filter((a) => !conflicts.has(a));
  if (rest.length === 0) return 1;
  return withLayerCleanup('removed', async () => Math.max(conflicts.size > 0 ? 1 : 0, await rmi(rest, o)));
}

const image = {
  ls: (cmd: BerthCommand) =>
    cmd
      .usage('[OPTIONS] [REPOSITORY[:TAG]]')
      .argument('[repository]')
      .option('-a, --all', 'Show all images, including platform manifests of multi-platform images')
      .option('-q, --quiet', 'Only show image IDs')
      .option('--digests', 'Show digests')
      .option('--no-trunc', "Don't truncate output")
      .list('-f, --filter <filter>', 'Filter output: dangling=true|false, reference=PATTERN, before=IMAGE, since=IMAGE (repeatable)')
      .option('--format <string>', FORMAT_LIST)
      .action(async (repository: string | undefined, o) => (await localImages()).images(repository, o)),
  rm: (cmd: BerthCommand) =>
    cmd
      .usage('[OPTIONS] IMAGE [IMAGE...]')
      .argument('<images...>')
      .option('-f, --force', 'Force removal of an image referenced by several repositories or used by a container')
      .action((inputs: string[], o: { force?: boolean }) => removeImages(inputs, o)),
  inspect: inspectCommand('IMAGE', async (inputs, o) => (await localImages()).inspect(inputs, o)),
  history: (cmd: BerthCommand) =>
    cmd
      .usage('[OPTIONS] IMAGE')
      .argument('<image>')
      .option('--no-trunc', "Don't truncate output")
      .option('-q, --quiet', 'Only show image IDs')
      .option('--format <string>', FORMAT_LIST)
      .action(async (input: string, o) => (await localImages()).history(input, o)),
  tag: (cmd: BerthCommand) =>
    cmd
      .usage('SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]')
      .argument('<source>')
      .argument('<target>')
      .action(async (src: string, dst: string) => (await localImages()).tag(src, dst)),
  prune: (cmd: BerthCommand) =>
    cmd
      .usage('[OPTIONS]')
      .option('-a, --all', 'Remove all images not used by a container, not just dangling ones')
      .option('-f, --force', 'Do not prompt for confirmation (berth never prompts)')
      .action(async (o: { all?: boolean }) => withLayerCleanup('unused', async () => (await localImages()).prune(o))),
};

const network = {
  ls: (cmd: BerthCommand) =>
    cmd
      .usage('[OPTIONS]')
      .option('-q, --quiet', 'Only display network IDs')
      .option('--no-trunc', 'Do not truncate the output')
      .list('-f, --filter <filter>', 'Provide filter values (name=, id=, driver=, label=)')
      .option('--format <string>', FORMAT_LIST)
      .action(async (o: { quiet?: boolean; trunc: boolean; filter: string[]; format?: string }) => (await networks()).ls({ quiet: o.quiet, noTrunc: !o.trunc, filter: o.filter, format: o.format })),
  create: (cmd: BerthCommand) =>
    cmd
      .usage('[OPTIONS] NETWORK')
      .argument('<network>')
      .option('-d, --driver <string>', 'Driver to manage the network (bridge)')
      .option('--subnet <string>', 'Subnet in CIDR format, e.g. 10.89.1.0/24 (default: the next free one)')
      .option('--gateway <string>', 'IPv4 gateway of the subnet (default: its first address)')
      .list('--label <label>', 'Set metadata on the network (KEY=VALUE)')
      .action(async (name: string, o: { driver?: string; subnet?: string; gateway?: string; label: string[] }) => {
        const n = await networks();
        return n.create({ name, driver: o.driver, subnet: o.subnet, gateway: o.gateway, labels: n.parseLabels(o.label) });
      }),
  rm: (cmd: BerthCommand) =>
    cmd
      .usage('NETWORK [NETWORK...]')
      .argument('<networks...>')
      .action(async (refs: string[]) => (await networks()).rm(refs)),
  inspect: inspectCommand('NETWORK', async (refs, o) => (await networks()).inspect(refs, o)),
  connect: (cmd: BerthCommand) =>
    cmd
      .usage('[OPTIONS] NETWORK CONTAINER')
      .argument('<network>')
      .argument('<container>')
      .list('--alias <alias>', 'Add a network-scoped alias for the container')
      .option('--ip <string>', 'IPv4 address (e.g. 172.30.100.104)')
      .action(async (net: string, container: string, o: { alias: string[]; ip?: string }) => (await networks()).connect(net, container, { aliases: o.alias, ip: o.ip })),
  disconnect: (cmd: BerthCommand) =>
    cmd
      .usage('[OPTIONS] NETWORK CONTAINER')
      .argument('<network>')
      .argument('<container>')
      .option('-f, --force', 'Force the container to disconnect from a network')
      .action(async (net: string, container: string) => (await networks()).disconnect(net, container)),
  prune: (cmd: BerthCommand) =>
    cmd
      .usage('[OPTIONS]')
      .option('-f, --force', 'Do not prompt for confirmation (berth never prompts)')
      .action(async (o: { force?: boolean }) => (await networks()).prune(o)),
};

const volume = {
  create: (cmd: BerthCommand) =>
    cmd
      .usage('[OPTIONS] [VOLUME]')
      .argument('[volume]')
      .action(async (name: string | undefined) => (await volumes()).volumeVerb('create', name === undefined ? [] : [name], {})),
  ls: (cmd: BerthCommand) =>
    cmd
      .usage('[OPTIONS]')
      .option('-q, --quiet', 'Only display volume names')
      .option('--format <string>', FORMAT_LIST)
      .action(async (o: { quiet?: boolean; format?: string }) => (await volumes()).volumeVerb('ls', [], o)),
  inspect: inspectCommand('VOLUME', async (names, o) => (await volumes()).volumeVerb('inspect', names, o)),
  rm: (cmd: BerthCommand) =>
    cmd
      .usage('[OPTIONS] VOLUME [VOLUME...]')
      .argument('<volumes...>')
      .option('-f, --force', 'Do not fail on a volume that does not exist')
      .action(async (names: string[], o: { force?: boolean }) => (await volumes()).volumeVerb('rm', names, o)),
  prune: (cmd: BerthCommand) =>
    cmd
      .usage('[OPTIONS]')
      .option('-a, --all', 'Remove all unused volumes, not just anonymous ones')
      .option('-f, --force', 'Do not prompt for confirmation (berth never prompts)')
      .action(async (o: { all?: boolean; force?: boolean }) => (await volumes()).volumeVerb('prune', [], o)),
};

/** `berth info` and `berth system info` (runtime/cli/info.ts). */
function info(cmd: BerthCommand): BerthCommand {
  return cmd
    .usage('[OPTIONS]')
    .option('-f, --format <string>', "Format the output using a Go template ('json': JSON)")
    .option(...CONFIG_FLAG)
    .action(async (o: { format?: string; config?: string }) => (await import('../runtime/cli/info.js')).main(o));
}

/** Subcommands of a group: `entries` by name, with docker's aliases (ls/list, rm/remove). */
function group(cmd: BerthCommand, entries: Record<string, [string, (c: BerthCommand) => unknown]>): void {
  cmd.usage('COMMAND');
  const aliases: Record<string, string[]> = { ls: ['list'], rm: ['remove'] };
  for (const [name, [summary, define]] of Object.entries(entries)) {
    const sub = cmd.command(name).description(summary);
    for (const a of aliases[name] ?? []) sub.alias(a);
    define(sub as BerthCommand);
  }
}

/** The container verbs, also under `berth container` (docker's long forms). */
const CONTAINER_VERBS = ['run', 'exec', 'ps', 'start', 'stop', 'restart', 'kill', 'rm', 'logs', 'wait', 'inspect', 'top', 'commit', 'stats', 'cp', 'export', 'diff', 'port'] as const;

export const VERBS: Record<string, VerbEntry> = {
  // ---- the registry (server/)
  serve: {
    summary: 'Run the registry (OCI Distribution API) on this machine',
    define: async (cmd) => {
      (await import('../server/cli.js')).defineServe(cmd.usage('[OPTIONS]'));
      const users = cmd.command('user').description('Manage the users file of --auth htpasswd|token (add, passwd, rm, ls)').usage('COMMAND');
      (await import('../server/auth/user-cli.js')).defineUsers(users);
      const retention = cmd.command('retention').description("Apply the config file's retention rules once").usage('[OPTIONS]');
      (await import('../server/retention-cli.js')).defineRetention(retention);
    },
  },
  fsck: {
    summary: "Check a registry's stored data; --repair removes dangling metadata",
    define: async (cmd) => (await import('../server/fsck-cli.js')).defineFsck(cmd.usage('[OPTIONS]')),
  },

  version: {
    summary: 'Show the berth version information (and the registry on 127.0.0.1:5000 or $BERTH_HOST)',
    define: (cmd) =>
      cmd
        .usage('[OPTIONS]')
        .option('-f, --format <string>', "Format the output using a Go template ('json': JSON)")
        .action(async (o: { format?: string }) => (await import('../client/cli/version.js')).main(o)),
  },
  info: { summary: 'Display system-wide information', define: (cmd) => info(cmd) },

  // ---- images (client/)
  login: {
    summary: 'Log in to a registry',
    define: (cmd) =>
      cmd
        .usage('[OPTIONS] [SERVER]')
        .argument('[server]', 'Registry host[:port] (default docker.io)')
        .option('-u, --username <user>', 'Username')
        .option('-p, --password <password>', 'Password (prefer --password-stdin)')
        .option('--password-stdin', 'Read the password from stdin')
        .option(...CONFIG_FLAG)
        .action(async (server: string | undefined, o) => (await import('../client/cli/login.js')).main(server, o)),
  },
  logout: {
    summary: 'Log out from a registry',
    define: (cmd) =>
      cmd
        .usage('[SERVER]')
        .argument('[server]', 'Registry host[:port] (default docker.io)')
        .action(async (server: string | undefined) => (await import('../client/cli/login.js')).logout(server)),
  },
  pull: {
    summary: 'Download an image from a registry',
    define: (cmd) =>
      cmd
        .usage('[OPTIONS] NAME[:TAG|@DIGEST]')
        .argument('<image>')
        .option('--platform <os/arch[/variant]>', 'Platform to pull from a multi-platform image (default: $DOCKER_DEFAULT_PLATFORM, else this host)')
        .option('-a, --all-platforms', 'Pull every platform of a multi-platform image')
        .option('-q, --quiet', 'Print only the image reference')
        .option(...CONFIG_FLAG)
        .action(async (name: string, o) => (await import('../client/cli/pull.js')).main(name, o)),
  },
  push: {
    summary: 'Upload an image to a registry',
    define: (cmd) =>
      cmd
        .usage('[OPTIONS] NAME[:TAG]')
        .argument('<image>')
        .option('-q, --quiet', 'Print nothing but errors')
        .option(...CONFIG_FLAG)
        .action(async (name: string, o) => (await import('../client/cli/push.js')).main(name, o)),
  },
  search: {
    summary: 'Search a registry for repositories',
    define: (cmd) =>
      cmd
        .usage('[OPTIONS] [REGISTRY/]TERM')
        .argument('<term>', '[REGISTRY/]TERM: docker.io unless the first segment is a host (contains . or :, or is localhost)')
        .option('--limit <n>', 'Max number of results (1-100)', '25')
        .list('-f, --filter <filter>', 'Filter output: stars=N, is-official=BOOL, is-automated=BOOL')
        .option('--format <string>', FORMAT_LIST)
        .option('--no-trunc', "Don't truncate descriptions")
        .option(...CONFIG_FLAG)
        .action(async (term: string, o) => (await import('../client/cli/search.js')).main(term, o)),
  },
  images: { summary: 'List images', define: image.ls },
  tag: { summary: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE', define: image.tag },
  rmi: { summary: 'Remove one or more images', define: image.rm },
  history: { summary: 'Show the history of an image', define: image.history },
  image: {
    summary: 'Manage images (ls, rm, inspect, history, tag, prune, pull, push, save, load, import)',
    define: async (cmd) => {
      group(cmd, {
        ls: ['List images', image.ls],
        rm: ['Remove one or more images', image.rm],
        inspect: ['Display detailed information on one or more images', image.inspect],
        history: ['Show the history of an image', image.history],
        tag: ['Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE', image.tag],
        prune: ['Remove unused images', image.prune],
      });
      for (const name of ['pull', 'push', 'save', 'load', 'import'] as const) await VERBS[name]!.define(cmd.command(name).description(VERBS[name]!.summary) as BerthCommand);
    },
  },
  save: {
    summary: 'Save one or more images to a tar archive (streamed to stdout by default)',
    define: (cmd) =>
      cmd
        .usage('[OPTIONS] IMAGE [IMAGE...]')
        .argument('<images...>')
        .option('-o, --output <file>', 'Write to a file instead of stdout')
        .option('--format <format>', 'docker (docker save / docker-archive) or oci (OCI image layout)', 'docker')
        .action(async (inputs: string[], o) => (await import('../client/cli/save.js')).main(inputs, o)),
  },
  load: {
    summary: 'Load images from a tar archive (docker save format or OCI layout; stdin by default)',
    define: (cmd) =>
      cmd
        .usage('[OPTIONS]')
        .option('-i, --input <file>', 'Read from a tar archive file instead of stdin')
        .option('-q, --quiet', 'Suppress the load output')
        .action(async (o) => (await import('../client/cli/load.js')).main(o)),
  },
  import: {
    summary: 'Create an image from a rootfs tarball (plain or gzip)',
    define: (cmd) =>
      cmd
        .usage('[OPTIONS] FILE|- [REPOSITORY[:TAG]]')
        .argument('<file>', 'Tarball path, or - for stdin')
        .argument('[repository]', 'REPOSITORY[:TAG] to tag the image')
        .option('-m, --message <text>', 'Commit message for the imported image')
        .option('--platform <os/arch[/variant]>', 'Platform recorded in the image config (default: this host)')
        .action(async (file: string, repository: string | undefined, o) => (await import('../client/cli/import.js')).main(file, repository, o)),
  },
  build: {
    summary: 'Build an image from a Dockerfile (daemonless: RUN steps run in berth\'s own runtime)',
    define: (cmd) =>
      cmd
        .usage('[OPTIONS] PATH | -')
        .argument('<context>')
        .list('-t, --tag <list>', 'Name and optionally a tag (NAME[:TAG]); repeatable')
        .option('-f, --file <string>', 'Name of the Dockerfile (default: PATH/Dockerfile; - for stdin)')
        .list('--build-arg <list>', 'Set build-time variables (K=V, or K from this environment)')
        .option('--target <string>', 'Build the stage of this name (and only what it needs)')
        .option('--no-cache', 'Do not use the step cache')
        .option('--pull', 'Pull base images even when stored')
        .option('--platform <string>', 'os/arch[/variant] of the base images and of the image built')
        .list('--label <list>', 'Set metadata for the image (K=V)')
        .option('--network <string>', 'Network of RUN steps: bridge (default), host or none')
        .option('--progress <string>', 'auto (default: tty on a terminal), plain or tty')
        .option('-q, --quiet', 'Print only the image ID')
        .list('--secret <list>', 'A secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR (never in the image)')
        .option('--iidfile <string>', 'Write the image ID to the file')
        .option('--push', 'Push the tags once built')
        .option('--format <string>', 'docker (default) or oci: the manifest and config media types')
        .option('--rm', "Remove intermediate containers after a successful build (berth always does; docker's flag)")
        .option('--force-rm', 'Always remove intermediate containers (berth always does)')
        .action(async (context: string, o) => (await import('../build/cli.js')).main(context, o)),
  },
  builder: {
    summary: 'Manage the build cache (prune)',
    define: (cmd) =>
      group(cmd, {
        prune: [
          'Remove the build cache: step records, the layers only they use, and with --all the RUN cache mounts',
          (sub: BerthCommand) =>
            sub
              .usage('[OPTIONS]')
              .option('-a, --all', 'Also remove the RUN --mount=type=cache folders')
              .option('-f, --force', 'Do not prompt for confirmation')
              .action(async (o: { all?: boolean; force?: boolean }) => (await import('../build/prune.js')).main(o)),
        ],
      }),
  },
  system: {
    summary: 'Local store information (df, info)',
    define: (cmd) =>
      group(cmd, {
        df: ['Show disk usage of the local image store', (c) => c.usage('[OPTIONS]').option('--format <string>', FORMAT_LIST).action(async (o: { format?: string }) => (await localImages()).systemDf(o))],
        info: ['Display system-wide information', info],
      }),
  },

  // ---- containers (runtime/)
  run: {
    summary: 'Create and run a new container from an image (pulled when missing; oci:DIR[:TAG] for an OCI layout)',
    define: (cmd) =>
      cmd
        .helpOption('--help', 'Print usage') // -h is --hostname, as docker's
        .usage('[OPTIONS] IMAGE [COMMAND] [ARG...]')
        .argument('<image>')
        .argument('[command...]')
        .flagsBeforeOperands()
        .option('-d, --detach', 'Run in the background and print the container ID')
        .option('--rm', 'Remove the container when it exits')
        .option('--name <string>', 'Container name')
        .list('-e, --env <list>', 'Set environment variables (K=V, or K from this environment)')
        .list('--env-file <list>', 'Read environment variables from a file')
        .list('-v, --volume <list>', 'Bind mount HOST:CONTAINER[:ro], or volume NAME:CONTAINER[:ro]')
        .list('--mount <list>', 'type=bind|volume,source=HOST|NAME,target=CONTAINER[,readonly]')
        .option('-w, --workdir <string>', 'Working directory inside the container')
        .option('-u, --user <string>', 'Username or UID (format: <name|uid>[:<group|gid>])')
        .option('-h, --hostname <string>', 'Container host name')
        .option('--entrypoint <string>', "Overwrite the image's ENTRYPOINT")
        .option('-m, --memory <bytes>', 'Memory limit (e.g. 512m); over it the process is OOM-killed')
        .option('--cpus <decimal>', 'Number of CPUs')
        .option('--pids-limit <int>', 'Process limit')
        .option('--read-only', 'Mount the root filesystem read-only')
        .option('--init', 'Run an init as PID 1 that forwards signals and reaps zombies')
        .option('--network <string>', "none (default; bridge with -p), host, bridge (berth0), container:NAME (its network namespace), or a network made by 'berth network create'")
        .option('--net <string>', 'Same as --network')
        .list('--network-alias <list>', 'Another name the container has on its user network')
        .option('--ip <string>', 'Its IPv4 address on its user network')
        .list('--volumes-from <list>', 'Mount the volumes and binds of a container: NAME[:ro|rw]')
        .list('-p, --publish <list>', "Publish a container's port: [IP:]HOSTPORT:CONTAINERPORT[/tcp|/udp] (bridge)")
        .option('--platform <string>', 'Run the image for os/arch[/variant] (default: $DOCKER_DEFAULT_PLATFORM, else this host)')
        .option('--privileged', 'All capabilities, no seccomp profile, no masked or read-only /proc and /sys paths')
        .list('--cap-add <list>', 'Add Linux capabilities (CHOWN or CAP_CHOWN, ALL)')
        .list('--cap-drop <list>', 'Drop Linux capabilities (ALL drops all but those added)')
        .list('--security-opt <list>', 'seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false]')
        .option('-i, --interactive', 'Keep STDIN open')
        .option('-t, --tty', "Use the caller's terminal")
        .action(async (img: string, args: string[], o) => (await import('../runtime/cli/run.js')).run(img, args, o)),
  },
  exec: {
    summary: 'Run a command in a running container',
    define: (cmd) =>
      cmd
        .usage('[OPTIONS] CONTAINER COMMAND [ARG...]')
        .argument('<container>')
        .argument('<command...>')
        .flagsBeforeOperands()
        .option('-i, --interactive', 'Keep STDIN open')
        .option('-t, --tty', "Use the caller's terminal")
        .list('-e, --env <list>', 'Set environment variables')
        .option('-w, --workdir <string>', 'Working directory inside the container')
        .option('-u, --user <string>', 'Username or UID (format: <name|uid>[:<group|gid>])')
        .option('--privileged', 'Give extended privileges to the command')
        .action(async (ref: string, args: string[], o) => (await import('../runtime/cli/exec.js')).exec(ref, args, o)),
  },
  ps: {
    summary: 'List containers',
    define: (cmd) =>
      cmd
        .usage('[OPTIONS]')
        .option('-a, --all', 'Show all containers (default shows just running)')
        .option('-q, --quiet', 'Only display container IDs')
        .option('--no-trunc', "Don't truncate output")
        .option('--format <string>', FORMAT_LIST)
        .action(async (o: Flags) => (await containers()).runVerb('ps', [], o)),
  },
  start: { summary: 'Start stopped containers (detached)', define: overContainers('start') },
  stop: {
    summary: 'Stop running containers (stop signal, then SIGKILL)',
    define: (cmd) => overContainers('stop')(cmd.option('-t, --time <seconds>', 'Seconds to wait before killing the container', '10')),
  },
  restart: {
    summary: 'Restart containers',
    define: (cmd) => overContainers('restart')(cmd.option('-t, --time <seconds>', 'Seconds to wait before killing the container', '10')),
  },
  kill: {
    summary: 'Send a signal to running containers',
    define: (cmd) => overContainers('kill')(cmd.option('-s, --signal <string>', 'Signal to send to the container (default SIGKILL)')),
  },
  rm: {
    summary: 'Remove containers',
    define: (cmd) => overContainers('rm')(cmd.option('-f, --force', 'Force the removal of a running container (uses SIGKILL)')),
  },
  logs: {
    summary: "Show a container's output",
    define: (cmd) =>
      cmd
        .usage('[OPTIONS] CONTAINER')
        .argument('<container>')
        .option('-f, --follow', 'Follow log output')
        .option('-n, --tail <string>', 'Number of lines to show from the end of the logs (default all)')
        .option('-t, --timestamps', 'Show timestamps')
        .action(async (ref: string, o: Flags) => (await containers()).runVerb('logs', [ref], o)),
  },
  wait: { summary: 'Wait for containers to stop, print their exit codes', define: overContainers('wait') },
  inspect: {
    summary: 'Show containers or images as JSON',
    define: (cmd) =>
      cmd
        .usage('[OPTIONS] NAME|ID [NAME|ID...]')
        .argument('<names...>')
        .option('-f, --format <string>', FORMAT_INSPECT)
        .option('--type <string>', 'Only inspect objects of this type: container or image')
        .action(async (names: string[], o: Flags & { type?: string }) => {
          // docker's order: containers when every name is one, images otherwise.
          const c = o.type === 'image' ? undefined : await containers();
          if (c && (o.type === 'container' || (await c.allContainers(names)))) return c.runVerb('inspect', names, o);
          return (await localImages()).inspect(names, o);
        }),
  },
  top: { summary: 'Show the processes of a container', define: overContainers('top', 'CONTAINER') },
  commit: {
    summary: "Make a container's changes a new image",
    define: (cmd) =>
      cmd
        .usage('[OPTIONS] CONTAINER [REPOSITORY[:TAG] | oci:DIR[:TAG]]')
        .argument('<container>')
        .argument('[repository]')
        .option('-m, --message <string>', 'Commit message')
        .option('-a, --author <string>', 'Author (e.g. "John Hannibal Smith <hannibal@a-team.com>")')
        .action(async (ref: string, target: string | undefined, o: Flags) => (await containers()).runVerb('commit', target === undefined ? [ref] : [ref, target], o)),
  },
  stats: {
    summary: 'Show CPU, memory and process counts of running containers',
    define: (cmd) =>
      cmd
        .usage('[OPTIONS] [CONTAINER...]')
        .argument('[containers...]')
        .option('-a, --all', 'Show all containers (default shows just running)')
        .option('--no-stream', 'Print one result and exit')
        .option('--format <string>', FORMAT_LIST)
        .action(async (refs: string[], o: Flags) => (await containers()).runVerb('stats', refs, o)),
  },
  cp: {
    summary: 'Copy files or folders between a container and the host',
    define: (cmd) =>
      cmd
        .usage('[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n       berth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH')
        .argument('<source>')
        .argument('<destination>')
        .action(async (src: string, dest: string) => (await import('../runtime/cli/cp.js')).cp(src, dest)),
  },
  export: {
    summary: "Export a container's filesystem as a tar archive",
    define: (cmd) =>
      cmd
        .usage('[OPTIONS] CONTAINER')
        .argument('<container>')
        .option('-o, --output <file>', 'Write to a file, instead of STDOUT')
        .action(async (ref: string, o: { output?: string }) => (await import('../runtime/cli/cp.js')).exportVerb(ref, o)),
  },
  diff: { summary: "Show the changes in a container's filesystem", define: overContainers('diff', 'CONTAINER') },
  port: {
    summary: 'List the published ports of a container',
    define: (cmd) =>
      cmd
        .usage('CONTAINER [PRIVATE_PORT[/PROTO]]')
        .argument('<container>')
        .argument('[port]')
        .action(async (ref: string, port: string | undefined) => (await networks()).port(ref, port)),
  },
  container: {
    summary: 'Manage containers (ls, prune, and the container verbs above)',
    define: async (cmd) => {
      cmd.usage('COMMAND');
      for (const name of CONTAINER_VERBS) {
        const sub = cmd.command(name === 'ps' ? 'ls' : name).description(VERBS[name]!.summary) as BerthCommand;
        if (name === 'ps') sub.aliases(['list', 'ps']);
        if (name === 'rm') sub.alias('remove');
        await VERBS[name]!.define(sub);
      }
      cmd
        .command('prune')
        .description('Remove all stopped containers')
        .usage('[OPTIONS]')
        .option('-f, --force', 'Do not prompt for confirmation (berth never prompts)')
        .action(async (o: Flags) => (await containers()).runVerb('prune', [], o));
    },
  },
  volume: {
    summary: 'Manage named volumes (create, ls, inspect, rm, prune)',
    define: (cmd) =>
      group(cmd, {
        create: ['Create a volume', volume.create],
        ls: ['List volumes', volume.ls],
        inspect: ['Display detailed information on one or more volumes', volume.inspect],
        rm: ['Remove one or more volumes', volume.rm],
        prune: ['Remove unused volumes (anonymous ones; with -a all)', volume.prune],
      }),
  },
  network: {
    summary: 'Manage networks (ls, create, rm, inspect, connect, disconnect, prune)',
    define: (cmd) =>
      group(cmd, {
        ls: ['List networks', network.ls],
        create: ['Create a network', network.create],
        rm: ['Remove one or more networks', network.rm],
        inspect: ['Display detailed information on one or more networks', network.inspect],
        connect: ['Connect a container to a network', network.connect],
        disconnect: ['Disconnect a container from a network', network.disconnect],
        prune: ['Remove all unused networks', network.prune],
      }),
  },
};

/** `berth VERB …`'s command tree: the root with that one verb defined (undefined: no such verb). */
export async function programFor(verb: string): Promise<BerthCommand | undefined> {
  const entry = Object.hasOwn(VERBS, verb) ? VERBS[verb] : undefined;
  if (!entry) return undefined;
  const program = configure(new BerthCommand('berth'));
  await entry.define(program.command(verb).description(entry.summary) as BerthCommand);
  return program;
}
