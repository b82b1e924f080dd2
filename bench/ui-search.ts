// The web UI's repository list and docker's /v1/search at 10 000 repositories and 100 000 tags, on
// both metadata backends (LevelDB, PostgreSQL with pg_trgm), against the same registry's
// `_catalog` page as the reference (no peer has search: distribution answers /v1/search 404).
// docs/performance.md, section "Web UI and search".
//
//   npm run build && node dist/bench/ui-search.js [--repos 10000] [--tags 10] [--requests 200] [--backends leveldb,postgres]
//
// The store is filled through the metadata API (manifest PUT records with their tags, no blob
// bytes: the list and search read names and tags only), then closed; `berth serve` is started on it
// as users start it (bin/berth, a child process) and each URL is asked `--requests` times, one at
// a time after 20 warm-up requests, timing each from request to the last byte of the answer.
// Two callers: no auth (every repository visible), and a user of --auth htpasswd whose ACL lets
// it pull 11 of 100 namespaces (the search filters 10 000 names by the rules on every request).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { LevelMetadata } from '../storage/level-metadata.js';
import type { RegistryMetadata } from '../storage/registry-metadata.js';
import { postgresMissing, startPostgres, type TestPostgres } from '../storage/testing/postgres.js';
import { startBerth } from './registry-servers.js';

const run = promisify(execFile);

function option(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : dflt;
}
const REPOS = Number(option('--repos', '10000'));
const TAGS = Number(option('--tags', '10'));
const REQUESTS = Number(option('--requests', '200'));
const BACKENDS = option('--backends', 'leveldb,postgres').split(',');

const nameOf = (i: number) => `team-${i % 100}/svc-${i}`;
const digestOf = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

async function fill(meta: RegistryMetadata): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < REPOS; i = next++) {
      const name = nameOf(i);
      // Two manifests a repository, the tags spread over them, as a repository that moved `latest`.
      for (let m = 0; m < 2; m++) {
        const tags = Array.from({ length: TAGS }, (_, k) => (k % 2 === m ? (k === 0 ? 'latest' : `1.${k}`) : undefined)).filter((t): t is string => t !== undefined);
        await meta.putManifest({ name, digest: digestOf(`${name}/${m}`), link: { mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 500, refs: [] }, tags, touched: [] });
      }
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  return (performance.now() - t0) / 1000;
}

interface Figure {
  median: number;
  p95: number;
}

async function measure(url: string, headers: Record<string, string>, expect: (body: string) => void): Promise<Figure> {
  const once = async (): Promise<number> => {
    const t0 = performance.now();
    const res = await request(url, { headers });
    const body = await res.body.text();
    const ms = performance.now() - t0;
    if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${body.slice(0, 200)}`);
    expect(body);
    return ms;
  };
  for (let i = 0; i < 20; i++) await once();
  const times: number[] = [];
  for (let i = 0; i < REQUESTS; i++) times.push(await once());
  times.sort((a, b) => a - b);
  return { median: times[times.length >> 1]!, p95: times[Math.floor(times.length * 0.95)]! };
}

/** A session cookie of the web UI for user:password (GET the form for the CSRF cookie, POST it). */
async function uiLogin(origin: string, user: string, password: string): Promise<string> {
  const form = await request(`${origin}/ui/login`);
  await form.body.text();
  const csrf = /berth_csrf=([0-9a-f]+)/.exec(String(form.headers['set-cookie']))![1]!;
  const res = await request(`${origin}/ui/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `berth_csrf=${csrf}` },
    body: new URLSearchParams({ user, password, csrf, next: '/' }).toString(),
  });
  await res.body.text();
  const session = /berth_session=([^;]+)/.exec(String(res.headers['set-cookie']))?.[1];
  if (res.statusCode !== 303 || !session) throw new Error(`login failed: ${res.statusCode}`);
  return `berth_session=${session}; berth_csrf=${csrf}`;
}

