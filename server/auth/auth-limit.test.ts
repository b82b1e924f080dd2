// The failed-authentication limiter (limiter.ts): its sliding window and memory bound with a fake
// clock, then over HTTP in htpasswd mode (Basic on /v2/) and token mode (GET and POST /token),
// from two loopback addresses (127.0.0.1 and 127.0.0.2: Linux routes all of 127/8 to lo).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startTestRegistry, type TestRegistry } from '../testing.js';
import { loadConfig } from '../config.js';
import { sh } from '../test-images.js';
import { DEFAULT_AUTH, type AuthConfig } from './config.js';
import { addressKey, FailureLimiter } from './limiter.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request from a chosen local address (fetch cannot pick one). */
function call(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string; from?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const r = request(url, { method: opts.method ?? 'GET', headers: opts.headers, localAddress: opts.from ?? '127.0.0.1', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    r.on('error', reject);
    r.end(opts.body);
  });
}

const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: string;
let users: string;
let logText = '';
const logger = pino(
  { level: 'info' },
  new Writable({
    write(chunk, _enc, cb) {
      logText += String(chunk);
      cb();
    },
  }),
);

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-limit-'));
  users = join(dir, 'users');
  await sh('htpasswd', ['-B', '-c', '-b', users, 'alice', 'alice-pw']);
  await sh('htpasswd', ['-B', '-b', users, 'bob', 'bob-pw']);
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('limiter: N failures in the window block the address, the window slides, other addresses are untouched', () => {
  let now = 1_000_000;
  const l = new FailureLimiter({ failures: 3, windowMs: 60_000, maxAddresses: 100 }, () => now);
  assert.equal(l.retryAfter('10.0.0.1'), undefined);
  assert.equal(l.fail('10.0.0.1'), false);
  now += 10_000;
  assert.equal(l.fail('10.0.0.1'), false);
  assert.equal(l.retryAfter('10.0.0.1'), undefined, 'two of three');
  now += 10_000;
  assert.equal(l.fail('10.0.0.1'), true, 'the third failure starts the block');
  assert.equal(l.retryAfter('10.0.0.1'), 40, 'until the first failure leaves the window');
  assert.equal(l.retryAfter('10.0.0.2'), undefined, 'another address');
  now += 39_500;
  assert.equal(l.retryAfter('10.0.0.1'), 1, 'never less than 1 s while blocked');
  now += 500;
  assert.equal(l.retryAfter('10.0.0.1'), undefined, 'the oldest failure has left the window');
  l.fail('10.0.0.1');
  assert.equal(l.retryAfter('10.0.0.1'), 10, 'one more try, then blocked until the next-oldest leaves: at most 3 per minute');
  now += 120_000;
  assert.equal(l.retryAfter('10.0.0.1'), undefined);
  assert.equal(l.size, 0, 'expired entries are dropped when looked at');
  const off = new FailureLimiter({ failures: 0, windowMs: 60_000, maxAddresses: 10 });
  for (let i = 0; i < 100; i++) off.fail('10.0.0.1');
  assert.equal(off.retryAfter('10.0.0.1'), undefined, 'failures: 0 turns it off');
});

