// --auth token: the built-in token service (docker-registry-api/token.md, jwt.md, oauth.md) against
// skopeo and against forged tokens; key rotation; an external issuer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, createPrivateKey } from 'node:crypto';
import { mkdtemp, writeFile, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import jwt from 'jsonwebtoken';
import { pino } from 'pino';
import { startRegistry, type RunningRegistry } from '../serve.js';
import { startTestRegistry, type TestRegistry } from '../testing.js';
import { DEFAULT_CONFIG, validateConfig } from '../config.js';
import { buildTestImage, hostOf, sh, skopeoCopy } from '../test-images.js';
import { DEFAULT_AUTH, DEFAULT_LIMIT, type AuthConfig } from './config.js';
import { KeyRing } from './token-keys.js';
import { Tokens, TokenError } from './tokens.js';

let dir: string;
let users: string;
let reg: RunningRegistry;
let dataDir: string;
let logText = '';
let ext: TestRegistry;
const extKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });

const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

async function token(user: [string, string] | undefined, ...scopes: string[]): Promise<{ token: string; access_token: string; expires_in: number; refresh_token?: string }> {
  const q = new URLSearchParams({ service: 'berth' });
  for (const s of scopes) q.append('scope', s);
  const r = await fetch(`${reg.url}/token?${q}`, { headers: user ? basic(...user) : {} });
  assert.equal(r.status, 200, await r.clone().text());
  return (await r.json()) as { token: string; access_token: string; expires_in: number };
}

async function serverKey(): Promise<{ kid: string; key: ReturnType<typeof createPrivateKey> }> {
  const keysDir = join(dataDir, 'auth', 'keys');
  const [file] = (await readdir(keysDir)).filter((f) => f.endsWith('.pem'));
  const key = createPrivateKey(await readFile(join(keysDir, file!), 'utf8'));
  const ring = new KeyRing(keysDir, { rotateMs: 1e12, keepMs: 1e12 });
  await ring.load();
  return { kid: ring.current().kid, key };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-token-'));
  users = join(dir, 'users');
  await sh('htpasswd', ['-B', '-c', '-b', users, 'alice', 'alice-pw']);
  await sh('htpasswd', ['-B', '-b', users, 'bob', 'bob-pw']);
  const acl = join(dir, 'acl.json');
  await writeFile(acl, JSON.stringify({ access: [{ account: 'alice', name: 'team/*', actions: ['*'] }, { account: 'bob', name: 'team/*', actions: ['pull'] }] }));
  dataDir = join(dir, 'data');
  const capture = new Writable({
    write(chunk, _enc, cb) {
      logText += String(chunk);
      cb();
    },
  });
  // Wrong passwords on purpose, all from 127.0.0.1: more room than the default limiter's 10 a minute (tested in auth-limit.test.ts).
  const auth: AuthConfig = { ...DEFAULT_AUTH, mode: 'token', htpasswd: users, acl, limit: { ...DEFAULT_LIMIT, failures: 1000 } };
  reg = await startRegistry(validateConfig({ ...DEFAULT_CONFIG, listen: '127.0.0.1:0', data: dataDir, logLevel: 'debug', auth }), { logger: pino({ level: 'debug' }, capture) });
  const pub = join(dir, 'ext.pem');
  await writeFile(pub, extKeys.publicKey.export({ type: 'spki', format: 'pem' }));
  ext = await startTestRegistry({ auth: { ...auth, acl: undefined, token: { ...auth.token, external: { issuer: 'corp-auth', publicKey: pub } } } });
});

after(async () => {
  await reg?.close(1000);
  await ext?.destroy();
  await rm(dir, { recursive: true, force: true });
});

test('challenges name the realm, service and scope exactly as token.md shows', async () => {
  const ping = await fetch(`${reg.url}/v2/`);
  assert.equal(ping.status, 401);
  assert.equal(ping.headers.get('www-authenticate'), `Bearer realm="${reg.url}/token",service="berth"`);
  const m = await fetch(`${reg.url}/v2/team/app/manifests/latest`);
  assert.equal(m.headers.get('www-authenticate'), `Bearer realm="${reg.url}/token",service="berth",scope="repository:team/app:pull"`);
  const up = await fetch(`${reg.url}/v2/team/app/blobs/uploads/`, { method: 'POST' });
  assert.match(up.headers.get('www-authenticate')!, /scope="repository:team\/app:pull,push"$/);
  assert.equal(((await up.json()) as { errors: Array<{ code: string }> }).errors[0]!.code, 'UNAUTHORIZED');
});

