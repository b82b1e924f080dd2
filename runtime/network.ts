// The default bridge network: a `berth0` Linux bridge on the host (10.89.0.1/16). Its addresses
// are claimed as files created exclusively under /run/berth/ips: host-wide (the bridge is,
// whatever BERTH_ROOT each caller uses) and on tmpfs, so claims end with the boot that made them.
// Endpoints (veth pairs) and user networks: networks.ts. Published ports (-p) are forwarded by a
// userland proxy (port-proxy.ts), as docker-proxy does; `berth port` lists them (publishedPorts).
import { readFileSync } from 'node:fs';
import { mkdir, open, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from './process-spec.js';

export const BRIDGE = 'berth0';
export const GATEWAY = '10.89.0.1';
const PREFIX = 16;

/** execFile, promisified; child_process is loaded on first use (not on `berth run`'s start path). */
async function run(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  return promisify(execFile)(cmd, args);
}

export interface PortBinding {
  hostIp: string;
  hostPort: number;
  containerPort: number;
  /** Absent in containers created before UDP was supported: TCP. */
  protocol?: 'tcp' | 'udp';
}

/** `-p [IP:]HOSTPORT:CTRPORT[/tcp|/udp]`. */
export function parsePublish(spec: string): PortBinding {
  const m = /^(?:(\d+\.\d+\.\d+\.\d+):)?(\d+):(\d+)(?:\/(tcp|udp))?$/.exec(spec);
  const port = (s: string) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError(`invalid port ${s} in -p ${spec}`);
    return n;
  };
  if (!m) throw new UsageError(`invalid publish specification ${JSON.stringify(spec)}: use [IP:]HOSTPORT:CONTAINERPORT[/tcp|/udp]`);
  return { hostIp: m[1] ?? '0.0.0.0', hostPort: port(m[2]!), containerPort: port(m[3]!), protocol: m[4] === 'udp' ? 'udp' : 'tcp' };
}

function ipsDir(): string {
  return join(process.env.BERTH_RUN_DIR ?? '/run/berth', 'ips');
}

/** Claims a free address of the bridge's subnet for container `id`. */
export async function allocateIp(id: string): Promise<string> {
  const dir = ipsDir();
  await mkdir(dir, { recursive: true });
  const taken = new Set(await readdir(dir));
  for (let n = 2; n < 65534; n++) {
    const ip = `10.89.${n >> 8}.${n & 255}`;
    if (taken.has(ip) || (n & 255) === 0 || (n & 255) === 255) continue;
    try {
      const fh = await open(join(dir, ip), 'wx');
      await fh.writeFile(id);
      await fh.close();
      return ip;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  throw new Error('no free address left in 10.89.0.0/16');
}

export async function releaseIp(ip: string): Promise<void> {
  if (/^10\.89\.\d+\.\d+$/.test(ip)) await unlink(join(ipsDir(), ip)).catch(() => undefined);
}

async function ip(...args: string[]): Promise<void> {
  await run('ip', args);
}

/** Creates and brings up berth0 if missing (idempotent, safe against a concurrent creator). */
export async function ensureBridge(): Promise<void> {
  // Up already (IFF_UP in its flags): three `ip` processes fewer per start (~40 ms measured).
  try {
    if (Number(readFileSync(`/sys/class/net/${BRIDGE}/flags`, 'utf8')) & 1) return;
  } catch {
    // missing: made below
  }
  const exists = await ip('link', 'show', BRIDGE).then(() => true, () => false);
  if (!exists) await ip('link', 'add', BRIDGE, 'type', 'bridge').catch(() => undefined);
  await ip('addr', 'replace', `${GATEWAY}/${PREFIX}`, 'dev', BRIDGE);
  await ip('link', 'set', BRIDGE, 'up');
}

export function vethNames(id: string): { host: string; peer: string } {
  return { host: `bv${id.slice(0, 12)}`, peer: `bc${id.slice(0, 12)}` };
}

/** Removes a host veth left from an earlier run whose namespace is still being torn down. */
export async function removeStaleVeth(id: string): Promise<void> {
  await ip('link', 'del', vethNames(id).host).catch(() => undefined);
}

/**
 * `berth port CONTAINER [PRIVATE_PORT[/PROTO]]`: docker's lines, sorted by port: `80/tcp ->
 * 0.0.0.0:8080` for all, `0.0.0.0:8080` for one. Undefined when `filter` matches no binding.
 */
export function portLines(bindings: PortBinding[], filter?: string): string[] | undefined {
  const sorted = [...bindings].sort((a, b) => a.containerPort - b.containerPort || (a.protocol ?? 'tcp').localeCompare(b.protocol ?? 'tcp') || a.hostPort - b.hostPort);
  if (filter === undefined) return sorted.map((b) => `${b.containerPort}/${b.protocol ?? 'tcp'} -> ${b.hostIp}:${b.hostPort}`);
  const m = /^(\d+)(?:\/(\w+))?$/.exec(filter);
  if (!m) throw new UsageError(`Invalid port: ${filter}`, false);
  const wanted = sorted.filter((b) => b.containerPort === Number(m[1]) && (b.protocol ?? 'tcp') === (m[2] ?? 'tcp'));
  return wanted.length > 0 ? wanted.map((b) => `${b.hostIp}:${b.hostPort}`) : undefined;
}
