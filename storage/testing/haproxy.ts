// haproxy (Debian `haproxy`) in front of several registry replicas, for tests and benchmarks: HTTP
// mode, round-robin for every REQUEST (not per client connection: consecutive requests on one
// keep-alive connection go to different backends, so a push's POST, PATCH and PUT land on
// different replicas, which is what the shared-state design must survive), no stickiness, no
// health checks (a stopped backend answers 503 to the requests routed to it; a fault test sees
// exactly that), inactivity timeouts of 10 minutes for large blob uploads and downloads. The
// configuration sits in a mkdtemp folder; the frontend port is picked at run time.
// docs/testing-services.md.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, releaseDir, removeAtExit, spawnDaemon, stopDaemon, tcpOpen, treeMemoryBytes, type Daemon } from './processes.js';

const HAPROXY = process.env.BERTH_HAPROXY ?? '/usr/sbin/haproxy';

/** Why a test haproxy cannot be started here (a skip reason), or undefined. */
export function haproxyMissing(): string | undefined {
  return existsSync(HAPROXY) ? undefined : `${HAPROXY} not installed (apt-get install haproxy; .ci/run does)`;
}

export interface HaproxyOptions {
  /** http://127.0.0.1:PORT of each backend. */
  backends: string[];
}

export interface TestHaproxy {
  /** http://127.0.0.1:PORT of the frontend. */
  url: string;
  dir: string;
  memoryBytes(): number;
  stop(): Promise<void>;
}

function config(port: number, backends: string[]): string {
  const servers = backends.map((b, i) => {
    const u = new URL(b);
    if (u.protocol !== 'http:') throw new Error(`haproxy backend ${b}: only http:// backends`);
    return `  server b${i} ${u.hostname}:${u.port || 80}`;
  });
  return `global
  maxconn 4096
  nbthread 2

defaults
  mode http
  option forwardfor
  # Each request is load-balanced on its own (haproxy's default in HTTP mode without
  # prefer-last-server or persistence); idle server connections are reused across requests.
  http-reuse safe
  timeout connect 5s
  # Inactivity timeouts: long enough for a slow multi-GiB blob upload or download.
  timeout client 10m
  timeout server 10m
  timeout http-request 60s
  timeout http-keep-alive 60s

frontend registry
  bind 127.0.0.1:${port}
  http-request set-header X-Forwarded-Proto http
  default_backend replicas

backend replicas
  balance roundrobin
${servers.join('\n')}
`;
}

export async function startHaproxy(opts: HaproxyOptions): Promise<TestHaproxy> {
  const reason = haproxyMissing();
  if (reason) throw new Error(reason);
  if (opts.backends.length === 0) throw new Error('haproxy: no backends');
  const dir = await mkdtemp(join(tmpdir(), 'berth-haproxy-'));
  removeAtExit(dir);
  let daemon: Daemon | undefined;
  const stop = async () => {
    if (daemon) await stopDaemon(daemon, 5000);
    await rm(dir, { recursive: true, force: true });
    releaseDir(dir);
  };
  try {
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      const cfg = join(dir, 'haproxy.cfg');
      await writeFile(cfg, config(port, opts.backends));
      // -db: foreground, not a daemon; -W would add a master process, not wanted here.
      const d = spawnDaemon('haproxy', HAPROXY, ['-db', '-f', cfg]);
      daemon = d;
      const end = Date.now() + 15_000;
      while (d.running() && !(await tcpOpen(port)) && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
      if (d.running() && Date.now() < end) return { url: `http://127.0.0.1:${port}`, dir, memoryBytes: () => treeMemoryBytes([d.child.pid ?? 0]), stop };
      await stopDaemon(d, 1000);
      if (!/Address already in use|cannot bind/i.test(d.log()) || attempt >= 5) throw new Error(`haproxy did not start:\n${d.log()}`);
    }
  } catch (e) {
    await stop();
    throw e;
  }
}
