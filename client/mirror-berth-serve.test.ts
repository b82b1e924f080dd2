// Berth end to end as a team would deploy it: `berth serve --proxy-remote-url` (a real child
// process) fronting the reference registry, and `berth pull` with registry-mirrors /
// registry-mirror-map pointing at it. Then the upstream is killed: what the mirror cached still pulls.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { berth, buildImage, freePort, sandbox, skopeo, skopeoDigest, startReferenceRegistry, tempDir, type ReferenceRegistry } from './testing/peers.js';

const BERTH = new URL('../../bin/launch.cjs', import.meta.url).pathname;

let upstream: ReferenceRegistry;
let mirror: ChildProcess;
let mirrorHost: string;
let up: string;
const digests: Record<string, string> = {};

before(async () => {
  const dir = await tempDir();
  const layout = await buildImage(dir, 'm', { extraLayers: 1, layerBytes: 256 * 1024 });
  upstream = await startReferenceRegistry();
  up = upstream.host;
  for (const repo of ['team/app:1', 'library/busybox:latest', 'team/never-pulled:1']) {
    await skopeo('copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:m`, `docker://${up}/${repo}`);
    digests[repo] = await skopeoDigest(`docker://${up}/${repo}`);
  }
  mirrorHost = `127.0.0.1:${await freePort()}`;
  // Tag TTL 0: every tag pull asks upstream first, so the pulls after the kill prove the fallback.
  mirror = spawn(
    process.execPath,
    [BERTH, 'serve', '--listen', mirrorHost, '--data', join(dir, 'mirror-data'), '--log-level', 'error', '--proxy-remote-url', upstream.url, '--proxy-tag-ttl', '0'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  mirror.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  for (let i = 0; ; i++) {
    const ok = await fetch(`http://${mirrorHost}/v2/`).then(
      async (r) => (await r.arrayBuffer(), r.ok),
      () => false,
    );
    if (ok) break;
    if (i > 200 || mirror.exitCode !== null) throw new Error(`berth serve did not start: ${stderr.slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
});

after(async () => {
  if (mirror && mirror.exitCode === null) {
    const exited = new Promise((r) => mirror.once('exit', r));
    mirror.kill('SIGTERM');
    await exited;
  }
  await upstream?.stop();
});

/** `berth pull` in a fresh sandbox (nothing stored locally), so every blob comes over the wire. */
async function pullFresh(ref: string, config: Record<string, unknown>): Promise<{ code: number; stdout: string; stderr: string }> {
  const sb = await sandbox(config);
  try {
    return await berth(['pull', ref], sb.env);
  } finally {
    await sb.cleanup();
  }
}

const viaMap = () => ({ 'registry-mirror-map': { [up]: [`http://${mirrorHost}`] } });
const viaHubMirrors = () => ({ 'registry-mirrors': [`http://${mirrorHost}`] });

test('berth pull through a berth serve mirror (registry-mirror-map) gets the upstream digest', async () => {
  const r = await pullFresh(`${up}/team/app:1`, viaMap());
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^Digest: ${digests['team/app:1']}$`, 'm'));
  // The mirror now answers for the same digest itself.
  const head = await fetch(`http://${mirrorHost}/v2/team/app/manifests/${digests['team/app:1']}`, { method: 'HEAD' });
  assert.equal(head.headers.get('docker-content-digest'), digests['team/app:1']);
});

test('registry-mirrors: a docker.io pull is served by the mirror, which fetches it from its upstream', async () => {
  // docker.io itself is unreachable here: success can only come through the mirror.
  const r = await pullFresh('busybox', viaHubMirrors());
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^Digest: ${digests['library/busybox:latest']}$`, 'm'));
});

test('with the upstream killed, cached images still pull through the mirror; uncached ones fail clearly', async () => {
  await upstream.stop();
  assert.equal(await fetch(`${upstream.url}/v2/`).then(() => 'up', () => 'down'), 'down');

  const app = await pullFresh(`${up}/team/app:1`, viaMap());
  assert.equal(app.code, 0, app.stderr);
  assert.match(app.stdout, new RegExp(`^Digest: ${digests['team/app:1']}$`, 'm'));
  const byDigest = await pullFresh(`${up}/team/app@${digests['team/app:1']}`, viaMap());
  assert.equal(byDigest.code, 0, byDigest.stderr);
  const hub = await pullFresh('busybox', viaHubMirrors());
  assert.equal(hub.code, 0, hub.stderr);
  assert.match(hub.stdout, new RegExp(`^Digest: ${digests['library/busybox:latest']}$`, 'm'));

  // Never pulled, so never cached: the mirror has nothing and the registry itself is down.
  const missing = await pullFresh(`${up}/team/never-pulled:1`, viaMap());
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr.trim().split('\n').length, 1, missing.stderr);
  // The mirror answers 503 (upstream down), the client falls back to the registry, which is down too.
  assert.match(missing.stderr, new RegExp(`^berth pull: cannot reach registry ${up.replace(/\./g, '\\.')}`));
});
