// Auth campaign, users file: a login with an unknown user costs the same bcrypt work as a known
// user's wrong password, so answer times do not tell which users exist. Checked structurally (one
// bcrypt comparison either way, against a dummy hash of the file's cost) and by timing over HTTP
// on /v2/ (htpasswd mode), GET /token and POST /token (token mode).
//
// Timing on two shared cores is noisy: medians of interleaved requests, a generous band, and a
// control that shows the measurement can see a missing bcrypt (a malformed header, which never
// reaches bcrypt, is several times quicker than either).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { startTestRegistry, type TestRegistry } from '../testing.js';
import { DEFAULT_AUTH, type AuthConfig } from './config.js';
import { BCRYPT_COST, commonCost, formatHtpasswd, Htpasswd } from './htpasswd.js';

let dir: string;
let users: string;
let htpasswdReg: TestRegistry;
let tokenReg: TestRegistry;
const ROUNDS = 15;
const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-timing-'));
  users = join(dir, 'users');
  // Cost 8: a bcrypt round of tens of milliseconds still dwarfs the HTTP overhead, at a quarter
  // of Berth's own cost 10 (which takes ~270 ms a check on a busy 2-core machine).
  const m = new Map<string, string>();
  for (const u of ['alice', 'bob', 'carol']) m.set(u, await bcrypt.hash(`${u}-pw`, 8));
  await writeFile(users, formatHtpasswd(m));
  // Hundreds of failures from 127.0.0.1 on purpose: the limiter is off here (auth-limit.test.ts tests it).
  const limit = { failures: 0, windowSeconds: 60, addresses: 10 };
  htpasswdReg = await startTestRegistry({ auth: { ...DEFAULT_AUTH, mode: 'htpasswd', htpasswd: users, limit } });
  tokenReg = await startTestRegistry({ auth: { ...DEFAULT_AUTH, mode: 'token', htpasswd: users, limit } satisfies AuthConfig });
});

after(async () => {
  await htpasswdReg?.destroy();
  await tokenReg?.destroy();
  await rm(dir, { recursive: true, force: true });
});

test('structurally: one bcrypt comparison for an unknown user as for a wrong password, against a dummy of the file’s (most common) cost', async () => {
  const h = new Htpasswd(users);
  await h.load();
  assert.equal(h.dummyCost, 8);
  const before = h.compares;
  assert.equal(await h.verify('nobody', 'x'), false);
  assert.equal(h.compares, before + 1, 'unknown user: one comparison');
  assert.equal(await h.verify('alice', 'wrong'), false);
  assert.equal(h.compares, before + 2, 'known user, wrong password: one comparison');
  assert.equal(await h.verify('alice', 'alice-pw'), true);
  assert.equal(await h.verify('alice', 'alice-pw'), true);
  assert.equal(h.compares, before + 3, 'a success is remembered: the second check needs no bcrypt');
  // htpasswd -B writes cost 5: the dummy follows the file, and the majority in a mixed one.
  const mixed = [bcrypt.hashSync('a', 5), bcrypt.hashSync('b', 5), bcrypt.hashSync('c', 6)];
  assert.equal(commonCost(mixed), 5);
  assert.equal(commonCost([bcrypt.hashSync('a', 4), bcrypt.hashSync('b', 6)]), 6, 'a tie: the higher');
  assert.equal(commonCost([]), BCRYPT_COST);
  const five = join(dir, 'users5');
  await writeFile(five, formatHtpasswd(new Map([['dave', mixed[0]!], ['erin', mixed[1]!], ['fay', mixed[2]!]])));
  const h5 = new Htpasswd(five);
  await h5.load();
  assert.equal(h5.dummyCost, 5);
});

/** Medians of `ROUNDS` interleaved timings of each request kind (interleaving spreads any drift of the shared machine over all kinds). */
async function measure(kinds: Record<string, () => Promise<Response>>, want: Record<string, number>): Promise<Record<string, number>> {
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(kinds).map((k) => [k, []]));
  for (const [k, f] of Object.entries(kinds)) await (await f()).body?.cancel(); // warm-up
  const entries = Object.entries(kinds);
  for (let i = 0; i < ROUNDS; i++) {
    // Each round starts with another kind, so no kind always runs first (or last) in a round.
    for (const [k, f] of [...entries.slice(i % entries.length), ...entries.slice(0, i % entries.length)]) {
      const t0 = performance.now();
      const r = await f();
      await r.arrayBuffer();
      times[k]!.push(performance.now() - t0);
      assert.equal(r.status, want[k], k);
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, xs]) => [k, median(xs)]));
}

function check(where: string, m: Record<string, number>): void {
  const ratio = m.unknown! / m.wrongPassword!;
  console.log(`${where}: median unknown user ${m.unknown!.toFixed(1)} ms, known user wrong password ${m.wrongPassword!.toFixed(1)} ms (ratio ${ratio.toFixed(2)}), no bcrypt ${m.noBcrypt!.toFixed(1)} ms`);
  // Within a factor 1.6 either way: wide for the scheduling noise of a shared machine (runs under a
  // load average of 15–18 on 2 cores gave 0.66–1.42), yet a missing bcrypt (the control: < 0.25) falls far outside.
  assert.ok(ratio > 1 / 1.6 && ratio < 1.6, `${where}: unknown/known ratio ${ratio.toFixed(2)} outside 0.63–1.6`);
  // The control: without bcrypt an answer is several times quicker, so a missing bcrypt would show.
  assert.ok(m.noBcrypt! < 0.5 * m.wrongPassword!, `${where}: the measurement cannot tell bcrypt from none (${m.noBcrypt!.toFixed(1)} vs ${m.wrongPassword!.toFixed(1)} ms)`);
}

test('timing over HTTP, htpasswd mode: Basic on /v2/ with an unknown user takes as long as a known user’s wrong password', async () => {
  const url = `${htpasswdReg.url}/v2/`;
  let i = 0;
  const m = await measure(
    {
      unknown: () => fetch(url, { headers: basic(`nobody-${i++}`, 'guess') }),
      wrongPassword: () => fetch(url, { headers: basic('bob', `guess-${i++}`) }),
      noBcrypt: () => fetch(url, { headers: { authorization: 'Basic !!!' } }),
    },
    { unknown: 401, wrongPassword: 401, noBcrypt: 401 },
  );
  check('/v2/ Basic', m);
});

test('timing over HTTP, token mode: GET /token with Basic and POST /token with the password grant, unknown user as slow as a wrong password', async () => {
  let i = 0;
  const get = (h: Record<string, string>) => fetch(`${tokenReg.url}/token?service=berth&scope=repository:team/app:pull`, { headers: h });
  const g = await measure(
    {
      unknown: () => get(basic(`nobody-${i++}`, 'guess')),
      wrongPassword: () => get(basic('carol', `guess-${i++}`)),
      noBcrypt: () => get({ authorization: 'Basic !!!' }),
    },
    { unknown: 401, wrongPassword: 401, noBcrypt: 401 },
  );
  check('GET /token', g);
  const post = (form: Record<string, string>) => fetch(`${tokenReg.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ service: 'berth', ...form }) });
  const p = await measure(
    {
      unknown: () => post({ grant_type: 'password', username: `nobody-${i++}`, password: 'guess' }),
      wrongPassword: () => post({ grant_type: 'password', username: 'carol', password: `guess-${i++}` }),
      noBcrypt: () => post({ grant_type: 'password', username: 'carol' }),
    },
    { unknown: 401, wrongPassword: 401, noBcrypt: 400 },
  );
  check('POST /token', p);
});