test('tokens are ES256 JWTs with a libtrust kid, our iss and aud, and only the granted access', async () => {
  const t = await token(['alice', 'alice-pw'], 'repository:team/app:pull,push');
  assert.equal(t.token, t.access_token);
  assert.equal(t.expires_in, 300);
  const d = jwt.decode(t.token, { complete: true })!;
  assert.equal(d.header.alg, 'ES256');
  assert.match(d.header.kid!, /^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
  const p = d.payload as jwt.JwtPayload;
  assert.equal(p.iss, 'berth-token-service');
  assert.equal(p.aud, 'berth');
  assert.equal(p.sub, 'alice');
  assert.deepEqual(p.access, [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }]);
  assert.equal((await fetch(`${reg.url}/v2/team/app/blobs/uploads/`, { method: 'POST', headers: bearer(t.token) })).status, 202);
  // Bob asks for push and gets pull only; pushing with it is insufficient_scope.
  const b = await token(['bob', 'bob-pw'], 'repository:team/app:pull,push');
  assert.deepEqual((jwt.decode(b.token) as jwt.JwtPayload).access, [{ type: 'repository', name: 'team/app', actions: ['pull'] }]);
  const push = await fetch(`${reg.url}/v2/team/app/blobs/uploads/`, { method: 'POST', headers: bearer(b.token) });
  assert.equal(push.status, 401);
  assert.equal(push.headers.get('www-authenticate'), `Bearer realm="${reg.url}/token",service="berth",scope="repository:team/app:pull,push",error="insufficient_scope"`);
  const del = await fetch(`${reg.url}/v2/team/app/manifests/sha256:${'0'.repeat(64)}`, { method: 'DELETE', headers: bearer(b.token) });
  assert.equal(del.status, 401);
  assert.equal((await fetch(`${reg.url}/v2/team/app/manifests/latest`, { headers: bearer(b.token) })).status, 404);
});

