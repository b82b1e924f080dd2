// Mirrors: two real registries on loopback, the mirror fronted by a logging proxy.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestRegistry, type TestRegistry } from '../server/testing.js';
import { berth, buildImage, freePort, sandbox, skopeo, skopeoDigest, tempDir } from './testing/peers.js';
import { startFixtureProxy, type FixtureProxy } from './testing/fixture-proxy.js';

let layout: string;
let upstream: TestRegistry;
let mirror: TestRegistry;
let mirrorProxy: FixtureProxy;
let up: string;

before(async () => {
  layout = await buildImage(await tempDir(), 'm', { extraLayers: 1, layerBytes: 16 * 1024 });
  [upstream, mirror] = await Promise.all([startTestRegistry(), startTestRegistry()]);
  mirrorProxy = await startFixtureProxy(mirror.url);
  up = new URL(upstream.url).host;
  await skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:m`, `docker://${up}/team/app:1`);
  // Only the mirror has this one: a pull of it proves the mirror is asked first.
  await skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:m`, `docker://${mirrorProxy.host}/team/only-on-mirror:1`);
  await skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:m`, `docker://${mirrorProxy.host}/library/busybox:latest`);
});

after(async () => {
  await mirrorProxy?.close();
  await Promise.all([upstream?.destroy(), mirror?.destroy()]);
});

test('the mirror serves what it has; a 404 on the mirror falls back to the registry; pushes skip the mirror', async () => {
  const sb = await sandbox({ 'registry-mirror-map': { [up]: [`http://${mirrorProxy.host}`] } });
  try {
    const fromMirror = await berth(['pull', `${up}/team/only-on-mirror:1`], sb.env);
    assert.equal(fromMirror.code, 0, fromMirror.stderr);
    const fallback = await berth(['pull', `${up}/team/app:1`], sb.env);
    assert.equal(fallback.code, 0, fallback.stderr);
    assert.match(fallback.stdout, new RegExp(`Digest: ${await skopeoDigest(`docker://${up}/team/app:1`)}`));
    assert.ok(mirrorProxy.log.includes('GET /v2/team/app/manifests/1'), 'the mirror was asked first');

    mirrorProxy.log.length = 0;
    await berth(['tag', `${up}/team/app:1`, `${up}/team/pushed:1`], sb.env);
    const p = await berth(['push', `${up}/team/pushed:1`], sb.env);
    assert.equal(p.code, 0, p.stderr);
    assert.deepEqual(mirrorProxy.log, []);
    await skopeoDigest(`docker://${up}/team/pushed:1`);
  } finally {
    await sb.cleanup();
  }
});

test('registry-mirrors front docker.io: busybox comes from the mirror', async () => {
  const sb = await sandbox({ 'registry-mirrors': [`http://${mirrorProxy.host}`] });
  try {
    const r = await berth(['pull', 'busybox'], sb.env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Using default tag: latest$/m);
    assert.match(r.stdout, /^latest: Pulling from library\/busybox$/m);
    assert.match(r.stdout, /^docker\.io\/library\/busybox:latest$/m);
    assert.match((await berth(['images'], sb.env)).stdout, /^busybox\s+latest\s/m);
  } finally {
    await sb.cleanup();
  }
});

test('a mirror that is down falls back to the registry; both down is one clear error', async () => {
  const deadMirror = `127.0.0.1:${await freePort()}`;
  const deadRegistry = `127.0.0.1:${await freePort()}`;
  const sb = await sandbox({ 'registry-mirror-map': { [up]: [`http://${deadMirror}`], [deadRegistry]: [`http://${deadMirror}`] } });
  try {
    const r = await berth(['pull', `${up}/team/app:1`], sb.env);
    assert.equal(r.code, 0, r.stderr);
    const both = await berth(['pull', `${deadRegistry}/team/app:1`], sb.env);
    assert.equal(both.code, 1);
    assert.equal(both.stderr.trim().split('\n').length, 1, both.stderr);
    assert.match(both.stderr, new RegExp(`^berth pull: cannot reach registry ${deadRegistry.replace(/\./g, '\\.')}`));
  } finally {
    await sb.cleanup();
  }
});
