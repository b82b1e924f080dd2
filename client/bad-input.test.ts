// Failures a user meets: each exits non-zero with one clear stderr line and stores nothing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { open, readdir, readFile, stat, mkdir } from 'node:fs/promises';
import { createServer, type AddressInfo, type LookupFunction } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';
import { startTestRegistry, type TestRegistry } from '../server/testing.js';
import { berth, buildImage, freePort, sandbox, skopeo, tempDir } from './testing/peers.js';
import { parseConfig } from './config.js';
import { LocalImageStore } from './store/image-store.js';
import { Transport } from './transport/registry-client.js';
import { AccessPolicy, isLoopbackRegistry } from '../oci/access-policy.js';
import { Progress } from './progress.js';
import { pull } from './pull.js';
import { parseReference } from '../oci/reference.js';

const exec = promisify(execFile);
const quiet = new Progress(new Writable({ write: (_c, _e, cb) => cb() }), { quiet: true });

let layout: string;
let reg: TestRegistry;
let host: string;

before(async () => {
  layout = await buildImage(await tempDir(), 'x', { extraLayers: 2, layerBytes: 400 * 1024 });
  reg = await startTestRegistry();
  host = new URL(reg.url).host;
  await skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:x`, `docker://${host}/team/app:1`);
});

after(async () => {
  await reg?.destroy();
});

async function assertNothingStored(root: string): Promise<void> {
  const store = await LocalImageStore.open(root);
  assert.deepEqual(await store.allBlobs(), []);
  const doc = await store.index.read();
  assert.deepEqual(doc.tags, {});
  assert.deepEqual(doc.images, {});
  assert.deepEqual(await readdir(store.blobs.layout.tmpDir), []);
}

test('unknown image, invalid reference and unreachable registry: one line, exit 1', async () => {
  const sb = await sandbox();
  try {
    const unknown = await berth(['pull', `${host}/team/nope:1`], sb.env);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^berth pull: .*manifest unknown.*\n$/);
    const invalid = await berth(['pull', 'Team/App'], sb.env);
    assert.equal(invalid.code, 1);
    assert.equal(invalid.stderr, 'berth pull: invalid reference "Team/App": repository name must be lowercase\n');
    const port = await freePort();
    const down = await berth(['pull', `127.0.0.1:${port}/team/app:1`], sb.env);
    assert.equal(down.code, 1);
    assert.match(down.stderr, new RegExp(`^berth pull: cannot reach registry 127\\.0\\.0\\.1:${port}: .*\\n$`));
    const noImage = await berth(['push', `${host}/team/never-pulled:1`], sb.env);
    assert.equal(noImage.code, 1);
    assert.match(noImage.stderr, /^berth push: No such image: .*\n$/);
    const badConfig = await berth(['pull', `${host}/team/app:1`], { ...sb.env, BERTH_CONFIG: join(sb.dir, 'missing.json') });
    assert.equal(badConfig.code, 1);
    assert.match(badConfig.stderr, /^berth pull: cannot read config .*missing\.json/);
    await assertNothingStored(sb.env.BERTH_ROOT!);
  } finally {
    await sb.cleanup();
  }
});

/** Resolves registry.test to 127.0.0.1 (a name that is not loopback by Docker's rules). */
const lookup = ((hostname: string, options: unknown, cb: (e: Error | null, a: string | LookupAddress[], f?: number) => void) => {
  if (hostname === 'registry.test') {
    const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all;
    return all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4);
  }
  return dnsLookup(hostname, options as never, cb as never);
}) as unknown as LookupFunction;

test('a plain-HTTP registry not marked insecure is refused with how to allow it', async () => {
  // "registry.test" resolves to the loopback registry but is not a loopback name, so it gets
  // the default policy: HTTPS only.
  const name = `registry.test:${new URL(reg.url).port}`;
  const root = await tempDir();
  const strict = new Transport(parseConfig({}, '/etc/berth/daemon.json'), { lookup });
  try {
    await assert.rejects(pull(strict, await LocalImageStore.open(root), parseReference(`${name}/team/app:1`), { progress: quiet }), (e: Error) => {
      assert.equal(e.message, `registry ${name} does not speak HTTPS (server gave an HTTP response to an HTTPS client?); to allow plain HTTP, add "${name}" to "insecure-registries" in /etc/berth/daemon.json`);
      return true;
    });
  } finally {
    await strict.close();
  }
  await assertNothingStored(root);
  const allowed = new Transport(parseConfig({ 'insecure-registries': [name] }, 'test'), { lookup });
  try {
    const r = await pull(allowed, await LocalImageStore.open(root), parseReference(`${name}/team/app:1`), { progress: quiet });
    assert.match(r.digest, /^sha256:/);
  } finally {
    await allowed.close();
  }
});

test('an HTTPS registry with an untrusted certificate is refused unless marked insecure', async () => {
  const dir = await tempDir();
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  await exec('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=registry.test', '-addext', 'subjectAltName=DNS:registry.test', '-keyout', key, '-out', cert]);
  const tlsReg = await startTestRegistry({ tls: { cert, key } });
  const root = await tempDir();
  try {
    const name = `registry.test:${new URL(tlsReg.url).port}`;
    await skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:x`, `docker://${new URL(tlsReg.url).host}/team/app:1`);
    const strict = new Transport(parseConfig({}, 'daemon.json'), { lookup });
    try {
      await assert.rejects(pull(strict, await LocalImageStore.open(root), parseReference(`${name}/team/app:1`), { progress: quiet }), /^UnreachableError: TLS certificate of registry registry\.test:\d+ is not trusted \(\w+\); install its CA, or add "registry\.test:\d+" to "insecure-registries"/);
    } finally {
      await strict.close();
    }
    await assertNothingStored(root);
    const allowed = new Transport(parseConfig({ 'insecure-registries': ['registry.test'] }, 'daemon.json'), { lookup });
    try {
      await pull(allowed, await LocalImageStore.open(root), parseReference(`${name}/team/app:1`), { progress: quiet });
    } finally {
      await allowed.close();
    }
  } finally {
    await tlsReg.destroy();
  }
});

