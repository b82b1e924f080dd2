// Auth against real peers: the reference registry with htpasswd (Basic), and a token service
// fixture in front of berth serve (Bearer, token.md).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestRegistry, type TestRegistry } from '../server/testing.js';
import { berth, buildImage, sandbox, skopeo, startReferenceRegistry, tempDir, type ReferenceRegistry } from './testing/peers.js';
import { startFixtureProxy, type FixtureProxy } from './testing/fixture-proxy.js';

let layout: string;
let basic: ReferenceRegistry;
let backend: TestRegistry;
let tokenFront: FixtureProxy;

before(async () => {
  layout = await buildImage(await tempDir(), 'a', { extraLayers: 2, layerBytes: 8 * 1024 });
  [basic, backend] = await Promise.all([startReferenceRegistry({ users: { alice: 's3cret' } }), startTestRegistry()]);
  tokenFront = await startFixtureProxy(backend.url, { tokenUsers: { bob: 'hunter2' } });
  await skopeo('copy', '--dest-tls-verify=false', '--dest-creds', 'alice:s3cret', `oci:${layout}:a`, `docker://${basic.host}/team/app:1`);
  await skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:a`, `docker://${new URL(backend.url).host}/team/app:1`);
});

after(async () => {
  await tokenFront?.close();
  await Promise.all([basic?.stop(), backend?.destroy()]);
});

test('Basic auth: a wrong password is refused and not stored; login, pull, push, logout', async () => {
  const sb = await sandbox();
  try {
    const bad = await berth(['login', '-u', 'alice', '--password-stdin', basic.host], sb.env, 'wrong\n');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^berth login: login to 127\.0\.0\.1:\d+ failed: incorrect username or password\n$/);
    await assert.rejects(access(join(sb.env.XDG_CONFIG_HOME!, 'berth', 'auth.json')));

    const anonymous = await berth(['pull', `${basic.host}/team/app:1`], sb.env);
    assert.equal(anonymous.code, 1);
    assert.match(anonymous.stderr, /authentication required: run berth login/);

    const ok = await berth(['login', '-u', 'alice', '--password-stdin', basic.host], sb.env, 's3cret\n');
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^Login Succeeded/);
    assert.equal((await berth(['pull', `${basic.host}/team/app:1`], sb.env)).code, 0);
    await berth(['tag', `${basic.host}/team/app:1`, `${basic.host}/team/other:1`], sb.env);
    const p = await berth(['push', `${basic.host}/team/other:1`], sb.env);
    assert.equal(p.code, 0, p.stderr);

    assert.match((await berth(['logout', basic.host], sb.env)).stdout, /Removing login credentials/);
    assert.equal((await berth(['pull', `${basic.host}/team/app:1`], sb.env)).code, 1);
  } finally {
    await sb.cleanup();
  }
});

test("credentials in ~/.docker/config.json are used as they are", async () => {
  const sb = await sandbox();
  try {
    await mkdir(join(sb.env.HOME!, '.docker'), { recursive: true });
    await writeFile(join(sb.env.HOME!, '.docker', 'config.json'), JSON.stringify({ auths: { [`http://${basic.host}`]: { auth: Buffer.from('alice:s3cret').toString('base64') } } }));
    const r = await berth(['pull', `${basic.host}/team/app:1`], sb.env);
    assert.equal(r.code, 0, r.stderr);
  } finally {
    await sb.cleanup();
  }
});

test("a credsStore helper named in ~/.docker/config.json (docker login's store) gives the credentials", async () => {
  const sb = await sandbox();
  try {
    const bin = join(sb.dir, 'bin');
    await mkdir(bin);
    // A credential helper as docker-credential-helpers specifies them: server URL in, JSON out.
    await writeFile(
      join(bin, 'docker-credential-fixture'),
      `#!/bin/sh\nread -r url\n[ "$1" = get ] && [ "$url" = "${basic.host}" ] && exec printf '{"ServerURL":"%s","Username":"alice","Secret":"s3cret"}' "$url"\necho "credentials not found in native keychain"; exit 1\n`,
      { mode: 0o755 },
    );
    await mkdir(join(sb.env.HOME!, '.docker'), { recursive: true });
    await writeFile(join(sb.env.HOME!, '.docker', 'config.json'), JSON.stringify({ credsStore: 'fixture', auths: { [basic.host]: {} } }));
    const env = { ...sb.env, PATH: `${bin}:${process.env.PATH}` };
    const r = await berth(['pull', `${basic.host}/team/app:1`], env);
    assert.equal(r.code, 0, r.stderr);
    // Without the helper on PATH there are no credentials: one clear line.
    const anonymous = await berth(['pull', `${basic.host}/team/app:1`], { ...sb.env, BERTH_ROOT: join(sb.dir, 'root2') });
    assert.equal(anonymous.code, 1);
    assert.match(anonymous.stderr, /authentication required: run berth login/);
  } finally {
    await sb.cleanup();
  }
});

