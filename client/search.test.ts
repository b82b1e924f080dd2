// `berth search` as users run it (bin/launch.cjs, which bin/berth runs, in a child process, its own HOME and
// credentials) against berth serve (no auth, htpasswd with an ACL, token mode) and against the
// reference registry (Debian docker-registry), which has no search: one clear line. docker's own
// CLI against berth serve is in conformance-tests/docker-search.test.ts.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestRegistry, type TestRegistry } from '../server/testing.js';
import { referenceRegistryAvailable, startReferenceRegistry, type ReferenceRegistry } from '../conformance-tests/fixtures/reference-registry.js';
import { formatResults, parseFilters, tabulate } from './cli/search.js';
import { splitSearchTerm } from './search.js';

const BERTH = fileURLToPath(new URL('../../bin/launch.cjs', import.meta.url));
const D = `sha256:${'1'.repeat(64)}`;
const NAMES = ['team/busybox', 'team/app', 'other/busybox', 'lib/busy-box', 'secret/busybox', 'x/y'];

let work: string;
let open: TestRegistry;
let guarded: TestRegistry;
let token: TestRegistry;
let reference: ReferenceRegistry | undefined;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `berth ARGS` with this test's HOME, config and credentials files. */
function berth(...args: string[]): Promise<Result> {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work, XDG_CONFIG_HOME: join(work, 'config'), BERTH_AUTH_CONFIG: join(work, 'auth.json'), DOCKER_CONFIG: join(work, 'docker'), BERTH_ROOT: join(work, 'root') };
  return new Promise((resolve) => {
    execFile(process.execPath, [BERTH, ...args], { env }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const hostOf = (r: { url: string }) => new URL(r.url).host;
const namesOf = (table: string) => table.trimEnd().split('\n').slice(1).map((l) => l.split(/\s+/)[0]);

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'berth-search-cli-'));
  const users = join(work, 'users');
  await promisify(execFile)('htpasswd', ['-B', '-c', '-b', users, 'alice', 'alice-pw']);
  const acl = join(work, 'acl.json');
  await writeFile(acl, JSON.stringify({ access: [{ account: 'alice', name: 'team/*', actions: ['pull'] }, { account: 'alice', name: 'lib/*', actions: ['pull'] }] }));
  const auth = { htpasswd: users, acl, anonymousPull: false, token: { service: 'berth', issuer: 'berth-token-service', ttlSeconds: 300, refreshTtlSeconds: 3600, keyRotationDays: 30 } };
  open = await startTestRegistry();
  guarded = await startTestRegistry({ auth: { ...auth, mode: 'htpasswd' as const } });
  token = await startTestRegistry({ auth: { ...auth, mode: 'token' as const } });
  for (const r of [open, guarded, token]) for (const n of NAMES) await r.store.meta.linkBlob(n, D, 1);
  if (referenceRegistryAvailable()) reference = await startReferenceRegistry();
});

after(async () => {
  for (const r of [open, guarded, token]) await r?.destroy();
  await reference?.stop();
  await rm(work, { recursive: true, force: true });
});

