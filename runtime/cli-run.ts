// `berth run`: create a container from an image and run it, in the foreground (exit code = the
// container's) or detached under a monitor (-d prints the id). Imports only what running needs.
import { readFileSync } from 'node:fs';
import { parsePlatform } from '../client/platform.js';
import { bool, list, parseBytes, parseFlags, str, type FlagSpec } from './cli-flags.js';
import { resolveConfinement } from './confinement.js';
import { ContainerStore } from './container-store.js';
import { createContainer, type RunOptions } from './create-container.js';
import { ImageNotFoundError } from './image-source.js';
import { StartError, type Launched } from './launch.js';
import { awaitExit, startContainer, startDetached } from './lifecycle.js';
import { UsageError } from './process-spec.js';
import { isContainerName, RuntimeLayout } from './runtime-layout.js';
import { closeLog, logStream, openLog } from './log-file.js';

const RUN_FLAGS: FlagSpec[] = [
  { name: 'interactive', short: 'i', kind: 'bool' },
  { name: 'tty', short: 't', kind: 'bool' },
  { name: 'detach', short: 'd', kind: 'bool' },
  { name: 'rm', kind: 'bool' },
  { name: 'name', kind: 'string' },
  { name: 'env', short: 'e', kind: 'list' },
  { name: 'env-file', kind: 'list' },
  { name: 'volume', short: 'v', kind: 'list' },
  { name: 'mount', kind: 'list' },
  { name: 'workdir', short: 'w', kind: 'string' },
  { name: 'user', short: 'u', kind: 'string' },
  { name: 'hostname', short: 'h', kind: 'string' },
  { name: 'entrypoint', kind: 'string' },
  { name: 'memory', short: 'm', kind: 'string' },
  { name: 'cpus', kind: 'string' },
  { name: 'pids-limit', kind: 'string' },
  { name: 'read-only', kind: 'bool' },
  { name: 'init', kind: 'bool' },
  { name: 'network', kind: 'string' },
  { name: 'net', kind: 'string' },
  { name: 'network-alias', kind: 'list' },
  { name: 'ip', kind: 'string' },
  { name: 'volumes-from', kind: 'list' },
  { name: 'publish', short: 'p', kind: 'list' },
  { name: 'platform', kind: 'string' },
  { name: 'privileged', kind: 'bool' },
  { name: 'cap-add', kind: 'list' },
  { name: 'cap-drop', kind: 'list' },
  { name: 'security-opt', kind: 'list' },
  { name: 'help', kind: 'bool' },
];

const USAGE = `Usage: berth run [OPTIONS] IMAGE [COMMAND] [ARG...]

Create and run a new container from an image (pulled when missing; oci:DIR[:TAG] for an OCI layout)

Options:
  -d, --detach             Run in the background and print the container ID
      --rm                 Remove the container when it exits
      --name string        Container name
  -e, --env list           Set environment variables (K=V, or K from this environment)
      --env-file list      Read environment variables from a file
  -v, --volume list        Bind mount HOST:CONTAINER[:ro], or volume NAME:CONTAINER[:ro]
      --mount list         type=bind|volume,source=HOST|NAME,target=CONTAINER[,readonly]
  -w, --workdir string     Working directory inside the container
  -u, --user string        Username or UID (format: <name|uid>[:<group|gid>])
  -h, --hostname string    Container host name
      --entrypoint string  Overwrite the image's ENTRYPOINT
  -m, --memory bytes       Memory limit (e.g. 512m); over it the process is OOM-killed
      --cpus decimal       Number of CPUs
      --pids-limit int     Process limit
      --read-only          Mount the root filesystem read-only
      --init               Run an init as PID 1 that forwards signals and reaps zombies
      --network string     none (default; bridge with -p), host, bridge (berth0), container:NAME (its network
                           namespace), or a network made by 'berth network create' (also --net)
      --network-alias list Another name the container has on its user network
      --ip string          Its IPv4 address on its user network
      --volumes-from list  Mount the volumes and binds of a container: NAME[:ro|rw]
  -p, --publish list       Publish a container's port: [IP:]HOSTPORT:CONTAINERPORT[/tcp|/udp] (bridge)
      --platform string    Run the image for os/arch[/variant] (e.g. linux/arm64): its entry of a
                           multi-platform image, pulled when not stored for it (default:
                           $DOCKER_DEFAULT_PLATFORM, else this host)
      --privileged         All capabilities, no seccomp profile, no masked or read-only /proc and /sys paths
      --cap-add list       Add Linux capabilities (CHOWN or CAP_CHOWN, ALL)
      --cap-drop list      Drop Linux capabilities (ALL drops all but those added)
      --security-opt list  seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false]
  -i, --interactive        Keep STDIN open
  -t, --tty                Use the caller's terminal
`;

