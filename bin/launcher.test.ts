// The `berth` launcher (bin/berth): Node must not parse NODE_EXTRA_CA_CERTS at start-up, and the
// CAs it names must still be trusted wherever berth dials TLS (the client, a mirror's upstream).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { mkdir, symlink } from 'node:fs/promises';
import type { LookupFunction } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { startTestRegistry, type TestRegistry } from '../server/testing.js';
import { buildImage, freePort, skopeo, tempDir } from '../client/testing/peers.js';
import { parseConfig } from '../client/config.js';
import { LocalImageStore } from '../client/store/image-store.js';
import { Transport } from '../client/transport/registry-client.js';
import { Progress } from '../client/progress.js';
import { pull } from '../client/pull.js';
import { parseReference } from '../oci/reference.js';

const exec = promisify(execFile);
const LAUNCHER = fileURLToPath(new URL('../../bin/berth', import.meta.url));
const ENTRY = fileURLToPath(new URL('./berth.js', import.meta.url));
const VERSION = 'berth 0.1.0\n';

let dir: string;
let cert: string;
let upstream: TestRegistry;
const mirrors: ChildProcess[] = [];

before(async () => {
  dir = await tempDir('berth-launcher-');
  cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  // A self-signed certificate is its own CA: trusted only when named by the extra-CA file.
  await exec('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=registry.test', '-addext', 'subjectAltName=DNS:registry.test,IP:127.0.0.1', '-keyout', key, '-out', cert]);
  upstream = await startTestRegistry({ tls: { cert, key } });
  const layout = await buildImage(dir, 'x', { extraLayers: 1, layerBytes: 64 * 1024 });
  await skopeo('copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:x`, `docker://${new URL(upstream.url).host}/team/app:1`);
});

after(async () => {
  for (const m of mirrors) {
    if (m.exitCode !== null) continue;
    const exited = new Promise((r) => m.once('exit', r));
    m.kill('SIGTERM');
    await exited;
  }
  await upstream?.destroy();
});

function run(cmd: string, args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

test('the launcher keeps Node from reading NODE_EXTRA_CA_CERTS at start-up, also through a symlink', async (t) => {
  const env = { NODE_EXTRA_CA_CERTS: join(dir, 'missing.pem') };
  // Node 20 reads the file before any JavaScript runs (and warns when it cannot); Node 24 defers it
  // to the first TLS context and warns no more, so only the launched runs are asserted there.
  const direct = await run(process.execPath, [ENTRY, '--version'], env);
  assert.equal(direct.stdout, VERSION);
  if (Number(process.versions.node.split('.')[0]) <= 20) assert.match(direct.stderr, /Ignoring extra certs from .*missing\.pem/);
  else t.diagnostic(`Node ${process.version} at start-up with a missing NODE_EXTRA_CA_CERTS printed: ${JSON.stringify(direct.stderr)}`);
  const launched = await run(LAUNCHER, ['--version'], env);
  assert.deepEqual(launched, { code: 0, stdout: VERSION, stderr: '' });
  // npm installs the launcher as node_modules/.bin/berth → ../berth/bin/berth.
  const binDir = join(dir, 'node_modules', '.bin');
  await mkdir(binDir, { recursive: true });
  await symlink(LAUNCHER, join(binDir, 'berth'));
  assert.deepEqual(await run(join(binDir, 'berth'), ['--version'], env), { code: 0, stdout: VERSION, stderr: '' });
});

/** `berth serve` through the launcher as a mirror of the TLS upstream; resolves to its host:port. */
async function startMirror(env: Record<string, string>): Promise<string> {
  const host = `127.0.0.1:${await freePort()}`;
  const args = ['serve', '--listen', host, '--data', join(dir, `mirror-${mirrors.length}`), '--log-level', 'error', '--proxy-remote-url', upstream.url];
  const m = spawn(LAUNCHER, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  mirrors.push(m);
  let stderr = '';
  m.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  for (let i = 0; ; i++) {
    const ok = await fetch(`http://${host}/v2/`).then(
      async (r) => (await r.arrayBuffer(), r.ok),
      () => false,
    );
    if (ok) return host;
    if (i > 200 || m.exitCode !== null) throw new Error(`berth serve did not start: ${stderr.slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a mirror started by the launcher trusts the CAs of NODE_EXTRA_CA_CERTS for its upstream', async () => {
  const trusting = await startMirror({ NODE_EXTRA_CA_CERTS: cert });
  const ok = await fetch(`http://${trusting}/v2/team/app/manifests/1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(ok.status, 200, await ok.clone().text());
  assert.match(ok.headers.get('docker-content-digest') ?? '', /^sha256:[0-9a-f]{64}$/);
  await ok.arrayBuffer();
  // The same mirror without the variable cannot verify the upstream's certificate.
  const strict = await startMirror({});
  const refused = await fetch(`http://${strict}/v2/team/app/manifests/1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.notEqual(refused.status, 200);
  await refused.arrayBuffer();
});

test('the client trusts the CAs of BERTH_EXTRA_CA_CERTS (where the launcher moved them) for a verified registry', async () => {
  // registry.test resolves to the TLS registry on loopback, but is not a loopback name: TLS is verified.
  const lookup = ((hostname: string, options: unknown, cb: (e: Error | null, a: string | LookupAddress[], f?: number) => void) => {
    if (hostname !== 'registry.test') return dnsLookup(hostname, options as never, cb as never);
    const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all;
    return all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4);
  }) as unknown as LookupFunction;
  const ref = parseReference(`registry.test:${new URL(upstream.url).port}/team/app:1`);
  const quiet = new Progress(new Writable({ write: (_c, _e, cb) => cb() }), { quiet: true });
  process.env.BERTH_EXTRA_CA_CERTS = cert;
  const transport = new Transport(parseConfig({}, 'daemon.json'), { lookup });
  try {
    const r = await pull(transport, await LocalImageStore.open(join(dir, 'root')), ref, { progress: quiet });
    assert.match(r.digest, /^sha256:[0-9a-f]{64}$/);
  } finally {
    await transport.close();
    delete process.env.BERTH_EXTRA_CA_CERTS;
  }
});
