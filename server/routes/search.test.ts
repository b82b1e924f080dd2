// docker's search protocol (GET /v1/search, /v1/_ping) over HTTP against a real registry: the
// SearchResults JSON, paging, bad parameters, and the access rules of htpasswd and token mode
// (a caller finds only what it may pull). docker's own client is driven in
// conformance-tests/docker.test.ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestRegistry, type TestRegistry } from '../testing.js';
import { sh } from '../test-images.js';
import { DEFAULT_AUTH, DEFAULT_LIMIT } from '../auth/config.js';

interface Results {
  query: string;
  num_results: number;
  num_pages: number;
  page: number;
  page_size: number;
  results: Array<{ name: string; description: string; star_count: number; is_official: boolean; is_automated: boolean }>;
}

const D = `sha256:${'1'.repeat(64)}`;
const NAMES = ['team/busybox', 'team/app', 'other/busybox', 'lib/busy-box', 'secret/busybox', 'x/y'];
const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });

let dir: string;
let open: TestRegistry;
let htpasswd: TestRegistry;
let token: TestRegistry;

async function seed(r: TestRegistry): Promise<void> {
  for (const n of NAMES) await r.store.meta.linkBlob(n, D, 1);
}

async function search(r: TestRegistry, qs: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Results; res: Response }> {
  const res = await fetch(`${r.url}/v1/search?${qs}`, { headers });
  return { status: res.status, body: (await res.json()) as Results, res };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-search-'));
  const users = join(dir, 'users');
  await sh('htpasswd', ['-B', '-c', '-b', users, 'alice', 'alice-pw']);
  await sh('htpasswd', ['-B', '-b', users, 'bob', 'bob-pw']);
  const acl = join(dir, 'acl.json');
  await writeFile(acl, JSON.stringify({ access: [{ account: 'alice', name: 'team/*', actions: ['pull'] }, { account: 'alice', name: 'other/*', actions: ['pull'] }, { account: 'bob', name: 'secret/*', actions: ['pull'] }] }));
  const auth = { ...DEFAULT_AUTH, htpasswd: users, acl, limit: { ...DEFAULT_LIMIT, failures: 1000 } };
  open = await startTestRegistry();
  htpasswd = await startTestRegistry({ auth: { ...auth, mode: 'htpasswd' } });
  token = await startTestRegistry({ auth: { ...auth, mode: 'token' } });
  for (const r of [open, htpasswd, token]) await seed(r);
});

after(async () => {
  for (const r of [open, htpasswd, token]) await r?.destroy();
  await rm(dir, { recursive: true, force: true });
});

test('/v1/_ping answers, so the Docker engine takes this registry for a search endpoint', async () => {
  const res = await fetch(`${open.url}/v1/_ping`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-docker-registry-standalone'), 'true');
  assert.deepEqual(await res.json(), {});
});

test('without auth: names containing the term, in byte order, as docker’s SearchResults', async () => {
  const { status, body } = await search(open, 'q=busy&n=25');
  assert.equal(status, 200);
  assert.deepEqual(body, {
    query: 'busy',
    num_results: 4,
    num_pages: 1,
    page: 1,
    page_size: 25,
    results: ['lib/busy-box', 'other/busybox', 'secret/busybox', 'team/busybox'].map((name) => ({ name, description: '', star_count: 0, is_official: false, is_automated: false })),
  });
  // Capitals in the term match (names are lowercase); an empty term lists everything.
  assert.equal((await search(open, 'q=BUSYBOX')).body.num_results, 3);
  assert.equal((await search(open, 'q=')).body.num_results, NAMES.length);
  assert.equal((await search(open, 'q=nothing')).body.num_results, 0);
});

test('pages: n per page, page numbers from 1, num_pages; n above 100 is docker’s bound', async () => {
  const p1 = (await search(open, 'q=busy&n=3')).body;
  const p2 = (await search(open, 'q=busy&n=3&page=2')).body;
  assert.deepEqual([p1.num_pages, p1.page, p1.page_size, p2.page], [2, 1, 3, 2]);
  assert.deepEqual([...p1.results, ...p2.results].map((r) => r.name), ['lib/busy-box', 'other/busybox', 'secret/busybox', 'team/busybox']);
  assert.deepEqual((await search(open, 'q=busy&n=3&page=9')).body.results, []);
  assert.equal((await search(open, 'q=&n=1000')).body.page_size, 100);
});

test('bad parameters get 400 with the error envelope, not a listing', async () => {
  for (const qs of ['q=a&n=0', 'q=a&n=-1', 'q=a&n=ten', 'q=a&page=0', 'q=a&n=1&n=2', `q=${'a'.repeat(256)}`, 'q=a&q=b']) {
    const res = await fetch(`${open.url}/v1/search?${qs}`);
    assert.equal(res.status, 400, qs);
    const body = (await res.json()) as { errors?: Array<{ code: string; message: string }> };
    assert.ok(body.errors?.[0]?.message, qs);
  }
});

test('htpasswd: each user finds only what it may pull; no credentials or a wrong password get 401 with the challenge', async () => {
  const names = async (h: Record<string, string>) => (await search(htpasswd, 'q=busy', h)).body.results.map((r) => r.name);
  assert.deepEqual(await names(basic('alice', 'alice-pw')), ['other/busybox', 'team/busybox']);
  assert.deepEqual(await names(basic('bob', 'bob-pw')), ['secret/busybox']);
  assert.equal((await search(htpasswd, 'q=busy', basic('alice', 'alice-pw'))).body.num_results, 2, 'the count is what alice may see');
  const anon = await fetch(`${htpasswd.url}/v1/search?q=busy`);
  assert.equal(anon.status, 401);
  assert.equal(anon.headers.get('www-authenticate'), 'Basic realm="berth"');
  const wrong = await fetch(`${htpasswd.url}/v1/search?q=busy`, { headers: basic('alice', 'nope') });
  assert.equal(wrong.status, 401);
  assert.equal(((await wrong.json()) as { errors: Array<{ code: string }> }).errors[0]!.code, 'UNAUTHORIZED');
});

test('token mode: a Bearer token of the token service, or docker’s Basic credentials, find only what the user may pull', async () => {
  const t = await fetch(`${token.url}/token?service=berth&scope=registry:catalog:search`, { headers: basic('bob', 'bob-pw') });
  const { token: jwt } = (await t.json()) as { token: string };
  assert.deepEqual((await search(token, 'q=busy', { authorization: `Bearer ${jwt}` })).body.results.map((r) => r.name), ['secret/busybox']);
  assert.deepEqual((await search(token, 'q=busy', basic('alice', 'alice-pw'))).body.results.map((r) => r.name), ['other/busybox', 'team/busybox']);
  const anon = await fetch(`${token.url}/v1/search?q=busy`);
  assert.equal(anon.status, 401);
  assert.match(anon.headers.get('www-authenticate') ?? '', /^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/token",service="berth",scope="registry:catalog:search"$/);
  const forged = await fetch(`${token.url}/v1/search?q=busy`, { headers: { authorization: `Bearer ${jwt.slice(0, -4)}AAAA` } });
  assert.equal(forged.status, 401);
  assert.match(forged.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
});
