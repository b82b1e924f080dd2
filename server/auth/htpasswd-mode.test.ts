// --auth htpasswd against real peers: a users file written by Apache's htpasswd -B, an ACL, skopeo.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestRegistry, type TestRegistry } from '../testing.js';
import { buildTestImage, hostOf, sh, skopeoCopy } from '../test-images.js';
import { DEFAULT_AUTH, DEFAULT_LIMIT } from './config.js';

let dir: string;
let reg: TestRegistry;
let anon: TestRegistry;
const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-htpasswd-'));
  const users = join(dir, 'users');
  await sh('htpasswd', ['-B', '-c', '-b', users, 'alice', 'alice-pw']);
  await sh('htpasswd', ['-B', '-b', users, 'bob', 'bob-pw']);
  await sh('htpasswd', ['-B', '-b', users, 'carol', 'carol-pw']);
  await sh('htpasswd', ['-m', '-b', users, 'md5user', 'md5-pw']);
  const acl = join(dir, 'acl.json');
  await writeFile(
    acl,
    JSON.stringify({
      groups: { readers: ['bob'] },
      access: [
        { account: 'alice', name: 'team/*', actions: ['*'] },
        { account: 'readers', name: 'team/*', actions: ['pull'] },
      ],
    }),
  );
  // These tests fail on purpose more often than the default limiter allows one address (10 a
  // minute, all from 127.0.0.1); the limiter has its own tests in auth-limit.test.ts.
  const limit = { ...DEFAULT_LIMIT, failures: 1000 };
  reg = await startTestRegistry({ auth: { ...DEFAULT_AUTH, mode: 'htpasswd', htpasswd: users, acl, limit } });
  anon = await startTestRegistry({ auth: { ...DEFAULT_AUTH, mode: 'htpasswd', htpasswd: users, anonymousPull: true } });
});

after(async () => {
  await reg?.destroy();
  await anon?.destroy();
});

test('an unauthenticated /v2/ gets 401 UNAUTHORIZED with a Basic challenge', async () => {
  const r = await fetch(`${reg.url}/v2/`);
  assert.equal(r.status, 401);
  assert.equal(r.headers.get('www-authenticate'), 'Basic realm="berth"');
  assert.equal(((await r.json()) as { errors: Array<{ code: string }> }).errors[0]!.code, 'UNAUTHORIZED');
  const ok = await fetch(`${reg.url}/v2/`, { headers: basic('alice', 'alice-pw') });
  assert.equal(ok.status, 200);
});

test('passwords hashed by htpasswd -B are accepted; wrong ones, unknown users and non-bcrypt entries are not', async () => {
  for (const [u, p, want] of [
    ['bob', 'bob-pw', 200],
    ['bob', 'bob-pw ', 401],
    ['bob', 'alice-pw', 401],
    ['nobody', 'x', 401],
    ['md5user', 'md5-pw', 401],
  ] as const) {
    const r = await fetch(`${reg.url}/v2/`, { headers: basic(u, p) });
    assert.equal(r.status, want, `${u}:${p}`);
    await r.body?.cancel();
  }
});

test('garbage Authorization headers are 401, never a server error', async () => {
  for (const h of ['Basic', 'Basic !!!', 'Basic ' + Buffer.from('no-colon').toString('base64'), 'Bearer abc', 'Digest x=y', 'Basic ' + 'A'.repeat(8000), '\u00ff\u00fe']) {
    const r = await fetch(`${reg.url}/v2/team/app/manifests/latest`, { headers: { authorization: h } }).catch(() => undefined);
    if (!r) continue; // a header fetch itself refuses to send
    assert.equal(r.status, 401, JSON.stringify(h.slice(0, 20)));
    await r.body?.cancel();
  }
});

test('the ACL decides: push for alice, pull only for the readers group, nothing for carol', async () => {
  const post = (who: [string, string]) => fetch(`${reg.url}/v2/team/app/blobs/uploads/`, { method: 'POST', headers: basic(...who) });
  const pull = (who: [string, string]) => fetch(`${reg.url}/v2/team/app/manifests/latest`, { headers: basic(...who) });
  assert.equal((await post(['alice', 'alice-pw'])).status, 202);
  const denied = await post(['bob', 'bob-pw']);
  assert.equal(denied.status, 403);
  assert.equal(((await denied.json()) as { errors: Array<{ code: string }> }).errors[0]!.code, 'DENIED');
  assert.equal((await pull(['bob', 'bob-pw'])).status, 404); // allowed, and nothing there
  assert.equal((await pull(['carol', 'carol-pw'])).status, 403);
  const del = await fetch(`${reg.url}/v2/team/app/manifests/sha256:${'0'.repeat(64)}`, { method: 'DELETE', headers: basic('bob', 'bob-pw') });
  assert.equal(del.status, 403);
  // Outside team/ nobody has rules, alice included.
  assert.equal((await fetch(`${reg.url}/v2/other/app/manifests/latest`, { headers: basic('alice', 'alice-pw') })).status, 403);
});

test('skopeo pushes with credentials, is refused without, and _catalog shows only what the caller may pull', async () => {
  const img = await buildTestImage({ randomBytes: 64 * 1024 });
  const host = hostOf(reg.url);
  await skopeoCopy(img.ref, `docker://${host}/team/app:v1`, { destCreds: 'alice:alice-pw' });
  await assert.rejects(skopeoCopy(img.ref, `docker://${host}/team/app:v2`, { destCreds: 'bob:bob-pw' }));
  await assert.rejects(skopeoCopy(img.ref, `docker://${host}/team/app:v3`, { destCreds: 'alice:wrong' }));
  const out = join(dir, 'pulled');
  await skopeoCopy(`docker://${host}/team/app:v1`, `oci:${out}:v1`, { srcCreds: 'bob:bob-pw' });
  assert.match(await readFile(join(out, 'index.json'), 'utf8'), /manifests/);
  // A repository only an unrestricted store path could create: pushed straight into the store.
  const secret = await reg.store.putBytes(Buffer.from('a blob only to make secret/app exist'));
  await reg.store.linkBlob('secret/app', secret.digest, secret.size);
  const cat = async (u: string, p: string) => ((await (await fetch(`${reg.url}/v2/_catalog`, { headers: basic(u, p) })).json()) as { repositories: string[] }).repositories;
  assert.deepEqual(await cat('bob', 'bob-pw'), ['team/app']);
  assert.deepEqual(await cat('carol', 'carol-pw'), []);
});

test('anonymous pull lets unauthenticated clients read but not write', async () => {
  assert.equal((await fetch(`${anon.url}/v2/any/repo/manifests/latest`)).status, 404);
  const w = await fetch(`${anon.url}/v2/any/repo/blobs/uploads/`, { method: 'POST' });
  assert.equal(w.status, 401);
  assert.equal(w.headers.get('www-authenticate'), 'Basic realm="berth"');
  assert.equal((await fetch(`${anon.url}/v2/any/repo/blobs/uploads/`, { method: 'POST', headers: basic('carol', 'carol-pw') })).status, 202);
});