test('a token for repository A does not open repository B', async () => {
  const t = await token(['alice', 'alice-pw'], 'repository:team/a:pull,push');
  const r = await fetch(`${reg.url}/v2/team/b/manifests/latest`, { headers: bearer(t.token) });
  assert.equal(r.status, 401);
  assert.match(r.headers.get('www-authenticate')!, /scope="repository:team\/b:pull",error="insufficient_scope"/);
  // Nor does a mount from a repository the token does not cover copy anything: it becomes a plain upload.
  const blob = Buffer.from('secret layer of team/b');
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  const tb = await token(['alice', 'alice-pw'], 'repository:team/b:pull,push');
  assert.equal((await fetch(`${reg.url}/v2/team/b/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: { ...bearer(tb.token), 'content-type': 'application/octet-stream' }, body: blob })).status, 201);
  const m = await fetch(`${reg.url}/v2/team/a/blobs/uploads/?mount=${digest}&from=team/b`, { method: 'POST', headers: bearer(t.token) });
  assert.equal(m.status, 202);
  const both = await token(['alice', 'alice-pw'], 'repository:team/a:pull,push', 'repository:team/b:pull');
  assert.equal((await fetch(`${reg.url}/v2/team/a/blobs/uploads/?mount=${digest}&from=team/b`, { method: 'POST', headers: bearer(both.token) })).status, 201);
});

test('wrong passwords get no token; anonymous callers get one that grants nothing', async () => {
  const r = await fetch(`${reg.url}/token?service=berth&scope=repository:team/app:pull`, { headers: basic('alice', 'nope') });
  assert.equal(r.status, 401);
  const anon = await token(undefined, 'repository:team/app:pull');
  assert.deepEqual((jwt.decode(anon.token) as jwt.JwtPayload).access, []);
  assert.equal((await fetch(`${reg.url}/v2/team/app/manifests/latest`, { headers: bearer(anon.token) })).status, 401);
  const wrongService = await fetch(`${reg.url}/token?service=elsewhere`, { headers: basic('alice', 'alice-pw') });
  assert.equal(wrongService.status, 400);
});

test('expired, wrongly signed, wrong-audience, unsigned and garbage tokens are refused with invalid_token', async () => {
  const { kid, key } = await serverKey();
  const access = [{ type: 'repository', name: 'team/app', actions: ['pull'] }];
  const now = Math.floor(Date.now() / 1000);
  const good = jwt.sign({ sub: 'alice', access, iat: now, exp: now + 60 }, key, { algorithm: 'ES256', keyid: kid, issuer: 'berth-token-service', audience: 'berth' });
  assert.equal((await fetch(`${reg.url}/v2/team/app/manifests/latest`, { headers: bearer(good) })).status, 404, 'the control token works');
  const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const forged = {
    expired: jwt.sign({ sub: 'alice', access, iat: now - 7200, exp: now - 3600 }, key, { algorithm: 'ES256', keyid: kid, issuer: 'berth-token-service', audience: 'berth' }),
    wrongKey: jwt.sign({ sub: 'alice', access, exp: now + 60 }, otherKey, { algorithm: 'ES256', keyid: kid, issuer: 'berth-token-service', audience: 'berth' }),
    wrongAudience: jwt.sign({ sub: 'alice', access, exp: now + 60 }, key, { algorithm: 'ES256', keyid: kid, issuer: 'berth-token-service', audience: 'other-registry' }),
    wrongIssuer: jwt.sign({ sub: 'alice', access, exp: now + 60 }, key, { algorithm: 'ES256', keyid: kid, issuer: 'mallory', audience: 'berth' }),
    unsigned: jwt.sign({ sub: 'alice', access, exp: now + 60, iss: 'berth-token-service', aud: 'berth' }, '', { algorithm: 'none', keyid: kid }),
    tampered: good.replace(/\.([^.]+)\./, (_m, p: string) => `.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), access: [{ type: 'repository', name: 'team/app', actions: ['push', 'pull'] }] })).toString('base64url')}.`),
    garbage: 'not.a.token',
  };
  for (const [what, t] of Object.entries(forged)) {
    const r = await fetch(`${reg.url}/v2/team/app/manifests/latest`, { headers: bearer(t) });
    assert.equal(r.status, 401, what);
    assert.match(r.headers.get('www-authenticate')!, /error="invalid_token"/, what);
    await r.body?.cancel();
  }
});

test('OAuth2 password and refresh_token grants (oauth.md); a refresh token is no access token', async () => {
  const form = (o: Record<string, string>) => fetch(`${reg.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(o) });
  const r = await form({ grant_type: 'password', username: 'alice', password: 'alice-pw', service: 'berth', client_id: 'test', access_type: 'offline', scope: 'repository:team/app:pull' });
  assert.equal(r.status, 200);
  const body = (await r.json()) as { access_token: string; refresh_token: string; scope: string };
  assert.equal(body.scope, 'repository:team/app:pull');
  assert.ok(body.refresh_token);
  const again = await form({ grant_type: 'refresh_token', refresh_token: body.refresh_token, service: 'berth', client_id: 'test', scope: 'repository:team/app:pull,push' });
  assert.equal(again.status, 200);
  const b2 = (await again.json()) as { access_token: string; scope: string };
  assert.equal(b2.scope, 'repository:team/app:pull,push');
  assert.equal((await fetch(`${reg.url}/v2/team/app/manifests/latest`, { headers: bearer(body.refresh_token) })).status, 401);
  assert.equal((await form({ grant_type: 'password', username: 'alice', password: 'bad', service: 'berth' })).status, 401);
  assert.equal((await form({ grant_type: 'refresh_token', refresh_token: b2.access_token, service: 'berth' })).status, 401);
});

