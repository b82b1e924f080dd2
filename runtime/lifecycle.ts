// Starting a created container and recording its end, shared by the foreground `run` and the -d
// monitor (monitor.ts): whoever starts the helper owns the container's state until it exits.
import { fileURLToPath } from 'node:url';
import { createCgroups, oomKilled, removeCgroups, type Limits } from './cgroups.js';
import type { ContainerConfig, ContainerState, ContainerStore } from './container-store.js';
import { ZERO_TIME } from './container-store.js';
import { launchHelper, StartError, type Launched } from './launch.js';
import { formatPlatform, hostPlatform, parsePlatform, platformMatches } from '../client/platform.js';

type Stdio = Parameters<typeof launchHelper>[2];

export interface Started {
  launched: Launched;
  state: ContainerState;
  /** Stops the published-port proxies. */
  closePorts: () => Promise<void>;
}

export function limitsOf(config: ContainerConfig): Limits {
  const h = config.HostConfig;
  return { memoryBytes: h.Memory || undefined, cpus: h.NanoCpus ? h.NanoCpus / 1e9 : undefined, pidsLimit: h.PidsLimit || undefined };
}

/** Launches the helper; resolves once the process runs (state "running" recorded). */
export async function startContainer(store: ContainerStore, config: ContainerConfig, stdio: Stdio, onLaunch?: (l: Launched) => void): Promise<Started> {
  // Cgroups live from start to exit: made (again, for `start`/`restart`) here, removed at the end.
  await createCgroups(config.Id, limitsOf(config));
  let helper = config.helper;
  let address = config.NetworkSettings?.IPAddress ?? '';
  const networked = networkedContainer(config);
  let launched: Launched | undefined;
  let pid: number;
  try {
    if (networked) {
      // The networks joined by now (connect/disconnect while stopped), plugged in by the helper.
      const { prepareStart } = await import('./networks.js');
      const prepared = await prepareStart(store, config);
      const { address: _address, ...forHelper } = prepared;
      helper = { ...helper, ...forHelper };
      address = prepared.address;
    }
    launched = await launchHelper('run', helper, stdio);
    onLaunch?.(launched); // before the next await: the output pipes must have readers from the start
    pid = await launched.pid;
  } catch (err) {
    await launched?.exit.catch(() => undefined);
    const e = explainExecFormat(err instanceof StartError ? err : new StartError(125, (err as Error).message), config);
    await store.writeState(config.Id, {
      Status: 'exited',
      Pid: 0,
      OwnerPid: 0,
      ExitCode: e.code,
      OOMKilled: false,
      Error: e.message,
      StartedAt: ZERO_TIME,
      FinishedAt: new Date().toISOString(),
    }, !config.HostConfig.AutoRemove);
    await cleanup(store, config);
    throw e;
  }
  const state: ContainerState = {
    Status: 'running',
    Pid: pid,
    OwnerPid: process.pid,
    ExitCode: 0,
    OOMKilled: false,
    Error: '',
    StartedAt: new Date().toISOString(),
    FinishedAt: ZERO_TIME,
  };
  let closePorts = async () => undefined as void;
  if (config.NetworkSettings?.Ports.length) {
    const { startPortProxies } = await import('./port-proxy.js');
    try {
      closePorts = await startPortProxies(config.NetworkSettings.Ports, address);
    } catch (err) {
      launched.kill('SIGKILL'); // the helper's death takes the container with it (PDEATHSIG)
      await launched.exit;
      const message = (err as Error).message;
      await store.writeState(config.Id, { ...state, Status: 'exited', Pid: 0, OwnerPid: 0, ExitCode: 125, Error: message, FinishedAt: new Date().toISOString() }, !config.HostConfig.AutoRemove);
      await cleanup(store, config);
      throw new StartError(125, message);
    }
  }
  await store.writeState(config.Id, state, !config.HostConfig.AutoRemove);
  if (networked) await (await import('./networks.js')).refreshHosts(store, config.Id, [], false); // its peers learn of it
  return { launched, state, closePorts };
}

/** Whether starting or stopping the container concerns networks.ts (not for none and host: fast path). */
function networkedContainer(config: ContainerConfig): boolean {
  return config.helper.network === 'bridge' || config.helper.network === 'container';
}

/**
 * ENOEXEC from the helper's execve (exit code 126, as any exec failure): docker's wording ("exec
 * /bin/sh: exec format error"), and when the image is for another platform, which and why.
 */
export function explainExecFormat(e: StartError, config: ContainerConfig): StartError {
  const m = /^(exec .*): Exec format error$/.exec(e.message);
  if (!m) return e;
  let foreign = false;
  try {
    foreign = config.ImagePlatform !== undefined && !platformMatches(parsePlatform(config.ImagePlatform), hostPlatform());
  } catch {
    foreign = false;
  }
  const why = foreign
    ? ` (the image is for ${config.ImagePlatform}, this host is ${formatPlatform(hostPlatform())}: running it needs an emulator such as qemu-user-static registered with binfmt_misc)`
    : '';
  return new StartError(e.code, `${m[1]}: exec format error${why}`);
}

/** Waits for the container's end, records it, releases cgroups (and the container with --rm). */
export async function awaitExit(store: ContainerStore, config: ContainerConfig, started: Started): Promise<number> {
  const code = await started.launched.exit;
  await started.closePorts();
  const oom = await oomKilled(config.cgroups);
  await store.writeState(config.Id, {
    ...started.state,
    Status: 'exited',
    Pid: 0,
    OwnerPid: 0,
    ExitCode: code,
    OOMKilled: oom,
    FinishedAt: new Date().toISOString(),
  }, !config.HostConfig.AutoRemove);
  // Peers forget it (their /etc/hosts) before --rm removes it.
  if (config.helper.network === 'bridge') await (await import('./networks.js')).refreshHosts(store, config.Id, [], false).catch(() => undefined);
  await cleanup(store, config);
  return code;
}

async function cleanup(store: ContainerStore, config: ContainerConfig): Promise<void> {
  await removeCgroups(config.cgroups).catch(() => undefined);
  if (config.HostConfig.AutoRemove) await store.remove(config.Id);
}

const MONITOR = fileURLToPath(new URL('./monitor.js', import.meta.url));

/**
 * Starts a container under a detached monitor process that outlives the CLI (as conmon does):
 * resolves once the container runs, rejects with StartError if it could not start.
 */
export async function startDetached(root: string, id: string): Promise<void> {
  const { spawn } = await import('node:child_process'); // not on the foreground start path
  const monitor = spawn(process.execPath, [MONITOR, root, id], { detached: true, stdio: ['ignore', 'pipe', process.env.BERTH_DEBUG ? 'inherit' : 'ignore'] });
  monitor.unref();
  // One line, then we stop reading: the monitor cannot close its stdout (fd 1 stays open in Node).
  const line = await new Promise<string>((resolve) => {
    let text = '';
    const stdout = monitor.stdout!;
    stdout.setEncoding('utf8');
    stdout.on('data', (d: string) => {
      text += d;
      if (text.includes('\n')) {
        stdout.destroy();
        resolve(text.slice(0, text.indexOf('\n')));
      }
    });
    stdout.on('close', () => resolve(text.split('\n')[0] ?? ''));
  });
  const msg = line ? (JSON.parse(line) as { pid?: number; error?: string; code?: number }) : { error: 'monitor exited before starting the container', code: 125 };
  if (!msg.pid) throw new StartError(msg.code ?? 125, msg.error ?? 'unknown error');
}