test('Bearer tokens: fetched from the realm with service and scope, cached per scope, wrong password refused', async () => {
  const sb = await sandbox();
  try {
    const bad = await berth(['login', '-u', 'bob', '--password-stdin', tokenFront.host], sb.env, 'nope');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /incorrect username or password/);
    assert.equal((await berth(['login', '-u', 'bob', '--password-stdin', tokenFront.host], sb.env, 'hunter2')).code, 0);

    tokenFront.tokenRequests.length = 0;
    const r = await berth(['pull', `${tokenFront.host}/team/app:1`], sb.env);
    assert.equal(r.code, 0, r.stderr);
    // One token for the repository's pull scope serves the manifest and every blob.
    assert.deepEqual(tokenFront.tokenRequests, [['repository:team/app:pull']]);

    tokenFront.tokenRequests.length = 0;
    await berth(['tag', `${tokenFront.host}/team/app:1`, `${tokenFront.host}/team/copy:1`], sb.env);
    const p = await berth(['push', `${tokenFront.host}/team/copy:1`], sb.env);
    assert.equal(p.code, 0, p.stderr);
    assert.ok(tokenFront.tokenRequests.some((s) => s.includes('repository:team/copy:pull,push')));
  } finally {
    await sb.cleanup();
  }
});

test("berth serve's own token service and ACL: push with rights, a pull-only user is denied push", async () => {
  const dir = await tempDir();
  const users = join(dir, 'users');
  const acl = join(dir, 'acl.json');
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  await promisify(execFile)('htpasswd', ['-B', '-c', '-b', users, 'alice', 'alice-pw']);
  await promisify(execFile)('htpasswd', ['-B', '-b', users, 'bob', 'bob-pw']);
  await writeFile(acl, JSON.stringify({ access: [{ account: 'alice', name: 'team/*', actions: ['*'] }, { account: 'bob', name: 'team/*', actions: ['pull'] }] }));
  const reg = await startTestRegistry({
    auth: {
      mode: 'token',
      htpasswd: users,
      acl,
      anonymousPull: false,
      token: { service: 'berth', issuer: 'berth-token-service', ttlSeconds: 300, refreshTtlSeconds: 3600, keyRotationDays: 30 },
    },
  });
  const host = new URL(reg.url).host;
  const alice = await sandbox();
  const bob = await sandbox();
  try {
    await skopeo('copy', '--dest-tls-verify=false', '--dest-creds', 'alice:alice-pw', `oci:${layout}:a`, `docker://${host}/team/app:1`);
    const bad = await berth(['login', '-u', 'alice', '--password-stdin', host], alice.env, 'wrong');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /incorrect username or password/);
    assert.equal((await berth(['login', '-u', 'alice', '--password-stdin', host], alice.env, 'alice-pw')).code, 0);
    assert.equal((await berth(['pull', `${host}/team/app:1`], alice.env)).code, 0);
    await berth(['tag', `${host}/team/app:1`, `${host}/team/pushed:1`], alice.env);
    const p = await berth(['push', `${host}/team/pushed:1`], alice.env);
    assert.equal(p.code, 0, p.stderr);

    assert.equal((await berth(['login', '-u', 'bob', '--password-stdin', host], bob.env, 'bob-pw')).code, 0);
    assert.equal((await berth(['pull', `${host}/team/pushed:1`], bob.env)).code, 0);
    await berth(['tag', `${host}/team/pushed:1`, `${host}/team/by-bob:1`], bob.env);
    const denied = await berth(['push', `${host}/team/by-bob:1`], bob.env);
    assert.equal(denied.code, 1);
    assert.equal(denied.stderr.split('\n').filter(Boolean).length, 1, denied.stderr);
    assert.match(denied.stderr, /^berth push: 127\.0\.0\.1:\d+: requested access to the resource is denied \(repository:team\/by-bob:pull,push.* for bob\)\n$/);
  } finally {
    await Promise.all([alice.cleanup(), bob.cleanup(), reg.destroy()]);
  }
});