test('every refusal of POST /token is OAuth 2 error JSON (RFC 6749 §5.2), never the registry envelope', async () => {
  const post = (body: string | Buffer, type = 'application/x-www-form-urlencoded') => fetch(`${reg.url}/token`, { method: 'POST', headers: { 'content-type': type }, body: typeof body === 'string' ? body : new Uint8Array(body) });
  const cases: Array<[string, Promise<Response>, number, string]> = [
    ['oversized form (5 MiB)', post(`grant_type=password&username=alice&password=${'x'.repeat(5 << 20)}`), 413, 'invalid_request'],
    ['JSON instead of a form', post(JSON.stringify({ grant_type: 'password', username: 'alice', password: 'alice-pw' }), 'application/json'), 400, 'invalid_request'],
    ['no content type', fetch(`${reg.url}/token`, { method: 'POST', body: new Uint8Array(Buffer.from('grant_type=password')) }), 400, 'invalid_request'],
    ['not UTF-8', post(Buffer.from([0x67, 0x72, 0x61, 0x6e, 0x74, 0x5f, 0x74, 0x79, 0x70, 0x65, 0x3d, 0xff, 0xfe])), 400, 'invalid_request'],
    ['grant_type twice', post('grant_type=password&grant_type=refresh_token&username=alice&password=alice-pw'), 400, 'invalid_request'],
    ['no grant_type', post('username=alice&password=alice-pw'), 400, 'invalid_request'],
    ['unknown grant_type', post('grant_type=client_credentials'), 400, 'unsupported_grant_type'],
    ['password grant without password', post('grant_type=password&username=alice'), 400, 'invalid_request'],
    ['refresh grant without token', post('grant_type=refresh_token'), 400, 'invalid_request'],
    ['wrong password', post('grant_type=password&username=alice&password=nope&service=berth'), 401, 'invalid_grant'],
    ['forged refresh token', post('grant_type=refresh_token&refresh_token=not.a.token&service=berth'), 401, 'invalid_grant'],
    ['wrong service', post('grant_type=password&username=alice&password=alice-pw&service=elsewhere'), 400, 'invalid_request'],
  ];
  for (const [what, pending, status, error] of cases) {
    const r = await pending;
    const text = await r.text();
    assert.equal(r.status, status, `${what}: ${text}`);
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/, what);
    const body = JSON.parse(text) as { error?: string; error_description?: string; errors?: unknown };
    assert.equal(body.error, error, `${what}: ${text}`);
    assert.equal(typeof body.error_description, 'string', what);
    assert.equal(body.errors, undefined, `${what}: no registry envelope`);
    assert.equal(r.headers.get('cache-control'), 'no-store', what);
  }
  // The endpoint still works after all that.
  const ok = await post('grant_type=password&username=alice&password=alice-pw&service=berth&scope=repository:team/app:pull');
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
});

test('skopeo logs in through the token service, pushes as alice, and bob cannot push', async () => {
  const img = await buildTestImage({ randomBytes: 64 * 1024 });
  const host = hostOf(reg.url);
  const authfile = join(dir, 'auth.json');
  await sh('skopeo', ['login', '--tls-verify=false', '--authfile', authfile, '-u', 'alice', '--password-stdin', host], { input: 'alice-pw\n' });
  await sh('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', '--authfile', authfile, img.ref, `docker://${host}/team/app:v1`]);
  await assert.rejects(sh('skopeo', ['login', '--tls-verify=false', '--authfile', join(dir, 'bad.json'), '-u', 'alice', '--password-stdin', host], { input: 'wrong\n' }));
  await assert.rejects(skopeoCopy(img.ref, `docker://${host}/team/app:v2`, { destCreds: 'bob:bob-pw' }));
  await skopeoCopy(`docker://${host}/team/app:v1`, `oci:${join(dir, 'out')}:v1`, { srcCreds: 'bob:bob-pw' });
  const catalog = async (t: string) => ((await (await fetch(`${reg.url}/v2/_catalog`, { headers: bearer(t) })).json()) as { repositories: string[] }).repositories;
  const secret = await reg.store.putBytes(Buffer.from('a blob only to make secret/app exist'));
  await reg.store.linkBlob('secret/app', secret.digest, secret.size);
  const seen = await catalog((await token(['bob', 'bob-pw'], 'registry:catalog:*')).token);
  assert.ok(seen.includes('team/app'));
  assert.ok(!seen.includes('secret/app'));
  assert.equal((await fetch(`${reg.url}/v2/_catalog`, { headers: bearer((await token(['bob', 'bob-pw'], 'repository:team/app:pull')).token) })).status, 401);
});

