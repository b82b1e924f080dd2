// Real peers for the client's tests: the reference registry (Debian's docker-registry), test
// images built with umoci + busybox-static, skopeo, and the berth CLI run as a child process.
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir, open } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';

const exec = promisify(execFile);

/** A fresh folder under the system temp dir, removed when the test process exits. */
export async function tempDir(prefix = 'berth-client-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface ReferenceRegistry {
  host: string;
  url: string;
  dir: string;
  stop(): Promise<void>;
}

/** Starts /usr/bin/docker-registry on a loopback port; with `htpasswd`, Basic auth for those users. */
export async function startReferenceRegistry(opts: { users?: Record<string, string> } = {}): Promise<ReferenceRegistry> {
  const dir = await tempDir('berth-refreg-');
  const port = await freePort();
  let auth = '';
  if (opts.users) {
    const file = join(dir, 'htpasswd');
    for (const [user, pass] of Object.entries(opts.users)) {
      await exec('htpasswd', ['-bB', ...(Object.keys(opts.users)[0] === user ? ['-c'] : []), file, user, pass]);
    }
    auth = `auth:\n  htpasswd:\n    realm: basic-realm\n    path: ${file}\n`;
  }
  const config = join(dir, 'config.yml');
  await writeFile(config, `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${auth}`);
  const child = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      const res = await fetch(`${url}/v2/`);
      await res.arrayBuffer();
      break;
    } catch {
      if (i > 100 || child.exitCode !== null) throw new Error(`docker-registry did not start: ${stderr.slice(0, 500)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    host: `127.0.0.1:${port}`,
    url,
    dir,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Builds an OCI layout image with umoci: busybox-static plus `extraLayers` layers of random bytes
 * (`layerBytes` each), so two builds never share layers unless asked to.
 */
export async function buildImage(dir: string, tag: string, opts: { extraLayers?: number; layerBytes?: number } = {}): Promise<string> {
  const layout = join(dir, 'layout');
  await exec('umoci', ['init', '--layout', layout]).catch(() => undefined);
  await exec('umoci', ['new', '--image', `${layout}:${tag}`]);
  await exec('umoci', ['insert', '--rootless', '--image', `${layout}:${tag}`, '/bin/busybox', '/bin/busybox']);
  for (let i = 0; i < (opts.extraLayers ?? 1); i++) {
    const f = join(dir, `data-${tag}-${i}`);
    // Written a MiB at a time: the benchmark's layers are hundreds of MB.
    const fh = await open(f, 'w');
    try {
      for (let left = opts.layerBytes ?? 64 * 1024; left > 0; left -= 1 << 20) await fh.write(randomBytes(Math.min(left, 1 << 20)));
    } finally {
      await fh.close();
    }
    await exec('umoci', ['insert', '--rootless', '--image', `${layout}:${tag}`, f, `/data/${i}`]);
  }
  await exec('umoci', ['config', '--image', `${layout}:${tag}`, '--config.cmd', '/bin/sh']);
  return layout;
}

export async function skopeo(...args: string[]): Promise<string> {
  const { stdout } = await exec('skopeo', args, { maxBuffer: 16 << 20 });
  return stdout;
}

/** The manifest digest skopeo sees at a docker:// reference. */
export async function skopeoDigest(ref: string): Promise<string> {
  const out = JSON.parse(await skopeo('inspect', '--tls-verify=false', ref)) as { Digest: string };
  return out.Digest;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const BERTH = new URL('../../../bin/launch.cjs', import.meta.url).pathname;

/** Runs the berth CLI with `env` added to a minimal environment, in `cwd` (default: this process's). */
export async function berth(args: string[], env: Record<string, string>, stdin?: string, cwd?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BERTH, ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

/** A sandbox for CLI runs: its own BERTH_ROOT, HOME and config file. */
export async function sandbox(config: Record<string, unknown> = {}): Promise<{ dir: string; env: Record<string, string>; cleanup(): Promise<void> }> {
  const dir = await tempDir('berth-sandbox-');
  await mkdir(join(dir, 'home'), { recursive: true });
  await writeFile(join(dir, 'daemon.json'), JSON.stringify(config));
  const env = { BERTH_ROOT: join(dir, 'root'), HOME: join(dir, 'home'), BERTH_CONFIG: join(dir, 'daemon.json'), XDG_CONFIG_HOME: join(dir, 'home', '.config') };
  return { dir, env, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