test('limiter: memory is bounded by maxAddresses, forgetting the least recently failing', () => {
  const l = new FailureLimiter({ failures: 2, windowMs: 60_000, maxAddresses: 1000 });
  for (let i = 0; i < 5000; i++) l.fail(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  assert.equal(l.size, 1000);
  const m = new FailureLimiter({ failures: 2, windowMs: 60_000, maxAddresses: 2 });
  m.fail('10.0.0.1');
  m.fail('10.0.0.1');
  m.fail('10.0.0.2');
  m.fail('10.0.0.1'); // 10.0.0.1 failed last: 10.0.0.2 is the one forgotten next
  m.fail('10.0.0.3');
  assert.ok(m.retryAfter('10.0.0.1') !== undefined);
  assert.equal(m.size, 2);
});

test('limiter: IPv4-mapped addresses count as IPv4, IPv6 addresses by their /64', () => {
  assert.equal(addressKey('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(addressKey('192.0.2.7'), '192.0.2.7');
  assert.equal(addressKey('2001:db8:0:1::1'), '2001:db8:0:1::/64');
  assert.equal(addressKey('2001:0db8:0000:0001:ffff:1:2:3'), '2001:db8:0:1::/64');
  assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(addressKey('::1'), '0:0:0:0::/64');
  assert.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  assert.equal(addressKey(undefined), 'unknown');
});

test('settings: on by default (10 failures a minute), auth.limit in the file, environment and flags on top', async () => {
  const d = await loadConfig({ env: {} });
  assert.deepEqual(d.auth?.limit ?? DEFAULT_AUTH.limit, { failures: 10, windowSeconds: 60, addresses: 10_000 });
  const file = join(dir, 'berth.yaml');
  await writeFile(file, `auth: { mode: htpasswd, htpasswd: ${users}, limit: { failures: 5, windowSeconds: 30, addresses: 50 } }`);
  const c = await loadConfig({ file, env: {} });
  assert.deepEqual(c.auth?.limit, { failures: 5, windowSeconds: 30, addresses: 50 });
  const e = await loadConfig({ file, env: { BERTH_AUTH_LIMIT_FAILURES: '0' }, flags: { auth: { limit: { windowSeconds: 90 } } } });
  assert.deepEqual(e.auth?.limit, { failures: 0, windowSeconds: 90, addresses: 50 });
  await writeFile(file, 'auth: { limit: { failures: 2.5 } }');
  await assert.rejects(loadConfig({ file, env: {} }), /auth.limit.failures must be a whole number/);
  await writeFile(file, 'auth: { limit: { failurs: 3 } }');
  await assert.rejects(loadConfig({ file, env: {} }), /unknown key auth.limit.failurs/);
  await assert.rejects(loadConfig({ env: { BERTH_AUTH_LIMIT_WINDOW_SECONDS: '0' } }), /BERTH_AUTH_LIMIT_WINDOW_SECONDS must be a positive number/);
});

test('htpasswd mode: after 3 failures in 2 s the address gets 429 TOOMANYREQUESTS with Retry-After, even with the right password, until the window passes', async () => {
  const auth: AuthConfig = { ...DEFAULT_AUTH, mode: 'htpasswd', htpasswd: users, limit: { failures: 3, windowSeconds: 2, addresses: 100 } };
  const reg = await startTestRegistry({ auth, logLevel: 'info' }, { logger });
  try {
    const v2 = `${reg.url}/v2/`;
    for (const [u, p] of [['alice', 'x'], ['nobody', 'y'], ['bob', 'z']] as const) assert.equal((await call(v2, { headers: basic(u, p) })).status, 401);
    const blocked = await call(v2, { headers: basic('alice', 'alice-pw') });
    assert.equal(blocked.status, 429);
    assert.match(String(blocked.headers['retry-after']), /^[12]$/);
    assert.equal((JSON.parse(blocked.body) as { errors: Array<{ code: string }> }).errors[0]!.code, 'TOOMANYREQUESTS');
    assert.equal(blocked.headers['www-authenticate'], undefined, 'no challenge: retrying with other credentials would not help');
    // Without credentials nothing is attempted: the ordinary challenge.
    const anon = await call(v2);
    assert.equal(anon.status, 401);
    assert.equal(anon.headers['www-authenticate'], 'Basic realm="berth"');
    // Another address is not affected, and its success resets nobody's failures.
    assert.equal((await call(v2, { headers: basic('alice', 'alice-pw'), from: '127.0.0.2' })).status, 200);
    assert.equal((await call(v2, { headers: basic('alice', 'alice-pw') })).status, 429);
    // A refused attempt costs no bcrypt: far quicker than a password check.
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) assert.equal((await call(v2, { headers: basic('alice', `guess-${i}`) })).status, 429);
    const perAttempt = (performance.now() - t0) / 20;
    await sleep(Number(blocked.headers['retry-after']) * 1000 + 100);
    assert.equal((await call(v2, { headers: basic('alice', 'alice-pw') })).status, 200, 'the window has passed');
    assert.ok(perAttempt < 50, `a 429 took ${perAttempt.toFixed(1)} ms`);
    const warnings = logText.split('\n').filter((l) => l.includes('must wait (429)'));
    assert.equal(warnings.length, 1, 'one warning per block, not one per refused attempt');
    assert.match(warnings[0]!, /"address":"(::ffff:)?127\.0\.0\.1"/);
    for (const secret of ['alice-pw', 'guess-', '$2y$']) assert.ok(!logText.includes(secret), `log contains ${secret}`);
  } finally {
    await reg.destroy();
  }
});

test('token mode: failed GET and POST /token count together; 429 carries OAuth JSON, the TOOMANYREQUESTS envelope and Retry-After', async () => {
  const auth: AuthConfig = { ...DEFAULT_AUTH, mode: 'token', htpasswd: users, limit: { failures: 3, windowSeconds: 2, addresses: 100 } };
  const reg = await startTestRegistry({ auth });
  try {
    const get = (u: string, p: string, from?: string) => call(`${reg.url}/token?service=berth&scope=repository:team/app:pull`, { headers: basic(u, p), ...(from ? { from } : {}) });
    const post = (u: string, p: string) =>
      call(`${reg.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'password', username: u, password: p, service: 'berth' }).toString() });
    assert.equal((await get('alice', 'alice-pw')).status, 200, 'a success first: it counts for nothing');
    assert.equal((await get('alice', 'wrong')).status, 401);
    assert.equal((await post('alice', 'wrong')).status, 401);
    // Anonymous token requests and bad bearer tokens are no password guesses: not counted.
    assert.equal((await call(`${reg.url}/token?service=berth`)).status, 200);
    assert.equal((await call(`${reg.url}/v2/`, { headers: { authorization: 'Bearer x.y.z' } })).status, 401);
    assert.equal((await post('nobody', 'wrong')).status, 401);
    for (const r of [await get('alice', 'alice-pw'), await post('alice', 'alice-pw')]) {
      assert.equal(r.status, 429);
      assert.match(String(r.headers['retry-after']), /^[12]$/);
      assert.equal(r.headers['cache-control'], 'no-store');
      const body = JSON.parse(r.body) as { error: string; error_description: string; errors: Array<{ code: string }> };
      assert.equal(body.error, 'slow_down');
      assert.match(body.error_description, /too many failed authentication attempts/);
      assert.equal(body.errors[0]!.code, 'TOOMANYREQUESTS');
    }
    assert.equal((await call(`${reg.url}/token?service=berth`)).status, 200, 'an anonymous token is still issued');
    assert.equal((await get('alice', 'alice-pw', '127.0.0.2')).status, 200, 'another address');
    await sleep(2100);
    assert.equal((await get('alice', 'alice-pw')).status, 200, 'the window has passed');
  } finally {
    await reg.destroy();
  }
});