function readEnvFile(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** `--mount type=bind,source=/a,target=/b[,readonly]` → the -v form. */
function mountToVolume(spec: string): string {
  const kv = new Map<string, string>();
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    kv.set(eq < 0 ? part : part.slice(0, eq), eq < 0 ? 'true' : part.slice(eq + 1));
  }
  const type = kv.get('type') ?? 'volume';
  if (type !== 'bind' && type !== 'volume') throw new UsageError(`mount type ${JSON.stringify(type)} is not supported (use bind or volume)`);
  const source = kv.get('source') ?? kv.get('src') ?? '';
  const target = kv.get('target') ?? kv.get('destination') ?? kv.get('dst');
  if ((type === 'bind' && !source) || !target) throw new UsageError(`invalid mount ${JSON.stringify(spec)}: ${type === 'bind' ? 'source and ' : ''}target are required`);
  if (type === 'bind' && !source.startsWith('/')) throw new UsageError(`invalid mount ${JSON.stringify(spec)}: a bind source must be an absolute path`);
  if (type === 'volume' && source.startsWith('/')) throw new UsageError(`invalid mount ${JSON.stringify(spec)}: a volume source must be a name`);
  const ro = kv.get('readonly') ?? kv.get('ro');
  return `${source ? `${source}:` : ''}${target}${ro === 'true' || ro === '1' ? ':ro' : ''}`;
}

export function parseRunArgs(argv: string[]): RunOptions | 'help' {
  const p = parseFlags(argv, RUN_FLAGS);
  if (bool(p, 'help')) return 'help';
  const [image, ...cmd] = p.operands;
  if (!image) throw new UsageError('"berth run" requires at least 1 argument.');
  const num = (name: string, s: string | undefined): number | undefined => {
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`invalid argument "${s}" for "--${name}" flag`);
    return n;
  };
  const name = str(p, 'name');
  if (name !== undefined && !isContainerName(name)) throw new UsageError(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  const hostname = str(p, 'hostname');
  // RFC 1123 names only: the hostname is also written into the container's /etc/hosts.
  if (hostname !== undefined && !/^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/.test(hostname))
    throw new UsageError(`invalid hostname ${JSON.stringify(hostname)}`);
  const workdir = str(p, 'workdir');
  if (workdir !== undefined && !workdir.startsWith('/')) throw new UsageError(`the working directory '${workdir}' is invalid, it needs to be an absolute path`);
  const memory = str(p, 'memory');
  const memoryBytes = memory === undefined ? undefined : parseBytes(memory);
  if (memoryBytes !== undefined && memoryBytes < 6 * 1024 * 1024) throw new UsageError('Minimum memory limit allowed is 6MB');
  const pids = num('pids-limit', str(p, 'pids-limit'));
  if (pids !== undefined && !Number.isInteger(pids)) throw new UsageError(`invalid argument "${pids}" for "--pids-limit" flag`);
  // docker's: DOCKER_DEFAULT_PLATFORM is the default of --platform, and an empty value means the host's.
  const platformFlag = str(p, 'platform') ?? process.env.DOCKER_DEFAULT_PLATFORM;
  let platform;
  try {
    platform = platformFlag ? parsePlatform(platformFlag) : undefined;
  } catch (err) {
    throw new UsageError((err as Error).message, false);
  }
  return {
    image,
    ...(platform ? { platform } : {}),
    cmd,
    entrypoint: str(p, 'entrypoint'),
    env: [...list(p, 'env-file').flatMap(readEnvFile), ...list(p, 'env')],
    workdir,
    user: str(p, 'user'),
    name,
    hostname,
    autoRemove: bool(p, 'rm'),
    detach: bool(p, 'detach'),
    interactive: bool(p, 'interactive'),
    tty: bool(p, 'tty'),
    volumes: [...list(p, 'volume'), ...list(p, 'mount').map(mountToVolume)],
    publish: list(p, 'publish'),
    readOnly: bool(p, 'read-only'),
    init: bool(p, 'init'),
    // -p implies a network to publish from: the bridge, docker's default. Without it, none (fast).
    network: str(p, 'network') ?? str(p, 'net') ?? (list(p, 'publish').length > 0 ? 'bridge' : 'none'),
    networkAliases: list(p, 'network-alias'),
    ip: str(p, 'ip'),
    volumesFrom: list(p, 'volumes-from'),
    limits: { memoryBytes, cpus: num('cpus', str(p, 'cpus')), pidsLimit: pids },
    security: resolveConfinement({ privileged: bool(p, 'privileged'), capAdd: list(p, 'cap-add'), capDrop: list(p, 'cap-drop'), securityOpt: list(p, 'security-opt') }),
  };
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];