test('a registry on this machine is asked over plain HTTP first, and over HTTPS when it speaks only TLS', async () => {
  // A plain-HTTP /v2/ that records how each connection began: 0x16 is a TLS ClientHello.
  const firstBytes: number[] = [];
  const plain = createServer((sock) => {
    sock.once('data', (d: Buffer) => {
      firstBytes.push(d[0]!);
      if (d[0] === 0x16) return void sock.destroy();
      sock.end('HTTP/1.1 200 OK\r\nDocker-Distribution-API-Version: registry/2.0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    });
  });
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  const dir = await tempDir();
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  await exec('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert]);
  const tlsReg = await startTestRegistry({ tls: { cert, key } });
  const transport = new Transport(parseConfig({}, 'daemon.json'));
  try {
    const local = transport.client(`127.0.0.1:${(plain.address() as AddressInfo).port}`);
    await local.ping();
    assert.equal(local.baseUrl, `http://127.0.0.1:${(plain.address() as AddressInfo).port}`);
    assert.deepEqual(firstBytes, [0x47], 'one plain GET, no TLS attempt');
    const tlsHost = new URL(tlsReg.url).host;
    const tls = transport.client(tlsHost);
    await tls.ping();
    assert.equal(tls.baseUrl, `https://${tlsHost}`);
  } finally {
    await transport.close();
    await tlsReg.destroy();
    await new Promise((r) => plain.close(r));
  }
  assert.ok(isLoopbackRegistry('127.0.0.1:5000') && isLoopbackRegistry('localhost') && isLoopbackRegistry('[::1]:5000') && isLoopbackRegistry('127.1.2.3'));
  assert.ok(!isLoopbackRegistry('10.0.0.1:5000') && !isLoopbackRegistry('registry.test:5000') && !isLoopbackRegistry('128.0.0.1'));
});

test('insecure-registries takes hosts, host:port and CIDRs; loopback is insecure by default', () => {
  const p = new AccessPolicy(['10.1.0.0/16', 'reg.local', 'other:5000', 'fd00::/8']);
  assert.ok(p.isInsecure('10.1.2.3:5000'));
  assert.ok(!p.isInsecure('10.2.0.1'));
  assert.ok(p.isInsecure('reg.local:443'));
  assert.ok(p.isInsecure('other:5000'));
  assert.ok(!p.isInsecure('other:5001'));
  assert.ok(p.isInsecure('[fd00::1]:5000'));
  assert.ok(p.isInsecure('127.0.0.1:5000') && p.isInsecure('localhost:5000') && p.isInsecure('[::1]:5000'));
  assert.ok(!p.isInsecure('registry.example.com'));
  assert.throws(() => new AccessPolicy(['10.0.0.0/40']), /invalid CIDR/);
});

test('a registry serving bytes that do not match the digest: pull fails, nothing stored', async () => {
  const lying = await startTestRegistry();
  const sb = await sandbox();
  try {
    const lhost = new URL(lying.url).host;
    await skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:x`, `docker://${lhost}/team/app:1`);
    // Corrupt the largest blob on the registry's disk, keeping its size.
    const manifest = JSON.parse(await (await fetch(`${lying.url}/v2/team/app/manifests/1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).text()) as { layers: Array<{ digest: string; size: number }> };
    const victim = [...manifest.layers].sort((a, b) => b.size - a.size)[0]!;
    const hex = victim.digest.slice(7);
    const path = join(lying.dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex);
    const fh = await open(path, 'r+');
    await fh.write(Buffer.from('corrupted!'), 0, 10, 1000);
    await fh.close();
    const r = await berth(['pull', `${lhost}/team/app:1`], sb.env);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^berth pull: layer ${victim.digest} failed verification .*nothing was stored\\n$`));
    await assertNothingStored(sb.env.BERTH_ROOT!);
  } finally {
    await sb.cleanup();
    await lying.destroy();
  }
});

test('disk full during a pull: one clear line, nothing half-stored', async (t) => {
  const sb = await sandbox();
  const mnt = join(sb.dir, 'small');
  await mkdir(mnt);
  try {
    await exec('mount', ['-t', 'tmpfs', '-o', 'size=1200k', 'tmpfs', mnt]);
  } catch {
    t.skip('mounting a tmpfs needs root');
    await sb.cleanup();
    return;
  }
  try {
    const env = { ...sb.env, BERTH_ROOT: join(mnt, 'root') };
    const r = await berth(['pull', `${host}/team/app:1`], env);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr);
    assert.match(r.stderr, /^berth pull: no space left on device/);
    await assertNothingStored(env.BERTH_ROOT);
    assert.ok((await stat(mnt)).isDirectory());
    void readFile;
  } finally {
    await exec('umount', [mnt]).catch(() => undefined);
    await sb.cleanup();
  }
});
