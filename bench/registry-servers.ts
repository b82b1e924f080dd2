// The two registries under test, each a child process on a loopback port with its own temp data
// folder: Berth (`node dist/bin/berth.js serve`) and the reference registry (Debian's
// docker-registry, CNCF distribution 2.8). Both log at warn and no access log, so neither pays
// for per-request logging the other skips.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ServerUnderTest {
  label: string;
  origin: string;
  pid: number;
  dataDir: string;
  stop(): Promise<void>;
}

const REFERENCE_BIN = '/usr/bin/docker-registry';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitReady(origin: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${log()}`);
    try {
      const res = await fetch(`${origin}/v2/`);
      await res.arrayBuffer();
      // 401: up, with authentication on.
      if (res.status === 200 || res.status === 401) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server at ${origin} did not become ready: ${log()}`);
}

async function launch(label: string, dataDir: string, cmd: string, args: string[], origin: string, env?: NodeJS.ProcessEnv): Promise<ServerUnderTest> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...(env ? { env } : {}) });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    await waitReady(origin, child, () => stderr);
  } catch (e) {
    child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
    throw e;
  }
  return {
    label,
    origin,
    pid: child.pid!,
    dataDir,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** `extraArgs` (after the defaults, so a later `--log-level` wins) and `env` (the whole environment) for other storage, e.g. `--storage s3 …` (bench/scale-out.ts). */
export async function startBerth(opts: { label?: string; extraArgs?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<ServerUnderTest> {
  const dataDir = await mkdtemp(join(tmpdir(), 'berth-bench-'));
  const port = await freePort();
  // Through the bin/berth launcher, as users start it (its settings for `serve` included); it
  // execs the `node` on PATH: this benchmark's Node first.
  const launcher = fileURLToPath(new URL('../../bin/berth', import.meta.url));
  const args = [launcher, 'serve', '--listen', `127.0.0.1:${port}`, '--data', join(dataDir, 'data'), '--log-level', 'warn', ...(opts.extraArgs ?? [])];
  const env = opts.env ?? process.env;
  return launch(opts.label ?? 'berth', dataDir, '/bin/sh', args, `http://127.0.0.1:${port}`, { ...env, PATH: `${dirname(process.execPath)}:${env.PATH ?? ''}` });
}

/** What both reference configurations share: quiet logs and the in-memory blob descriptor cache. */
const REFERENCE_CONFIG_HEAD = ['version: 0.1', 'log:', '  level: warn', '  accesslog:', '    disabled: true', 'storage:', '  cache:', '    blobdescriptor: inmemory'];

export async function startReference(): Promise<ServerUnderTest> {
  const dataDir = await mkdtemp(join(tmpdir(), 'registry-bench-'));
  const port = await freePort();
  // The Debian default config minus auth, with the in-memory blob descriptor cache it ships with.
  const config = [
    ...REFERENCE_CONFIG_HEAD,
    '  filesystem:',
    `    rootdirectory: ${join(dataDir, 'data')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '',
  ].join('\n');
  const configPath = join(dataDir, 'config.yml');
  await writeFile(configPath, config);
  return launch('reference', dataDir, REFERENCE_BIN, ['serve', configPath], `http://127.0.0.1:${port}`);
}

export interface ReferenceS3Options {
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Key prefix in the bucket (the driver's rootdirectory). */
  rootDirectory?: string;
  /** `redirect: disable`: blob GETs stream through the registry instead of a 307 to a pre-signed URL. */
  disableRedirect?: boolean;
}

/**
 * The reference registry on its S3 driver (distribution 2.8 `s3`, aws-sdk-go v1): path-style
 * addressing follows from `regionendpoint`; `chunksize` is left at its default (10 MiB parts);
 * the same in-memory blob descriptor cache as the filesystem variant. Go programs here fail to
 * start while AWS_CA_BUNDLE is set (../shared/recipes), so it is removed from the environment.
 */
export async function startReferenceS3(s3: ReferenceS3Options): Promise<ServerUnderTest> {
  const dataDir = await mkdtemp(join(tmpdir(), 'registry-bench-'));
  const port = await freePort();
  const config = [
    ...REFERENCE_CONFIG_HEAD,
    '  s3:',
    `    accesskey: ${s3.accessKeyId}`,
    `    secretkey: ${s3.secretAccessKey}`,
    `    region: ${s3.region}`,
    `    regionendpoint: ${s3.endpoint}`,
    `    bucket: ${s3.bucket}`,
    `    secure: ${s3.endpoint.startsWith('https:')}`,
    '    v4auth: true',
    `    rootdirectory: ${s3.rootDirectory ?? '/registry'}`,
    '  redirect:',
    `    disable: ${s3.disableRedirect ?? true}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '',
  ].join('\n');
  const configPath = join(dataDir, 'config.yml');
  await writeFile(configPath, config, { mode: 0o600 });
  const env = { ...process.env };
  delete env.AWS_CA_BUNDLE;
  return launch('reference', dataDir, REFERENCE_BIN, ['serve', configPath], `http://127.0.0.1:${port}`, env);
}

/** USER_HZ: /proc reports CPU time in these ticks; 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS = 100;

/** Resident memory of a process in bytes, from /proc/PID/status. */
async function readRss(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/**
 * Peak RSS of a process over a phase: VmHWM is reset at the start (clear_refs 5) and read at the
 * end, and VmRSS is sampled every 50 ms as a cross-check where clear_refs is not permitted.
 */
export class RssMonitor {
  private peak = 0;
  private timer: NodeJS.Timeout | undefined;
  private hwmReset = false;
  constructor(private readonly pid: number) {}

  async start(): Promise<void> {
    this.peak = 0;
    this.hwmReset = await writeFile(`/proc/${this.pid}/clear_refs`, '5').then(
      () => true,
      () => false,
    );
    const sample = () =>
      readRss(this.pid).then(
        ({ rss }) => {
          this.peak = Math.max(this.peak, rss);
        },
        () => undefined,
      );
    await sample();
    this.timer = setInterval(sample, 50);
    this.timer.unref();
  }

  /** Ends the phase; returns its peak RSS in bytes. */
  async stop(): Promise<number> {
    clearInterval(this.timer);
    const { rss, hwm } = await readRss(this.pid);
    return Math.max(this.peak, rss, this.hwmReset ? hwm : 0);
  }

  /** CPU seconds (user + system, all threads) the process has used so far. */
  async cpuSeconds(): Promise<number> {
    const stat = await readFile(`/proc/${this.pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
  }

  async current(): Promise<number> {
    return (await readRss(this.pid)).rss;
  }
}