export async function main(argv: string[]): Promise<number> {
  let opts: RunOptions | 'help';
  try {
    opts = parseRunArgs(argv);
    if (opts === 'help') {
      process.stdout.write(USAGE);
      return 0;
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`berth: ${err.message}\n${err.helpHint ? "See 'berth run --help'.\n" : ''}`);
      return 125;
    }
    throw err;
  }
  const layout = new RuntimeLayout();
  const store = new ContainerStore(layout);
  try {
    const config = await createContainer(layout, store, opts);
    if (opts.detach) {
      await startDetached(layout.root, config.Id);
      process.stdout.write(`${config.Id}\n`);
      return 0;
    }
    // Forwarding is in place before the helper starts: a signal that arrives while it starts must
    // neither kill berth (orphaning the container) nor be lost; it is delivered once it runs.
    let helper: Launched | undefined;
    const pending: NodeJS.Signals[] = [];
    const forward = (sig: NodeJS.Signals) => (helper ? helper.kill(sig) : pending.push(sig));
    for (const s of FORWARDED) process.on(s, forward);
    // The output is logged for `berth logs` (docker's json-file) on its way to the terminal; with
    // --rm the log would go with the container, so the terminal is handed over as it is.
    const log = opts.autoRemove ? undefined : openLog(layout.containerDir(config.Id));
    let copied: Promise<unknown> = Promise.resolve();
    try {
      const out = log ? 'pipe' : 'inherit';
      const started = await startContainer(store, config, [opts.interactive || opts.tty ? 'inherit' : 'ignore', out, out], (l) => {
        helper = l;
        if (log) copied = Promise.all([logStream(l.child!.stdout!, 'stdout', log, process.stdout), logStream(l.child!.stderr!, 'stderr', log, process.stderr)]);
      });
      for (const sig of pending.splice(0)) started.launched.kill(sig);
      const code = await awaitExit(store, config, started);
      await copied;
      return code;
    } finally {
      if (log) await closeLog(log);
      for (const s of FORWARDED) process.off(s, forward);
    }
  } catch (err) {
    if (err instanceof StartError) {
      process.stderr.write(`berth: ${err.message}\n`);
      return err.code;
    }
    if (err instanceof UsageError || err instanceof ImageNotFoundError) {
      process.stderr.write(`berth: ${err.message}\n`);
      return 125;
    }
    process.stderr.write(`berth: ${(err as Error).message}\n`);
    return 125;
  }
}
