// Auth campaign of the reliability issue, bearer tokens: every forged, stale, misdirected,
// malformed or escalating token is refused with 401 and the challenge of token.md / RFC 6750 §3
// (`error="invalid_token"`, or `error="insufficient_scope"` naming the scope the request needs),
// and generated mutations of a valid token are never accepted unless byte-identical to it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createHmac, createPrivateKey, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { startTestRegistry, type TestRegistry } from '../testing.js';
import { sh } from '../test-images.js';
import { DEFAULT_AUTH, DEFAULT_LIMIT, type AuthConfig } from './config.js';
import { KeyRing } from './token-keys.js';

let dir: string;
let reg: TestRegistry;
let kid: string;
let key: KeyObject;
let publicPem: string;
const extKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
let extPublicPem: string;

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const PULL = [{ type: 'repository', name: 'team/app', actions: ['pull'] }];
const PUSH = [{ type: 'repository', name: 'team/app', actions: ['pull', 'push', 'delete'] }];

function claims(over: Record<string, unknown> = {}): Record<string, unknown> {
  const t = now();
  const c: Record<string, unknown> = { iss: 'berth-token-service', sub: 'alice', aud: 'berth', exp: t + 300, nbf: t, iat: t, jti: 'campaign', access: PULL, ...over };
  for (const [k, v] of Object.entries(c)) if (v === undefined) delete c[k];
  return c;
}

/** A JWS compact token built by hand, so that nothing a library refuses to produce is left out. */
function jws(header: Record<string, unknown>, payload: unknown, signer: (input: string) => Buffer | string): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const sig = signer(input);
  return `${input}.${typeof sig === 'string' ? sig : sig.toString('base64url')}`;
}
const es256 = (k: KeyObject) => (input: string) => cryptoSign('sha256', Buffer.from(input), { key: k, dsaEncoding: 'ieee-p1363' });
const rs256 = (k: KeyObject) => (input: string) => cryptoSign('sha256', Buffer.from(input), k);
const hs256 = (secret: string | Buffer) => (input: string) => createHmac('sha256', secret).update(input).digest();
const ours = (over: Record<string, unknown> = {}, header: Record<string, unknown> = {}) => jws({ alg: 'ES256', typ: 'JWT', kid, ...header }, claims(over), es256(key));

const challenge = (scope: string, error: string) => `Bearer realm="${reg.url}/token",service="berth",scope="${scope}",error="${error}"`;

async function send(authorization: string, method = 'GET', path = '/v2/team/app/manifests/latest', body?: string): Promise<Response> {
  return fetch(`${reg.url}${path}`, { method, headers: { authorization, ...(body !== undefined ? { 'content-type': 'application/octet-stream' } : {}) }, ...(body !== undefined ? { body } : {}) });
}

async function refused(token: string, what: string, method = 'GET', path = '/v2/team/app/manifests/latest', scope = 'repository:team/app:pull'): Promise<void> {
  const r = await send(`Bearer ${token}`, method, path);
  const text = await r.text();
  assert.equal(r.status, 401, `${what}: ${text}`);
  assert.equal(r.headers.get('www-authenticate'), challenge(scope, 'invalid_token'), what);
  assert.equal((JSON.parse(text) as { errors: Array<{ code: string }> }).errors[0]!.code, 'UNAUTHORIZED', what);
}

async function accepted(token: string, what: string): Promise<void> {
  const r = await send(`Bearer ${token}`);
  await r.body?.cancel();
  assert.equal(r.status, 404, `${what}: a valid pull token reaches the handler (nothing is there)`);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-campaign-'));
  const users = join(dir, 'users');
  await sh('htpasswd', ['-B', '-c', '-b', users, 'alice', 'alice-pw']);
  extPublicPem = extKeys.publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const extFile = join(dir, 'ext.pem');
  await writeFile(extFile, extPublicPem);
  // An external issuer too: its verification path is attack surface of its own.
  const auth: AuthConfig = {
    ...DEFAULT_AUTH,
    mode: 'token',
    htpasswd: users,
    limit: { ...DEFAULT_LIMIT, failures: 1000 },
    token: { ...DEFAULT_AUTH.token, external: { issuer: 'corp-auth', publicKey: extFile } },
  };
  reg = await startTestRegistry({ auth });
  const keysDir = join(reg.dataDir, 'auth', 'keys');
  const [file] = (await readdir(keysDir)).filter((f) => f.endsWith('.pem'));
  key = createPrivateKey(await readFile(join(keysDir, file!), 'utf8'));
  const ring = new KeyRing(keysDir, { rotateMs: 1e12, keepMs: 1e12 });
  await ring.load();
  kid = ring.current().kid;
  publicPem = ring.current().publicKey.export({ type: 'spki', format: 'pem' }) as string;
});

