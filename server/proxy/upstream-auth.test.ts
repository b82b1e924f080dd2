// The mirror's upstream credentials and token realms (oci/auth-challenge.ts realmRefusal): an HTTPS
// upstream whose Bearer realm is plain HTTP elsewhere gets no token request at all (so the realm
// never sees the credentials) and the pull fails with a clear DENIED naming the realm; an HTTPS
// upstream with its own HTTPS realm still works with credentials. Real servers on 127.0.0.1: two
// token-auth Berths over TLS and a plain-HTTP "token service" that records what reaches it.
// A file of its own: BERTH_EXTRA_CA_CERTS is read once per process (oci/trusted-cas.ts).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { startTestRegistry, type TestRegistry } from '../testing.js';
import { ensureSelfSigned } from '../tls.js';
import { buildTestImage, hostOf, sh, skopeoCopy } from '../test-images.js';
import { DEFAULT_AUTH } from '../auth/config.js';
import { DEFAULT_PROXY } from './config.js';

let dir: string;
let users: string;
let tls: { cert: string; key: string };
let upstream: TestRegistry;
let downgrading: TestRegistry;
let recorder: Server;
let recorderUrl: string;
const seen: Array<{ url: string; headers: IncomingHttpHeaders }> = [];
const started: TestRegistry[] = [];

async function tokenUpstream(realm?: string): Promise<TestRegistry> {
  const r = await startTestRegistry({ tls, auth: { ...DEFAULT_AUTH, mode: 'token', htpasswd: users, token: { ...DEFAULT_AUTH.token, ...(realm ? { realm } : {}) } } });
  started.push(r);
  return r;
}

async function mirrorOf(remoteUrl: string, creds: { username: string; password: string } | undefined): Promise<TestRegistry> {
  const m = await startTestRegistry({ proxy: { ...DEFAULT_PROXY, remoteUrl, ...creds } });
  started.push(m);
  return m;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-upstream-auth-'));
  tls = { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') };
  await ensureSelfSigned(tls.cert, tls.key, pino({ level: 'silent' }));
  // The mirror verifies its HTTPS upstream against this certificate.
  process.env.BERTH_EXTRA_CA_CERTS = tls.cert;
  users = join(dir, 'users');
  await sh('htpasswd', ['-B', '-c', '-b', users, 'alice', 'alice-pw']);
  recorder = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'stolen', expires_in: 300 }));
  });
  await new Promise<void>((r) => recorder.listen(0, '127.0.0.1', r));
  recorderUrl = `http://127.0.0.1:${(recorder.address() as AddressInfo).port}`;
  upstream = await tokenUpstream();
  downgrading = await tokenUpstream(`${recorderUrl}/token`);
  const img = await buildTestImage({ randomBytes: 4096 });
  await skopeoCopy(img.ref, `docker://${hostOf(upstream.url)}/team/app:v1`, { destCreds: 'alice:alice-pw' });
});

after(async () => {
  for (const r of started) await r.destroy();
  recorder?.closeAllConnections();
  await new Promise<void>((r) => (recorder ? recorder.close(() => r()) : r()));
  await rm(dir, { recursive: true, force: true });
});

test('an https upstream with its own https token realm: the mirror pulls with its credentials', async () => {
  assert.match(upstream.url, /^https:\/\//);
  const mirror = await mirrorOf(upstream.url, { username: 'alice', password: 'alice-pw' });
  const r = await fetch(`${mirror.url}/v2/team/app/manifests/v1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(r.status, 200, await r.clone().text());
  const manifest = (await r.json()) as { layers: Array<{ digest: string }> };
  const blob = await fetch(`${mirror.url}/v2/team/app/blobs/${manifest.layers[0]!.digest}`);
  assert.equal(blob.status, 200);
  await blob.arrayBuffer();
  // Wrong credentials are still a clear refusal from the (https) token service.
  const bad = await mirrorOf(upstream.url, { username: 'alice', password: 'nope' });
  const denied = await fetch(`${bad.url}/v2/team/app/manifests/v1`);
  assert.equal(denied.status, 403);
  assert.match(((await denied.json()) as { errors: Array<{ message: string }> }).errors[0]!.message, /token service https:\/\/127\.0\.0\.1:\d+ refused \(HTTP 401\): check --proxy-username/);
});

test('an https upstream announcing a plain-http realm elsewhere: no token request, so no credentials, and a clear DENIED', async () => {
  assert.match(downgrading.url, /^https:\/\//);
  seen.length = 0;
  for (const creds of [{ username: 'alice', password: 'alice-pw' }, undefined]) {
    const mirror = await mirrorOf(downgrading.url, creds);
    const r = await fetch(`${mirror.url}/v2/team/app/manifests/v1`);
    assert.equal(r.status, 403);
    const err = ((await r.json()) as { errors: Array<{ code: string; message: string }> }).errors[0]!;
    assert.equal(err.code, 'DENIED');
    assert.equal(
      err.message,
      `upstream ${downgrading.url}: token realm ${recorderUrl}/token is plain HTTP but registry ${downgrading.url} is HTTPS: refusing to send credentials over an unencrypted connection`,
    );
  }
  assert.deepEqual(seen.map((s) => s.headers.authorization), [], 'the plain-http realm received nothing, let alone an Authorization header');
});
