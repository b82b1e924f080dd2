// `berth run`: create a container from an image and run it, in the foreground (exit code = the
// container's) or detached under a monitor (-d prints the id). Imports only what running needs;
// its flags are declared in bin/commands.ts.
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { parsePlatform } from '../../client/platform.js';
import { resolveConfinement } from '../confinement.js';
import { ContainerStore } from '../container-store.js';
import { createContainer, type RunOptions } from '../create-container.js';
import { ImageNotFoundError } from '../image-source.js';
import { StartError, type Launched } from '../launch.js';
import { awaitExit, startContainer, startDetached } from '../lifecycle.js';
import { UsageError } from '../process-spec.js';
import { isContainerName, RuntimeLayout } from '../runtime-layout.js';
import { closeLog, logStream, openLog } from '../log-file.js';

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

/** docker's memory sizes: 512m, 1g, 1048576, 64k (binary units). */
export function parseBytes(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([bkmg]?)b?$/i.exec(s.trim());
  if (!m) throw new UsageError(`invalid size: '${s}'`);
  const unit = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'b' | 'k' | 'm' | 'g'];
  return Math.floor(Number(m[1]) * unit);
}

/** `berth run`'s flags as commander gives them (bin/commands.ts declares them). */
export interface RunFlags {
  interactive?: boolean;
  tty?: boolean;
  detach?: boolean;
  rm?: boolean;
  name?: string;
  env: string[];
  envFile: string[];
  volume: string[];
  mount: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  entrypoint?: string;
  memory?: string;
  cpus?: string;
  pidsLimit?: string;
  readOnly?: boolean;
  init?: boolean;
  network?: string;
  net?: string;
  networkAlias: string[];
  ip?: string;
  volumesFrom: string[];
  publish: string[];
  platform?: string;
  privileged?: boolean;
  capAdd: string[];
  capDrop: string[];
  securityOpt: string[];
}

/** Checks the flags and turns them into what createContainer takes. Throws UsageError (exit 125). */
export function runOptions(image: string, cmd: string[], p: RunFlags): RunOptions {
  const num = (name: string, s: string | undefined): number | undefined => {
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`invalid argument "${s}" for "--${name}" flag`);
    return n;
  };
  const name = p.name;
  if (name !== undefined && !isContainerName(name)) throw new UsageError(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  const hostname = p.hostname;
  // RFC 1123 names only: the hostname is also written into the container's /etc/hosts.
  if (hostname !== undefined && !/^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/.test(hostname))
    throw new UsageError(`invalid hostname ${JSON.stringify(hostname)}`);
  const workdir = p.workdir;
  if (workdir !== undefined && !workdir.startsWith('/')) throw new UsageError(`the working directory '${workdir}' is invalid, it needs to be an absolute path`);
  const memoryBytes = p.memory === undefined ? undefined : parseBytes(p.memory);
  if (memoryBytes !== undefined && memoryBytes < 6 * 1024 * 1024) throw new UsageError('Minimum memory limit allowed is 6MB');
  const pids = num('pids-limit', p.pidsLimit);
  if (pids !== undefined && !Number.isInteger(pids)) throw new UsageError(`invalid argument "${pids}" for "--pids-limit" flag`);
  // docker's: DOCKER_DEFAULT_PLATFORM is the default of --platform, and an empty value means the host's.
  const platformFlag = p.platform ?? process.env.DOCKER_DEFAULT_PLATFORM;
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
    entrypoint: p.entrypoint,
    env: [...p.envFile.flatMap(readEnvFile), ...p.env],
    workdir,
    user: p.user,
    name,
    hostname,
    autoRemove: Boolean(p.rm),
    detach: Boolean(p.detach),
    interactive: Boolean(p.interactive),
    tty: Boolean(p.tty),
    volumes: [...p.volume, ...p.mount.map(mountToVolume)],
    publish: p.publish,
    readOnly: Boolean(p.readOnly),
    init: Boolean(p.init),
    // -p implies a network to publish from: the bridge, docker's default. Without it, none (fast).
    network: p.network ?? p.net ?? (p.publish.length > 0 ? 'bridge' : 'none'),
    networkAliases: p.networkAlias,
    ip: p.ip,
    volumesFrom: p.volumesFrom,
    limits: { memoryBytes, cpus: num('cpus', p.cpus), pidsLimit: pids },
    security: resolveConfinement({ privileged: Boolean(p.privileged), capAdd: p.capAdd, capDrop: p.capDrop, securityOpt: p.securityOpt }),
  };
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];

export async function run(image: string, cmd: string[], flags: RunFlags): Promise<number> {
  // A usage error (exit 125 with docker's hint) is the command line's to print.
  const opts = runOptions(image, cmd, flags);
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
    // The output is logged for `berth logs` (docker's json-file) on its way to the terminal, with
    // --rm too: `berth logs -f NAME` follows a foreground `run --rm --name NAME` while it runs, as
    // docker's; the log goes with the container. Opened before the start, so --rm's removal
    // cannot come first.
    const log = openLog(layout.containerDir(config.Id));
    log.on('error', (err) => process.stderr.write(`berth: warning: container log: ${err.message}\n`));
    await once(log, 'open');
    let copied: Promise<unknown> = Promise.resolve();
    try {
      const started = await startContainer(store, config, [opts.interactive || opts.tty ? 'inherit' : 'ignore', 'pipe', 'pipe'], (l) => {
        helper = l;
        copied = Promise.all([logStream(l.stdout!, 'stdout', log, process.stdout), logStream(l.stderr!, 'stderr', log, process.stderr)]);
      });
      for (const sig of pending.splice(0)) started.launched.kill(sig);
      // Output logged before the exit is recorded: `logs -f` stops at the exit with nothing left.
      await copied;
      return await awaitExit(store, config, started);
    } finally {
      await closeLog(log);
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