after(async () => {
  await reg?.destroy();
  await rm(dir, { recursive: true, force: true });
});

test('time claims: expired, not yet valid and issued in the future are invalid_token beyond the 30 s clock tolerance, and exp is required', async () => {
  const t = now();
  await accepted(ours(), 'control');
  await accepted(ours({ exp: t - 5 }), 'expired 5 s ago: within the tolerance');
  await accepted(ours({ nbf: t + 10, iat: t + 10 }), 'valid in 10 s: within the tolerance');
  await refused(ours({ iat: t - 7200, nbf: t - 7200, exp: t - 3600 }), 'expired an hour ago');
  await refused(ours({ exp: t - 60 }), 'expired a minute ago');
  await refused(ours({ nbf: t + 60 }), 'not valid for another minute');
  await refused(ours({ nbf: t + 86_400, iat: t + 86_400, exp: t + 90_000 }), 'not valid until tomorrow');
  await refused(ours({ iat: t + 3600, nbf: undefined }), 'issued an hour from now (go-jose refuses it too)');
  await refused(ours({ exp: undefined }), 'no exp (jwt.md: valid only up to exp)');
  await refused(ours({ exp: String(t + 300) }), 'exp as a string');
  await refused(ours({ nbf: 'now' }), 'nbf not a number');
  await refused(ours({ iat: [t] }), 'iat not a number');
});

test('keys and algorithms: a wrong key under our kid, unknown kids, alg none, HS256 keyed with a public key, RS256/PS256/ES384 are invalid_token', async () => {
  const otherEc = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const hdr = (h: Record<string, unknown>) => ({ typ: 'JWT', ...h });
  const cases: Array<[string, string]> = [
    ['another EC key under our kid', jws(hdr({ alg: 'ES256', kid }), claims(), es256(otherEc))],
    ['another EC key, unknown kid', jws(hdr({ alg: 'ES256', kid: 'AAAA:BBBB:CCCC:DDDD' }), claims(), es256(otherEc))],
    ['another EC key, no kid', jws(hdr({ alg: 'ES256' }), claims(), es256(otherEc))],
    ['our key, no kid (not ours to guess; the external key does not verify it)', jws(hdr({ alg: 'ES256' }), claims(), es256(key))],
    ['our key under a kid we do not have', jws(hdr({ alg: 'ES256', kid: 'ZZZZ' }), claims(), es256(key))],
    ['alg none, our kid, no signature', jws(hdr({ alg: 'none', kid }), claims(), () => '')],
    ['alg none, no kid', jws(hdr({ alg: 'none' }), claims(), () => '')],
    ['alg None', jws(hdr({ alg: 'None', kid }), claims(), () => '')],
    ['alg NONE with a signature', jws(hdr({ alg: 'NONE', kid }), claims(), es256(key))],
    ['ES256 header, empty signature', jws(hdr({ alg: 'ES256', kid }), claims(), () => '')],
    ['ES256 header, signature of zeros', jws(hdr({ alg: 'ES256', kid }), claims(), () => Buffer.alloc(64))],
    ['HS256 keyed with our public key (PEM)', jws(hdr({ alg: 'HS256', kid }), claims(), hs256(publicPem))],
    ['HS256 keyed with our public key (PEM), no kid', jws(hdr({ alg: 'HS256' }), claims(), hs256(publicPem))],
    ['HS256 keyed with the external public key (PEM)', jws(hdr({ alg: 'HS256' }), claims({ iss: 'corp-auth' }), hs256(extPublicPem))],
    ['HS256 keyed with our kid', jws(hdr({ alg: 'HS256', kid }), claims(), hs256(kid))],
    ['RS256 with a random RSA key, our kid', jws(hdr({ alg: 'RS256', kid }), claims(), rs256(rsa))],
    ['RS256 with a random RSA key, no kid', jws(hdr({ alg: 'RS256' }), claims({ iss: 'corp-auth' }), rs256(rsa))],
    ['PS256 with a random RSA key', jws(hdr({ alg: 'PS256' }), claims({ iss: 'corp-auth' }), (i) => cryptoSign('sha256', Buffer.from(i), { key: rsa, padding: constants.RSA_PKCS1_PSS_PADDING }))],
    ['ES384 header over an ES256 signature', jws(hdr({ alg: 'ES384', kid }), claims(), es256(key))],
    ['the external key signing with our issuer', jws(hdr({ alg: 'RS256' }), claims(), rs256(extKeys.privateKey))],
    ['the external key, our kid in the header', jws(hdr({ alg: 'RS256', kid }), claims({ iss: 'corp-auth' }), rs256(extKeys.privateKey))],
    ['a jwk header carrying the signer’s own key', jws(hdr({ alg: 'ES256', jwk: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) }), claims(), es256(otherEc))],
  ];
  for (const [what, t] of cases) await refused(t, what);
  // The external issuer's own token is the control of that path.
  await accepted(jws(hdr({ alg: 'RS256' }), claims({ iss: 'corp-auth' }), rs256(extKeys.privateKey)), 'external issuer control');
});

