// Mirror mode against real upstreams: a second Berth (token auth) and the reference registry
// (docker-registry, htpasswd auth), with skopeo pulling through the mirror. A counting HTTP proxy
// between mirror and upstream counts upstream downloads and, closed, plays the upstream going down.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createHash } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { startTestRegistry, type TestRegistry } from '../testing.js';
import { CountingProxy } from '../testing-upstream.js';
import { buildTestImage, hostOf, sh, skopeoCopy } from '../test-images.js';
import { DEFAULT_AUTH } from '../auth/config.js';
import { DEFAULT_PROXY } from './config.js';
import { CacheRecords } from './cache-records.js';
import { evictUnused } from './mirror.js';

async function layers(layout: string, tag: string): Promise<Array<{ digest: string; size: number }>> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const desc = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)!;
  const blob = (d: string) => join(layout, 'blobs', ...d.split(':'));
  const manifest = JSON.parse(await readFile(blob(desc.digest), 'utf8')) as { layers: Array<{ digest: string; size: number }> };
  return manifest.layers;
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let dir: string;
let upstream: TestRegistry;
let img: Awaited<ReturnType<typeof buildTestImage>>;
let bigLayer: { digest: string; size: number };
const mirrors: TestRegistry[] = [];
const proxies: CountingProxy[] = [];

async function mirrorOf(target: string, opts: { tagTtlSeconds?: number; username?: string; password?: string } = {}): Promise<{ mirror: TestRegistry; proxy: CountingProxy }> {
  const proxy = await new CountingProxy(target).start();
  proxies.push(proxy);
  const mirror = await startTestRegistry({
    proxy: { ...DEFAULT_PROXY, remoteUrl: proxy.url, username: opts.username ?? 'alice', password: opts.password ?? 'alice-pw', tagTtlSeconds: opts.tagTtlSeconds ?? 300 },
  });
  mirrors.push(mirror);
  return { mirror, proxy };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-mirror-'));
  const users = join(dir, 'users');
  await sh('htpasswd', ['-B', '-c', '-b', users, 'alice', 'alice-pw']);
  upstream = await startTestRegistry({ auth: { ...DEFAULT_AUTH, mode: 'token', htpasswd: users } });
  img = await buildTestImage({ randomBytes: 4 << 20 });
  await skopeoCopy(img.ref, `docker://${hostOf(upstream.url)}/team/app:v1`, { destCreds: 'alice:alice-pw' });
  bigLayer = (await layers(img.layout, img.tag)).reduce((a, b) => (a.size > b.size ? a : b));
});

after(async () => {
  for (const m of mirrors) await m.destroy();
  for (const p of proxies) await p.stop().catch(() => undefined);
  await upstream?.destroy();
  await rm(dir, { recursive: true, force: true });
});

test('skopeo pulls through the mirror from a token-auth upstream; a second pull downloads nothing upstream', async () => {
  const { mirror, proxy } = await mirrorOf(upstream.url);
  const out = join(dir, 'cold');
  await skopeoCopy(`docker://${hostOf(mirror.url)}/team/app:v1`, `oci:${out}:v1`);
  const pulled = await layers(out, 'v1');
  assert.deepEqual(pulled.map((l) => l.digest).sort(), (await layers(img.layout, img.tag)).map((l) => l.digest).sort());
  const fetched = [...proxy.counts.values()].reduce((a, b) => a + b, 0);
  assert.ok(fetched >= 2, 'layers and config came from upstream');
  await skopeoCopy(`docker://${hostOf(mirror.url)}/team/app:v1`, `oci:${join(dir, 'warm')}:v1`);
  assert.equal([...proxy.counts.values()].reduce((a, b) => a + b, 0), fetched);
});

test('16 concurrent clients asking for one uncached blob cause exactly one upstream download', async () => {
  const { mirror, proxy } = await mirrorOf(upstream.url);
  const path = `/v2/team/app/blobs/${bigLayer.digest}`;
  const bodies = await Promise.all(
    Array.from({ length: 16 }, async () => {
      const r = await fetch(mirror.url + path);
      assert.equal(r.status, 200);
      return Buffer.from(await r.arrayBuffer());
    }),
  );
  for (const b of bodies) {
    assert.equal(b.length, bigLayer.size);
    assert.equal(sha256(b), bigLayer.digest);
  }
  assert.equal(proxy.count(path), 1);
  // And it is now a cached blob like any other.
  assert.equal((await fetch(mirror.url + path, { method: 'HEAD' })).headers.get('content-length'), String(bigLayer.size));
  assert.equal(proxy.count(path), 1);
});

test('pushes to a mirror are refused with UNSUPPORTED', async () => {
  const { mirror } = await mirrorOf(upstream.url);
  for (const [method, path] of [
    ['POST', '/v2/team/app/blobs/uploads/'],
    ['PUT', '/v2/team/app/manifests/v2'],
    ['DELETE', `/v2/team/app/blobs/${bigLayer.digest}`],
  ] as const) {
    const r = await fetch(mirror.url + path, { method });
    assert.equal(r.status, 405, `${method} ${path}`);
    assert.equal(((await r.json()) as { errors: Array<{ code: string }> }).errors[0]!.code, 'UNSUPPORTED');
  }
  await assert.rejects(skopeoCopy(img.ref, `docker://${hostOf(mirror.url)}/team/app:v9`));
});

