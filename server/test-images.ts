// Test images built offline with real tools: umoci makes an OCI layout with busybox-static and a
// block of random bytes as layers; skopeo moves it into registries. Used by the auth and mirror tests.
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile, mkdir, copyFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function sh(cmd: string, args: string[], opts: { input?: string } = {}): Promise<{ stdout: string; stderr: string }> {
  if (opts.input === undefined) return run(cmd, args, { maxBuffer: 16 << 20 });
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { maxBuffer: 16 << 20 }, (err, stdout, stderr) => (err ? reject(Object.assign(err, { stdout, stderr })) : resolve({ stdout, stderr })));
    child.stdin!.end(opts.input);
  });
}

/** An OCI layout at `<dir>` holding image `tag`: busybox and `randomBytes` random bytes in two layers. */
export async function buildTestImage(opts: { randomBytes?: number; tag?: string } = {}): Promise<{ layout: string; tag: string; ref: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-img-'));
  const layout = join(dir, 'layout');
  const tag = opts.tag ?? 'v1';
  await sh('umoci', ['init', '--layout', layout]);
  await sh('umoci', ['new', '--image', `${layout}:${tag}`]);
  const bin = join(dir, 'bin');
  await mkdir(bin);
  await copyFile('/bin/busybox', join(bin, 'busybox'));
  await sh('umoci', ['insert', '--image', `${layout}:${tag}`, bin, '/bin']);
  const data = join(dir, 'data');
  await mkdir(data);
  await writeFile(join(data, 'random.bin'), randomBytes(opts.randomBytes ?? 1 << 20));
  await sh('umoci', ['insert', '--image', `${layout}:${tag}`, data, '/data']);
  await sh('umoci', ['config', '--image', `${layout}:${tag}`, '--config.cmd', '/bin/busybox', '--config.cmd', 'true']);
  return { layout, tag, ref: `oci:${layout}:${tag}` };
}

/** skopeo copy between two references; `creds` are user:password for a docker:// end. */
export async function skopeoCopy(src: string, dest: string, opts: { srcCreds?: string; destCreds?: string; srcCertDir?: string; destCertDir?: string } = {}): Promise<void> {
  const args = ['copy', '--quiet', '--retry-times', '0'];
  if (src.startsWith('docker://')) args.push(...(opts.srcCertDir ? ['--src-cert-dir', opts.srcCertDir] : ['--src-tls-verify=false']));
  if (dest.startsWith('docker://')) args.push(...(opts.destCertDir ? ['--dest-cert-dir', opts.destCertDir] : ['--dest-tls-verify=false']));
  if (opts.srcCreds) args.push('--src-creds', opts.srcCreds);
  if (opts.destCreds) args.push('--dest-creds', opts.destCreds);
  await sh('skopeo', [...args, src, dest]);
}

/** The host:port of a registry URL, as docker:// references want it. */
export function hostOf(url: string): string {
  return new URL(url).host;
}