test('audience, issuer, subject and claim shape: wrong or malformed ones are invalid_token; a refresh token is no access token', async () => {
  const [, p0, s0] = ours().split('.') as [string, string, string];
  const cases: Array<[string, string]> = [
    ['wrong audience', ours({ aud: 'other-registry' })],
    ['no audience', ours({ aud: undefined })],
    ['audience list without us', ours({ aud: ['a', 'b'] })],
    ['wrong issuer', ours({ iss: 'mallory' })],
    ['no issuer', ours({ iss: undefined })],
    ['the external issuer under our key', ours({ iss: 'corp-auth' })],
    ['no subject', ours({ sub: undefined })],
    ['subject a number', ours({ sub: 7 })],
    ['access a string', ours({ access: 'repository:team/app:pull' })],
    ['access an object', ours({ access: PULL[0] })],
    ['access entry without actions', ours({ access: [{ type: 'repository', name: 'team/app' }] })],
    ['actions a string', ours({ access: [{ type: 'repository', name: 'team/app', actions: 'pull' }] })],
    ['actions holding a number', ours({ access: [{ type: 'repository', name: 'team/app', actions: ['pull', 1] }] })],
    ['access entry null', ours({ access: [PULL[0], null] })],
    ['name a number', ours({ access: [{ type: 'repository', name: 42, actions: ['pull'] }] })],
    ['refresh marker on an access token', ours({ berth_refresh: true })],
    ['payload null', jws({ alg: 'ES256', kid }, null, es256(key))],
    ['payload a JSON string', jws({ alg: 'ES256', kid }, JSON.stringify('alice'), es256(key))],
    ['payload not JSON under a typ JWT header (was a 500: jsonwebtoken.decode throws)', `${b64({ alg: 'ES256', typ: 'JWT', kid })}.A${p0}.${s0}`],
    ['payload not JSON', `${b64({ alg: 'ES256', kid })}.${b64('not json')}.${es256(key)(`${b64({ alg: 'ES256', kid })}.${b64('not json')}`).toString('base64url')}`],
  ];
  for (const [what, t] of cases) await refused(t, what);
  const r = await fetch(`${reg.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', username: 'alice', password: 'alice-pw', service: 'berth', access_type: 'offline', scope: 'repository:team/app:pull' }),
  });
  const { refresh_token } = (await r.json()) as { refresh_token: string };
  await refused(refresh_token, 'a refresh token of this service');
});

test('malformed, truncated, re-encoded and oversized credentials are invalid_token or a clean 4xx, never a crash', async () => {
  // Its base64 (+/) spelling differs from base64url only where the signature has '-' or '_', which
  // one ECDSA signature in ~15 lacks (62/64 per character, 86 characters): sign again until it has.
  let good = ours();
  while (!/[-_]/.test(good.split('.')[2]!)) good = ours();
  const [h, p, s] = good.split('.') as [string, string, string];
  // Node decodes base64 leniently: these decode to the very bytes that were signed, and are still refused.
  // 64 signature bytes are 86 characters: the last one carries 4 unused bits.
  const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const twin = `${s.slice(0, -1)}${ALPHABET[ALPHABET.indexOf(s.at(-1)!) ^ 1]}`;
  assert.notEqual(twin, s);
  assert.deepEqual(Buffer.from(twin, 'base64url'), Buffer.from(s, 'base64url'), 'a true twin: the same signature bytes');
  const cases: Array<[string, string]> = [
    ['signature padded with =', `${good}==`],
    ['signature spelled in base64 (+/)', `${h}.${p}.${Buffer.from(s, 'base64url').toString('base64').replace(/=+$/, '')}`],
    ['unused bits of the last signature character set', `${h}.${p}.${twin}`],
    ['payload padded', `${h}.${p}=.${s}`],
    ['truncated by one character', good.slice(0, -1)],
    ['truncated signature', good.slice(0, -20)],
    ['no signature part', `${h}.${p}`],
    ['empty signature part', `${h}.${p}.`],
    ['a fourth part', `${good}.${s}`],
    ['header and payload swapped', `${p}.${h}.${s}`],
    ['empty', '..'],
    ['garbage', 'not.a.token'],
    ['one part', h],
    ['header not JSON', `${b64('{"alg":')}.${p}.${s}`],
    ['non-base64 characters', `${h}.${p.slice(0, 10)}*${p.slice(11)}.${s}`],
    ['a space inside', `${h}.${p} ${s}`],
    ['12 KiB of token', `${good}${'A'.repeat(12 << 10)}`],
  ];
  for (const [what, t] of cases) await refused(t, what);
  // Whitespace around the credential is HTTP's optional whitespace: the same token.
  const spaced = await send(`Bearer   ${good}`);
  assert.equal(spaced.status, 404);
  await spaced.body?.cancel();
  // A Bearer scheme with no token, and lowercase scheme with garbage: malformed, invalid_token.
  for (const a of ['Bearer', 'Bearer ', 'bearer !!!', 'Bearer a b']) {
    const r = await send(a);
    assert.equal(r.status, 401, a);
    assert.equal(r.headers.get('www-authenticate'), challenge('repository:team/app:pull', 'invalid_token'), a);
    await r.body?.cancel();
  }
  // Another scheme is no token at all: the bare challenge (RFC 6750 §3.1: no error code).
  const basic = await send(`Basic ${Buffer.from('alice:alice-pw').toString('base64')}`);
  assert.equal(basic.status, 401);
  assert.equal(basic.headers.get('www-authenticate'), `Bearer realm="${reg.url}/token",service="berth",scope="repository:team/app:pull"`);
  await basic.body?.cancel();
  // 64 KiB in one header: Node's 16 KiB header limit answers 431 before any of our code runs.
  const huge = await send(`Bearer ${good}${'A'.repeat(64 << 10)}`).catch((e: Error) => e);
  if (huge instanceof Response) {
    assert.ok(huge.status >= 400 && huge.status < 500, `64 KiB header: ${huge.status}`);
    await huge.body?.cancel();
  } else {
    assert.match(String((huge.cause as Error | undefined)?.message ?? huge.message), /other side closed|socket|reset|fetch failed/i);
  }
  await accepted(good, 'the registry still answers');
});

test('scope escalation: a pull token cannot push, patch, put, delete or list, nor open another repository (401 insufficient_scope naming the needed scope)', async () => {
  const pull = ours();
  const push = ours({ access: PUSH });
  // An upload session opened legitimately, then driven with the pull token.
  const start = await send(`Bearer ${push}`, 'POST', '/v2/team/app/blobs/uploads/');
  assert.equal(start.status, 202);
  const session = new URL(start.headers.get('location')!, reg.url).pathname;
  const zero = `sha256:${'0'.repeat(64)}`;
  const cases: Array<[string, string, string, string, string?]> = [
    ['start an upload', 'POST', '/v2/team/app/blobs/uploads/', 'repository:team/app:pull,push'],
    ['a monolithic upload', 'POST', `/v2/team/app/blobs/uploads/?digest=${zero}`, 'repository:team/app:pull,push', 'data'],
    ['a chunk to an open session', 'PATCH', session, 'repository:team/app:pull,push', 'chunk'],
    ['close an open session', 'PUT', `${session}?digest=${zero}`, 'repository:team/app:pull,push', ''],
    ['cancel an open session', 'DELETE', session, 'repository:team/app:pull,push'],
    ['put a manifest', 'PUT', '/v2/team/app/manifests/v1', 'repository:team/app:pull,push', '{}'],
    ['delete a manifest', 'DELETE', `/v2/team/app/manifests/${zero}`, 'repository:team/app:delete'],
    ['delete a blob', 'DELETE', `/v2/team/app/blobs/${zero}`, 'repository:team/app:delete'],
    ['list the catalog', 'GET', '/v2/_catalog', 'registry:catalog:*'],
    ['pull another repository', 'GET', '/v2/team/other/manifests/latest', 'repository:team/other:pull'],
    ['pull a repository below it', 'GET', '/v2/team/app/sub/manifests/latest', 'repository:team/app/sub:pull'],
    ['mount into another repository', 'POST', `/v2/team/other/blobs/uploads/?mount=${zero}&from=team/app`, 'repository:team/other:pull,push'],
  ];
  for (const [what, method, path, scope, body] of cases) {
    const r = await send(`Bearer ${pull}`, method, path, body);
    const text = await r.text();
    assert.equal(r.status, 401, `${what}: ${text}`);
    assert.equal(r.headers.get('www-authenticate'), challenge(scope, 'insufficient_scope'), what);
    assert.equal((JSON.parse(text) as { errors: Array<{ code: string }> }).errors[0]!.code, 'UNAUTHORIZED', what);
  }
  // Claims that only look like the right one.
  for (const [what, access] of [
    ['a lookalike name (case)', [{ type: 'repository', name: 'Team/App', actions: ['pull', 'push'] }]],
    ['a parent repository', [{ type: 'repository', name: 'team', actions: ['pull', 'push'] }]],
    ['a registry-type claim', [{ type: 'registry', name: 'team/app', actions: ['pull', 'push'] }]],
    ['push without pull', [{ type: 'repository', name: 'team/app', actions: ['push'] }]],
  ] as const) {
    const r = await send(`Bearer ${ours({ access })}`, 'POST', '/v2/team/app/blobs/uploads/');
    assert.equal(r.status, 401, what);
    assert.equal(r.headers.get('www-authenticate'), challenge('repository:team/app:pull,push', 'insufficient_scope'), what);
    await r.body?.cancel();
  }
  // Nothing got through: the session is still open and empty, no manifest exists.
  const status = await send(`Bearer ${push}`, 'GET', session);
  assert.equal(status.status, 204);
  assert.equal(status.headers.get('range'), '0-0');
  await accepted(pull, 'no manifest v1 was written');
  const m = await send(`Bearer ${pull}`, 'GET', '/v2/team/app/manifests/v1');
  assert.equal(m.status, 404);
  await m.body?.cancel();
});

test('generated mutations of a valid token (header fields, claims, signature bytes, characters, structure) are never accepted unless byte-identical', async () => {
  const good = ours();
  const [h, p, s] = good.split('.') as [string, string, string];
  const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>;
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
  const CHARS = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.+/=~!*'];
  const jsonValue = fc.oneof(
    fc.constantFrom<unknown>(null, true, false, 0, -1, 2 ** 53, '', 'none', 'ES256', 'HS256', 'RS256', kid, 'alice', 'root', 'berth', 'berth-token-service', 'corp-auth', now() + 3600, now() - 3600, PUSH, PULL, [], {}, [null]),
    fc.string({ maxLength: 12 }),
    fc.integer(),
  );
  type Mutation =
    | { kind: 'header'; key: string; value: unknown; drop: boolean }
    | { kind: 'claim'; key: string; value: unknown; drop: boolean }
    | { kind: 'sigbit'; index: number; bit: number }
    | { kind: 'char'; index: number; char: string }
    | { kind: 'insert'; index: number; char: string }
    | { kind: 'delete'; index: number; length: number }
    | { kind: 'parts'; order: number[] }
    | { kind: 'sigresize'; length: number };
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    fc.record({ kind: fc.constant('header' as const), key: fc.constantFrom('alg', 'kid', 'typ', 'crit', 'jku', 'x5u', 'b64', 'zip'), value: jsonValue, drop: fc.boolean() }),
    fc.record({ kind: fc.constant('claim' as const), key: fc.constantFrom('iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'access', 'berth_refresh'), value: jsonValue, drop: fc.boolean() }),
    fc.record({ kind: fc.constant('sigbit' as const), index: fc.nat(63), bit: fc.nat(7) }),
    fc.record({ kind: fc.constant('char' as const), index: fc.nat(), char: fc.constantFrom(...CHARS) }),
    fc.record({ kind: fc.constant('insert' as const), index: fc.nat(), char: fc.constantFrom(...CHARS) }),
    fc.record({ kind: fc.constant('delete' as const), index: fc.nat(), length: fc.integer({ min: 1, max: 8 }) }),
    fc.record({ kind: fc.constant('parts' as const), order: fc.array(fc.nat(2), { minLength: 0, maxLength: 5 }) }),
    fc.record({ kind: fc.constant('sigresize' as const), length: fc.nat(130) }),
  );
  const apply = (token: string, m: Mutation): string => {
    const [th, tp, ts] = token.split('.');
    switch (m.kind) {
      case 'header':
      case 'claim': {
        if (th === undefined || tp === undefined) return token;
        let obj: Record<string, unknown>;
        try {
          obj = JSON.parse(Buffer.from(m.kind === 'header' ? th : tp, 'base64url').toString()) as Record<string, unknown>;
        } catch {
          obj = m.kind === 'header' ? { ...header } : { ...payload };
        }
        if (m.drop) delete obj[m.key];
        else obj[m.key] = m.value;
        return m.kind === 'header' ? [b64(obj), tp, ts].filter((x) => x !== undefined).join('.') : [th, b64(obj), ts].filter((x) => x !== undefined).join('.');
      }
      case 'sigbit': {
        if (ts === undefined) return token;
        const sig = Buffer.from(ts, 'base64url');
        if (sig.length === 0) return token;
        sig[m.index % sig.length]! ^= 1 << m.bit;
        return `${th}.${tp}.${sig.toString('base64url')}`;
      }
      case 'sigresize': {
        if (ts === undefined) return token;
        const sig = Buffer.from(ts, 'base64url');
        const out = Buffer.alloc(m.length);
        sig.copy(out, 0, 0, Math.min(sig.length, m.length));
        return `${th}.${tp}.${out.toString('base64url')}`;
      }
      case 'char': {
        const i = m.index % token.length;
        return token.slice(0, i) + m.char + token.slice(i + 1);
      }
      case 'insert': {
        const i = m.index % (token.length + 1);
        return token.slice(0, i) + m.char + token.slice(i);
      }
      case 'delete': {
        const i = m.index % token.length;
        return token.slice(0, i) + token.slice(i + m.length);
      }
      case 'parts': {
        const parts = token.split('.');
        return m.order.map((i) => parts[i % parts.length] ?? '').join('.');
      }
    }
  };
  let runs = 0;
  let identical = 0;
  const started = performance.now();
  await fc.assert(
    fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (ms) => {
      const t = ms.reduce(apply, good);
      runs++;
      // The empty credential is "Bearer" alone: malformed, refused like the rest.
      const r = await send(`Bearer ${t}`);
      const text = await r.text();
      if (t === good) {
        identical++;
        assert.equal(r.status, 404, text);
        return;
      }
      assert.equal(r.status, 401, `${JSON.stringify(ms)} → ${t}: ${text}`);
      assert.equal(r.headers.get('www-authenticate'), challenge('repository:team/app:pull', 'invalid_token'), JSON.stringify(ms));
    }),
    { numRuns: 800 },
  );
  const seconds = (performance.now() - started) / 1000;
  console.log(`token mutations: ${runs} generated, ${identical} byte-identical (accepted), ${runs - identical} refused, in ${seconds.toFixed(1)} s`);
  assert.ok(runs >= 800);
});