test('tokens of an external issuer are accepted with its public key, and only with it', async () => {
  const now = Math.floor(Date.now() / 1000);
  const access = [{ type: 'repository', name: 'corp/app', actions: ['pull', 'push'] }];
  const t = jwt.sign({ sub: 'ci-bot', access, exp: now + 60 }, extKeys.privateKey, { algorithm: 'RS256', issuer: 'corp-auth', audience: 'berth', keyid: 'corp-key-1' });
  assert.equal((await fetch(`${ext.url}/v2/corp/app/blobs/uploads/`, { method: 'POST', headers: bearer(t) })).status, 202);
  assert.equal((await fetch(`${ext.url}/v2/corp/other/manifests/x`, { headers: bearer(t) })).status, 401);
  const wrongIss = jwt.sign({ sub: 'ci-bot', access, exp: now + 60 }, extKeys.privateKey, { algorithm: 'RS256', issuer: 'someone-else', audience: 'berth' });
  assert.equal((await fetch(`${ext.url}/v2/corp/app/manifests/x`, { headers: bearer(wrongIss) })).status, 401);
  // HS256 with the public key as the HMAC secret (the classic algorithm confusion) fails.
  const confused = jwt.sign({ sub: 'x', access, exp: now + 60, iss: 'corp-auth', aud: 'berth' }, 'secret', { algorithm: 'HS256' });
  assert.equal((await fetch(`${ext.url}/v2/corp/app/manifests/x`, { headers: bearer(confused) })).status, 401);
});

test('key rotation: a new key signs, the old one verifies until its tokens have expired', async () => {
  const kdir = await mkdtemp(join(tmpdir(), 'berth-keys-'));
  const day = 86_400_000;
  const ring = new KeyRing(kdir, { rotateMs: 30 * day, keepMs: 7 * day });
  await ring.load();
  const cfg = DEFAULT_AUTH.token;
  const tokens = new Tokens(cfg, ring);
  const first = ring.current().kid;
  const old = tokens.issueAccess('alice', [{ type: 'repository', name: 'a', actions: ['pull'] }]).token;
  await ring.rotate(Date.now() + 31 * day);
  assert.notEqual(ring.current().kid, first);
  assert.equal(tokens.verifyAccess(old).sub, 'alice');
  // A restarted server reads both keys back.
  const reread = new KeyRing(kdir, { rotateMs: 30 * day, keepMs: 7 * day });
  await reread.load();
  assert.equal(reread.all().length, 2);
  await ring.rotate(Date.now() + 39 * day);
  assert.throws(() => tokens.verifyAccess(old), TokenError);
  await rm(kdir, { recursive: true, force: true });
});

test('no password, hash or token reaches the log', async () => {
  assert.ok(logText.length > 0);
  for (const secret of ['alice-pw', 'bob-pw', '$2y$', 'eyJ']) assert.ok(!logText.includes(secret), `log contains ${secret}`);
});

test('replicas sharing --token-keys: a token from one verifies on the other, also after a key made since the other started', async () => {
  const keysDir = join(dir, 'shared-keys');
  const auth: AuthConfig = { ...DEFAULT_AUTH, mode: 'token', htpasswd: users, token: { ...DEFAULT_AUTH.token, keysDir } };
  let a = await startTestRegistry({ auth });
  const b = await startTestRegistry({ auth });
  const tokenFrom = async (r: TestRegistry): Promise<string> => {
    const res = await fetch(`${r.url}/token?service=berth&scope=repository:team/app:pull`, { headers: basic('alice', 'alice-pw') });
    assert.equal(res.status, 200);
    return ((await res.json()) as { token: string }).token;
  };
  try {
    const t1 = await tokenFrom(a);
    assert.equal((await fetch(`${b.url}/v2/`, { headers: bearer(t1) })).status, 200);
    // A key made after B started (another replica rotating): A restarts with it and signs with it.
    await a.close(1000);
    const newer = new KeyRing(keysDir, { rotateMs: 0, keepMs: 1e12 });
    await newer.load();
    a = await startTestRegistry({ auth, data: a.dataDir });
    const t2 = await tokenFrom(a);
    assert.notEqual(jwt.decode(t2, { complete: true })?.header.kid, jwt.decode(t1, { complete: true })?.header.kid);
    assert.equal((await fetch(`${b.url}/v2/`, { headers: bearer(t2) })).status, 200, 'B reads the shared folder again for an unknown key');
    // A key nobody made is still refused.
    const forged = jwt.sign({ sub: 'alice', access: [] }, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, { algorithm: 'ES256', keyid: 'AAAA:BBBB', audience: 'berth', issuer: DEFAULT_AUTH.token.issuer, expiresIn: 60 });
    assert.equal((await fetch(`${b.url}/v2/`, { headers: bearer(forged) })).status, 401);
  } finally {
    await a.destroy();
    await b.destroy();
  }
});