const rows: string[] = [];
const fmt = (f: Figure) => `${f.median.toFixed(1)} | ${f.p95.toFixed(1)}`;

async function bench(backend: string): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'berth-ui-bench-'));
  let pg: TestPostgres | undefined;
  try {
    const data = join(work, 'data');
    let meta: RegistryMetadata;
    let extra: string[] = ['--data', data];
    if (backend === 'postgres') {
      const why = postgresMissing();
      if (why) {
        console.log(`postgres: skipped (${why})`);
        return;
      }
      pg = await startPostgres();
      const url = await pg.createDatabase('uibench');
      const { PostgresMetadata } = await import('../storage/postgres-metadata.js');
      meta = new PostgresMetadata(url);
      extra = [...extra, '--metadata', url];
    } else {
      meta = new LevelMetadata(join(data, 'meta'));
    }
    await meta.open();
    const fillSeconds = await fill(meta);
    await meta.close();
    console.log(`${backend}: filled ${REPOS} repositories, ${REPOS * TAGS} tags in ${fillSeconds.toFixed(1)} s`);

    const users = join(work, 'users');
    await run('htpasswd', ['-B', '-c', '-b', users, 'some', 'some-pw']);
    const acl = join(work, 'acl.json');
    await writeFile(acl, JSON.stringify({ access: [{ account: 'some', name: 'team-1*/*', actions: ['pull'] }] }));

    for (const who of ['anyone', 'acl'] as const) {
      const args = who === 'anyone' ? extra : [...extra, '--auth', 'htpasswd', '--htpasswd', users, '--acl', acl];
      const berth = await startBerth({ label: `berth ${backend}`, extraArgs: args });
      try {
        const o = berth.origin;
        const basic = { authorization: `Basic ${Buffer.from('some:some-pw').toString('base64')}` };
        const headers: Record<string, string> = who === 'anyone' ? {} : basic;
        const ui: Record<string, string> = who === 'anyone' ? {} : { cookie: await uiLogin(o, 'some', 'some-pw') };
        const visible = who === 'anyone' ? REPOS : REPOS * 0.11;
        const lists = (n: number) => (body: string) => {
          if (!body.includes(`${n} repositor`)) throw new Error(`expected ${n} repositories in the page`);
        };
        const cases: Array<[string, string, Record<string, string>, (b: string) => void]> = [
          ['UI list, first page (no filter)', '/', ui, lists(visible)],
          ['UI list, page 20', '/?page=20', ui, lists(visible)],
          ['UI list, filter `svc-12` (first page)', '/?q=svc-12', ui, () => undefined],
          ['UI filter as typed (list part only)', '/?q=svc-12&partial=1', ui, () => undefined],
          ['/v1/search?q=svc-12&n=25', '/v1/search?q=svc-12&n=25', headers, (b) => void JSON.parse(b)],
          ['/v1/search?q=team&n=100&page=3', '/v1/search?q=team&n=100&page=3', headers, (b) => void JSON.parse(b)],
          ['/v2/_catalog?n=50 (reference)', '/v2/_catalog?n=50', headers, (b) => void JSON.parse(b)],
        ];
        for (const [label, path, h, check] of cases) {
          const f = await measure(o + path, h, check);
          rows.push(`| ${backend} | ${who === 'anyone' ? 'no auth' : 'htpasswd + ACL (11 %)'} | ${label} | ${fmt(f)} |`);
          console.log(rows[rows.length - 1]);
        }
      } finally {
        await berth.stop();
      }
    }
  } finally {
    await pg?.stop();
    await rm(work, { recursive: true, force: true });
  }
}

console.log(`# ${REPOS} repositories, ${REPOS * TAGS} tags; ${REQUESTS} sequential requests per URL; ${cpus().length} cores, load ${loadavg()[0]!.toFixed(1)}; node ${process.version}`);
for (const b of BACKENDS) await bench(b);
console.log('\n| metadata | caller | request | median ms | p95 ms |\n| --- | --- | --- | --- | --- |');
for (const r of rows) console.log(r);