test('with the upstream down, cached content is still served and uncached content is a clear 503', async () => {
  // TTL 0: every tag request tries upstream first, so this proves the fallback, not the TTL.
  const { mirror, proxy } = await mirrorOf(upstream.url, { tagTtlSeconds: 0 });
  const host = hostOf(mirror.url);
  await skopeoCopy(`docker://${host}/team/app:v1`, `oci:${join(dir, 'before-down')}:v1`);
  await proxy.stop();
  await skopeoCopy(`docker://${host}/team/app:v1`, `oci:${join(dir, 'while-down')}:v1`);
  const tag = await fetch(`${mirror.url}/v2/team/app/manifests/never-pulled`);
  assert.equal(tag.status, 503);
  assert.match(((await tag.json()) as { errors: Array<{ message: string }> }).errors[0]!.message, /upstream registry cannot be reached/);
  const blob = await fetch(`${mirror.url}/v2/team/other/blobs/sha256:${'2'.repeat(64)}`);
  assert.equal(blob.status, 503);
  await blob.body?.cancel();
});

test('a moved upstream tag is picked up once its TTL is over, not before', async () => {
  const img2 = await buildTestImage({ randomBytes: 1024, tag: 'v1' });
  await skopeoCopy(img.ref, `docker://${hostOf(upstream.url)}/team/moving:v1`, { destCreds: 'alice:alice-pw' });
  const fresh = (await mirrorOf(upstream.url, { tagTtlSeconds: 0 })).mirror;
  const cached = (await mirrorOf(upstream.url, { tagTtlSeconds: 3600 })).mirror;
  const digestVia = async (m: TestRegistry) => (await fetch(`${m.url}/v2/team/moving/manifests/v1`, { method: 'HEAD' })).headers.get('docker-content-digest');
  const first = await digestVia(fresh);
  assert.equal(await digestVia(cached), first);
  await skopeoCopy(img2.ref, `docker://${hostOf(upstream.url)}/team/moving:v1`, { destCreds: 'alice:alice-pw' });
  const moved = await digestVia(fresh);
  assert.notEqual(moved, first);
  assert.equal(await digestVia(cached), first);
});

test('content unused for the eviction period is removed, and fetched again on demand', async () => {
  const { mirror, proxy } = await mirrorOf(upstream.url);
  const path = `/v2/team/app/blobs/${bigLayer.digest}`;
  await (await fetch(mirror.url + path)).arrayBuffer();
  await (await fetch(`${mirror.url}/v2/team/app/manifests/v1`)).arrayBuffer();
  assert.equal(await mirror.store.hasBlob(bigLayer.digest), true);
  // Nothing was used after this cutoff: everything goes.
  const out = await evictUnused(mirror.store, new CacheRecords(mirror.store, 3_600_000), Date.now() + 1000);
  assert.ok(out.blobs >= 1 && out.manifests >= 1);
  assert.equal(await mirror.store.hasBlob(bigLayer.digest), false);
  assert.equal((await fetch(mirror.url + path, { method: 'HEAD' })).status, 200, 'HEAD asks upstream, without downloading');
  assert.equal(proxy.count(path), 1);
  const again = Buffer.from(await (await fetch(mirror.url + path)).arrayBuffer());
  assert.equal(sha256(again), bigLayer.digest);
  assert.equal(proxy.count(path), 2);
});

test('content that does not match its digest is neither stored nor delivered whole', async () => {
  const { mirror, proxy } = await mirrorOf(upstream.url);
  proxy.corrupt = true;
  const path = `/v2/team/app/blobs/${bigLayer.digest}`;
  const got = await fetch(mirror.url + path).then(
    async (r) => Buffer.from(await r.arrayBuffer()),
    () => undefined,
  ).catch(() => undefined);
  assert.ok(got === undefined || got.length < bigLayer.size, 'the body never arrives complete');
  assert.equal(await mirror.store.hasBlob(bigLayer.digest), false);
  assert.equal(await mirror.store.blobLink('team/app', bigLayer.digest), undefined);
});

test('the reference registry with htpasswd auth as upstream', async (t) => {
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const users = join(dir, 'ref-users');
  await sh('htpasswd', ['-B', '-c', '-b', users, 'ref', 'ref-pw']);
  const cfg = join(dir, 'ref.yml');
  await writeFile(
    cfg,
    [
      'version: 0.1',
      'log: {level: error}',
      `storage: {filesystem: {rootdirectory: ${join(dir, 'ref-data')}}}`,
      `http: {addr: 127.0.0.1:${port}}`,
      `auth: {htpasswd: {realm: ref, path: ${users}}}`,
    ].join('\n'),
  );
  const ref: ChildProcess = spawn('/usr/bin/docker-registry', ['serve', cfg], { stdio: 'ignore' });
  t.after(() => void ref.kill());
  const refUrl = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (await fetch(`${refUrl}/v2/`).then((r) => r.status === 401, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await skopeoCopy(img.ref, `docker://127.0.0.1:${port}/lib/app:v1`, { destCreds: 'ref:ref-pw' });
  const { mirror, proxy } = await mirrorOf(refUrl, { username: 'ref', password: 'ref-pw' });
  await skopeoCopy(`docker://${hostOf(mirror.url)}/lib/app:v1`, `oci:${join(dir, 'from-ref')}:v1`);
  assert.deepEqual((await layers(join(dir, 'from-ref'), 'v1')).map((l) => l.digest).sort(), (await layers(img.layout, img.tag)).map((l) => l.digest).sort());
  assert.equal(proxy.count(`/v2/lib/app/blobs/${bigLayer.digest}`), 1);
  // Wrong upstream credentials: a clear refusal, not a hang or a 500.
  const bad = (await mirrorOf(refUrl, { username: 'ref', password: 'nope' })).mirror;
  const r = await fetch(`${bad.url}/v2/lib/app/manifests/v1`);
  assert.equal(r.status, 403);
  await r.body?.cancel();
});