describe('berth search', { timeout: 120_000 }, () => {
  it('[REGISTRY/]TERM is split as docker splits it', () => {
    assert.deepEqual(splitSearchTerm('busybox'), { registry: 'docker.io', term: 'busybox' });
    assert.deepEqual(splitSearchTerm('team/app'), { registry: 'docker.io', term: 'team/app' });
    assert.deepEqual(splitSearchTerm('127.0.0.1:5000/busy'), { registry: '127.0.0.1:5000', term: 'busy' });
    assert.deepEqual(splitSearchTerm('localhost/team/app'), { registry: 'localhost', term: 'team/app' });
    assert.deepEqual(splitSearchTerm('registry.example/busy'), { registry: 'registry.example', term: 'busy' });
    assert.deepEqual(splitSearchTerm('index.docker.io/busybox'), { registry: 'docker.io', term: 'busybox' });
  });

  it('prints docker’s table: NAME DESCRIPTION STARS OFFICIAL, in the registry’s order', async () => {
    const r = await berth('search', `${hostOf(open)}/busy`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const lines = r.stdout.split('\n');
    assert.match(lines[0]!, /^NAME {3,}DESCRIPTION {3,}STARS {5}OFFICIAL$/);
    assert.deepEqual(namesOf(r.stdout), ['lib/busy-box', 'other/busybox', 'secret/busybox', 'team/busybox']);
    // Columns line up: every row's STARS cell starts where the header's does.
    const at = lines[0]!.indexOf('STARS');
    for (const l of lines.slice(1, -1)) assert.equal(l.slice(at, at + 1), '0', l);
  });

  it('--limit, --format (table and plain), --filter', async () => {
    assert.deepEqual(namesOf((await berth('search', '--limit', '2', `${hostOf(open)}/busy`)).stdout), ['lib/busy-box', 'other/busybox']);
    const plain = await berth('search', '--format', '{{.Name}}: {{.StarCount}}', `${hostOf(open)}/busy`);
    assert.equal(plain.stdout, 'lib/busy-box: 0\nother/busybox: 0\nsecret/busybox: 0\nteam/busybox: 0\n');
    const json = await berth('search', '--limit', '1', '--format', '{{json .}}', `${hostOf(open)}/team`);
    assert.deepEqual(JSON.parse(json.stdout), { Name: 'team/app', Description: '', StarCount: '0', IsOfficial: '', IsAutomated: '' });
    const table = await berth('search', '--format', 'table {{.Name}}\\t{{.IsOfficial}}', `${hostOf(open)}/team`);
    assert.equal(table.stdout, 'NAME           OFFICIAL\nteam/app       \nteam/busybox   \n');
    assert.equal((await berth('search', '--filter', 'stars=1', `${hostOf(open)}/busy`)).stdout, 'NAME      DESCRIPTION   STARS     OFFICIAL\n');
    assert.equal((await berth('search', '--filter', 'is-official=false', `${hostOf(open)}/busy`)).stdout.split('\n').length, 6);
  });

  it('bad options are one line and exit 1, before the registry is asked', async () => {
    for (const [args, want] of [
      [['--limit', '0'], /limit 0 is outside the range \[1, 100\]/],
      [['--limit', '101'], /outside the range/],
      [['--filter', 'color=red'], /invalid filter 'color'/],
      [['--filter', 'stars=many'], /expected a number/],
      [['--format', '{{.Nope}}'], /can't evaluate field Nope/],
      [['--format', '{{range .}}x{{end}}'], /range can't iterate over/],
    ] as Array<[string[], RegExp]>) {
      const r = await berth('search', ...args, '127.0.0.1:1/busy');
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, want);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });

  it('htpasswd with an ACL: after berth login, only what the user may pull; before, one line asking to log in', async () => {
    const anon = await berth('search', `${hostOf(guarded)}/busy`);
    assert.equal(anon.code, 1);
    assert.equal(anon.stderr, `berth search: ${hostOf(guarded)}: authentication required: run berth login ${hostOf(guarded)}\n`);
    const login = await berth('login', '-u', 'alice', '-p', 'alice-pw', hostOf(guarded));
    assert.equal(login.code, 0, login.stderr);
    const r = await berth('search', `${hostOf(guarded)}/busy`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(namesOf(r.stdout), ['lib/busy-box', 'team/busybox']);
  });

  it('token mode: the token for registry:catalog:search, then the same filtered answer', async () => {
    assert.equal((await berth('login', '-u', 'alice', '-p', 'alice-pw', hostOf(token))).code, 0);
    const r = await berth('search', `${hostOf(token)}/busy`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(namesOf(r.stdout), ['lib/busy-box', 'team/busybox']);
  });

  it('a registry without search (docker-registry): one clear line, exit 1', { skip: referenceRegistryAvailable() ? false : '/usr/bin/docker-registry not installed (apt-get install docker-registry)' }, async () => {
    const host = hostOf(reference!);
    const r = await berth('search', `${host}/busy`);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `berth search: ${host} does not offer search (GET /v1/search answered HTTP 404): it implements only the Distribution API; list its repositories with GET /v2/_catalog\n`);
  });

  it('an unreachable registry: one line', async () => {
    const r = await berth('search', '127.0.0.1:1/busy');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^berth search: cannot reach registry 127\.0\.0\.1:1: .*\n$/);
  });

  it('formatting: descriptions cut at 45 columns unless --no-trunc, newlines flattened, columns padded as Go’s tabwriter', () => {
    const long = { name: 'a/b', description: 'x'.repeat(50) + '\nend', star_count: 12, is_official: true, is_automated: false };
    const out = formatResults([long], 'table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}', true);
    assert.equal(out, `NAME      DESCRIPTION${' '.repeat(37)}STARS     OFFICIAL\na/b       ${'x'.repeat(44)}…   12        [OK]\n`);
    assert.ok(formatResults([long], '{{.Description}}', false).startsWith(`${'x'.repeat(50)} end`));
    assert.equal(tabulate(['a\tbb\tc', 'dddddddddddd\te\t']), 'a              bb        c\ndddddddddddd   e         \n');
    assert.deepEqual(parseFilters(['stars=3', 'is-official=true', 'is-automated=0']), { stars: 3, isOfficial: true, isAutomated: false });
  });
});
