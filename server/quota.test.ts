// Quotas (docs/server.md#quotas) against real registries over HTTP: a push that would exceed its
// namespace's bytes is refused with DENIED naming the quota, at blob upload completion, at a
// cross-repository mount and at a manifest PUT, and leaves nothing of the refused push linked or
// counted; each blob counted once per namespace; usage in the metrics; usage down after deletes
// and GC; on PostgreSQL metadata, one quota across two replicas.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestRegistry, type TestRegistry } from './testing.js';
import { postgresMissing, startPostgres, type TestPostgres } from '../storage/testing/postgres.js';
import { parseExposition, seriesKey } from './testing-exposition.js';
import { loadConfig } from './config.js';
import { fsck } from '../storage/fsck.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Answer {
  status: number;
  code?: string;
  message?: string;
}

async function answer(res: Response): Promise<Answer> {
  const text = await res.text();
  if (res.status < 400) return { status: res.status };
  const body = JSON.parse(text) as { errors: Array<{ code: string; message: string }> };
  return { status: res.status, code: body.errors[0]!.code, message: body.errors[0]!.message };
}

/** A blob pushed in a session: POST, PATCH, PUT (docker's way). */
async function uploadBlob(base: string, repo: string, bytes: Buffer): Promise<Answer & { digest: string }> {
  const digest = sha(bytes);
  const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  assert.equal(start.status, 202);
  const location = new URL(start.headers.get('location')!, base);
  await start.arrayBuffer();
  const patch = await fetch(location, { method: 'PATCH', body: new Uint8Array(bytes), headers: { 'Content-Type': 'application/octet-stream' } });
  assert.equal(patch.status, 202);
  const next = new URL(patch.headers.get('location')!, base);
  await patch.arrayBuffer();
  next.searchParams.set('digest', digest);
  return { ...(await answer(await fetch(next, { method: 'PUT' }))), digest };
}

async function putManifest(base: string, repo: string, tag: string, config: { digest: string; size: number }, layers: Array<{ digest: string; size: number }>): Promise<Answer & { digest: string; size: number }> {
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...l })),
    }),
  );
  const res = await fetch(`${base}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: new Uint8Array(body), headers: { 'Content-Type': OCI_MANIFEST } });
  return { ...(await answer(res)), digest: sha(body), size: body.length };
}

async function status(url: string, method = 'HEAD'): Promise<number> {
  const res = await fetch(url, { method });
  await res.arrayBuffer();
  return res.status;
}

/** An image of a config and one layer of `layerBytes` random bytes. */
async function pushImage(base: string, repo: string, tag: string, layerBytes: number) {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', n: randomBytes(4).toString('hex') }));
  const layer = randomBytes(layerBytes);
  const c = await uploadBlob(base, repo, config);
  assert.equal(c.status, 201, c.message);
  const l = await uploadBlob(base, repo, layer);
  assert.equal(l.status, 201, l.message);
  const m = await putManifest(base, repo, tag, { digest: c.digest, size: config.length }, [{ digest: l.digest, size: layer.length }]);
  assert.equal(m.status, 201, m.message);
  return { config: { digest: c.digest, size: config.length }, layer: { digest: l.digest, size: layer.length }, manifest: m, total: config.length + layer.length + m.size };
}

/** The exposition of `url`, parsed strictly, as a series → value lookup. */
async function scrape(url: string): Promise<{ value: (series: string) => number | undefined }> {
  const samples = new Map<string, number>();
  for (const f of parseExposition(await (await fetch(url)).text()).values()) for (const s of f.samples) samples.set(seriesKey(s), s.value);
  return { value: (series) => samples.get(series) };
}

describe('quotas: refusals leave nothing behind, usage in the metrics and after deletes and GC (LevelDB)', { timeout: 60_000 }, () => {
  let reg: TestRegistry;
  const LIMIT = 20_000;
  const usage = async (ns: string) => (await reg.store.meta.namespaceUsage(ns)).usedBytes;
  const links = async (repo: string) => {
    const out: string[] = [];
    for await (const b of reg.store.meta.blobLinks(repo)) out.push(b.digest);
    return out;
  };

  before(async () => {
    reg = await startTestRegistry({
      gc: { intervalHours: 0, graceMinutes: 0 },
      metrics: { listen: '127.0.0.1:0' },
      quotas: { namespaces: [{ namespace: 'team', limit: LIMIT }, { namespace: 'ci/*/cache', limit: 5_000 }, { namespace: 'free' }] },
    });
  });

  after(async () => {
    await reg.destroy();
  });

  let first: Awaited<ReturnType<typeof pushImage>>;

  it('each blob is counted once per namespace; a mount into another repository of it adds nothing', async () => {
    first = await pushImage(reg.url, 'team/app', 'v1', 8_000);
    assert.equal(await usage('team'), first.total);
    const mount = await fetch(`${reg.url}/v2/team/other/blobs/uploads/?mount=${first.layer.digest}&from=team/app`, { method: 'POST' });
    assert.equal(mount.status, 201);
    await mount.arrayBuffer();
    assert.equal(await usage('team'), first.total, 'the mounted layer is counted once');
  });

  it('a blob that would exceed the quota is refused with DENIED naming it; the rest of that push is released', async () => {
    const before = await usage('team');
    // The push: a first layer fits and is linked, a session for another one is open, then a layer
    // too big for what is left is refused.
    const small = randomBytes(3_000);
    const ok = await uploadBlob(reg.url, 'team/big', small);
    assert.equal(ok.status, 201);
    assert.equal(await usage('team'), before + 3_000);
    const open = await fetch(`${reg.url}/v2/team/big/blobs/uploads/`, { method: 'POST' });
    const openLocation = new URL(open.headers.get('location')!, reg.url);
    await open.arrayBuffer();
    const refused = await uploadBlob(reg.url, 'team/big', randomBytes(10_000));
    assert.equal(refused.status, 403);
    assert.equal(refused.code, 'DENIED');
    assert.match(refused.message!, new RegExp(`^quota exceeded for namespace "team": ${LIMIT} bytes \\(used [0-9.]+ KiB \\+ 9\\.8 KiB\\)$`));
    // Nothing of it stays: the first layer is unlinked, the open session is gone, the usage is back.
    assert.deepEqual(await links('team/big'), []);
    assert.equal(await status(`${reg.url}/v2/team/big/blobs/${ok.digest}`), 404);
    assert.equal(await status(openLocation.href, 'GET'), 404, 'the open session of the refused push is ended');
    assert.equal(await usage('team'), before);
    // Another repository's content is untouched.
    assert.equal(await status(`${reg.url}/v2/team/app/blobs/${first.layer.digest}`), 200);
    // A session opened after the refusal works: a smaller push in the namespace goes through.
    const smaller = await pushImage(reg.url, 'team/big', 'small', 2_000);
    assert.equal(await usage('team'), before + smaller.total);
  });

  it('a manifest that would exceed the quota is refused; its blobs are released', async () => {
    // Room for the blobs, not for the manifest on top of them.
    const room = LIMIT - (await usage('team'));
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    const layer = randomBytes(room - config.length - 10);
    const c = await uploadBlob(reg.url, 'team/edge', config);
    const l = await uploadBlob(reg.url, 'team/edge', layer);
    assert.equal(c.status, 201);
    assert.equal(l.status, 201);
    const before = await usage('team');
    assert.equal(before, LIMIT - 10);
    const m = await putManifest(reg.url, 'team/edge', 'v1', { digest: c.digest, size: config.length }, [{ digest: l.digest, size: layer.length }]);
    assert.equal(m.status, 403);
    assert.equal(m.code, 'DENIED');
    assert.match(m.message!, /^quota exceeded for namespace "team": 20000 bytes/);
    assert.equal(await status(`${reg.url}/v2/team/edge/manifests/v1`), 404);
    assert.deepEqual(await links('team/edge'), []);
    assert.equal(await usage('team'), before - config.length - layer.length);
  });

  it('a cross-repository mount that would exceed the quota is refused', async () => {
    const big = await pushImage(reg.url, 'free/app', 'v1', 19_000);
    const res = await fetch(`${reg.url}/v2/team/mounted/blobs/uploads/?mount=${big.layer.digest}&from=free/app`, { method: 'POST' });
    const a = await answer(res);
    assert.equal(a.status, 403);
    assert.equal(a.code, 'DENIED');
    assert.deepEqual(await links('team/mounted'), []);
  });

  it('a glob namespace has its own quota; a namespace without a limit only counts', async () => {
    await pushImage(reg.url, 'ci/web/cache', 'a', 2_000);
    const a = await uploadBlob(reg.url, 'ci/web/cache', randomBytes(4_000));
    assert.equal(a.status, 403);
    assert.match(a.message!, /^quota exceeded for namespace "ci\/\*\/cache": 5000 bytes/);
    await pushImage(reg.url, 'ci/api/cache', 'a', 1_000);
    assert.ok((await usage('ci/*/cache')) > 3_000, 'both repositories count in the glob namespace');
    assert.ok((await usage('free')) > 19_000);
  });

  it('usage and quotas in the metrics, parsed as Prometheus reads them', async () => {
    const m = await scrape(reg.metricsUrl!);
    assert.equal(m.value('berth_namespace_usage_bytes{namespace="team"}'), await usage('team'));
    assert.equal(m.value('berth_namespace_quota_bytes{namespace="team"}'), LIMIT);
    assert.equal(m.value('berth_namespace_quota_bytes{namespace="ci/*/cache"}'), 5_000);
    assert.equal(m.value('berth_namespace_quota_bytes{namespace="free"}'), undefined, 'no limit, no quota series');
    assert.ok(m.value('berth_namespace_usage_bytes{namespace="free"}')! > 19_000);
  });

  it('the web UI shows the namespace usage against its quota on a repository page', async () => {
    const page = await (await fetch(`${reg.url}/r/team/app`)).text();
    const used = await usage('team');
    const m = /Namespace <code>team<\/code> uses ([^<]+) of its 20 KiB quota \((\d+)%\) <meter min="0" max="20000" value="(\d+)"/.exec(page);
    assert.ok(m, page.slice(0, 2000));
    assert.equal(Number(m[3]), used);
    assert.equal(Number(m[2]), Math.round((used / LIMIT) * 100));
    const free = await (await fetch(`${reg.url}/r/free/app`)).text();
    assert.match(free, /Namespace <code>free<\/code> uses [0-9.]+ KiB\./);
  });

  it('usage goes down after deletes, and the content after GC', async () => {
    const start = await usage('team');
    const img = await pushImage(reg.url, 'team/gone', 'v1', 1_500);
    assert.equal(await usage('team'), start + img.total);
    assert.equal((await fetch(`${reg.url}/v2/team/gone/manifests/${img.manifest.digest}`, { method: 'DELETE' })).status, 202);
    assert.equal(await usage('team'), start + img.total - img.manifest.size, 'the manifest is no longer counted');
    for (const d of [img.config.digest, img.layer.digest]) assert.equal((await fetch(`${reg.url}/v2/team/gone/blobs/${d}`, { method: 'DELETE' })).status, 202);
    assert.equal(await usage('team'), start);
    const before = reg.store.blobs.stat(img.layer.digest);
    assert.equal(await before, 1_500, 'the content stays until GC');
    reg.collectGarbage();
    const deadline = Date.now() + 10_000;
    while ((await reg.store.blobs.stat(img.layer.digest)) !== undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(await reg.store.blobs.stat(img.layer.digest), undefined, 'GC freed the content');
    const m = await scrape(reg.metricsUrl!);
    assert.equal(m.value('berth_namespace_usage_bytes{namespace="team"}'), start);
  });
});

describe('quotas: the default limit', { timeout: 30_000 }, () => {
  it('applies to every namespace without a limit of its own, rule or not', async () => {
    const reg = await startTestRegistry({ quotas: { default: 3_000, namespaces: [{ namespace: 'big', limit: 100_000 }, { namespace: 'listed' }] } });
    try {
      for (const repo of ['anyone/app', 'listed/app']) {
        const a = await uploadBlob(reg.url, repo, randomBytes(4_000));
        assert.equal(a.status, 403, repo);
        assert.match(a.message!, new RegExp(`^quota exceeded for namespace "${repo.split('/')[0]}": 3000 bytes`));
      }
      assert.equal((await uploadBlob(reg.url, 'big/app', randomBytes(4_000))).status, 201);
    } finally {
      await reg.destroy();
    }
  });
});

describe('quotas: the config file', () => {
  it('quotas: and retention: are read and checked', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-quota-config-'));
    try {
      const file = join(dir, 'berth.yaml');
      await writeFile(
        file,
        'quotas:\n  default: 1g\n  namespaces:\n    - namespace: team\n      limit: 100MiB\n    - namespace: "ci/*/cache"\n      limit: 512m\n    - namespace: open\n' +
          'retention:\n  - repositories: "team/**"\n    keepNewest: 10\n    keepTags: ["v[0-9]+\\\\.[0-9]+\\\\.[0-9]+", latest]\n    untaggedOlderThan: 7d\n',
      );
      const c = await loadConfig({ file, env: {} });
      assert.deepEqual(c.quotas, { default: 1024 ** 3, namespaces: [{ namespace: 'team', limit: 100 * 1024 ** 2 }, { namespace: 'ci/*/cache', limit: 512 * 1024 ** 2 }, { namespace: 'open' }] });
      assert.deepEqual(c.retention, [{ repositories: 'team/**', keepNewest: 10, keepTags: ['v[0-9]+\\.[0-9]+\\.[0-9]+', 'latest'], untaggedOlderThanMs: 7 * 86_400_000 }]);
      // The default from the environment and a flag, over the file's.
      assert.equal((await loadConfig({ file, env: { BERTH_QUOTA_DEFAULT: '2g' } })).quotas?.default, 2 * 1024 ** 3);
      assert.equal((await loadConfig({ file, env: { BERTH_QUOTA_DEFAULT: '2g' }, flags: { quotaDefault: 0 } })).quotas?.default, undefined);
      assert.equal((await loadConfig({ file, env: {} })).quotas?.namespaces.length, 3, 'the rules stay');
      assert.deepEqual((await loadConfig({ env: { BERTH_QUOTA_DEFAULT: '500m' } })).quotas, { namespaces: [], default: 500 * 1024 ** 2 });
      await writeFile(file, 'quotas:\n  namespaces:\n    - namespace: team\n      limt: 1g\n');
      await assert.rejects(loadConfig({ file, env: {} }), /unknown key quotas\.namespaces\[0\]\.limt/);
      await writeFile(file, 'quotas:\n  namespaces:\n    - namespace: team\n      limit: lots\n');
      await assert.rejects(loadConfig({ file, env: {} }), /limit must be a size/);
      await writeFile(file, 'retention:\n  - repositories: "*"\n    keepTags: ["v(["]\n');
      await assert.rejects(loadConfig({ file, env: {} }), /is not a regular expression/);
      await writeFile(file, 'retention:\n  - repositories: "*"\n');
      await assert.rejects(loadConfig({ file, env: {} }), /removes nothing/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('quotas on PostgreSQL metadata: one quota across two replicas', { skip: postgresMissing() ?? false, timeout: 120_000 }, () => {
  let pg: TestPostgres;
  let dir: string;
  let a: TestRegistry;
  let b: TestRegistry;

  before(async () => {
    pg = await startPostgres();
    const url = await pg.createDatabase('quota');
    dir = await mkdtemp(join(tmpdir(), 'berth-quota-pg-'));
    const config = { data: dir, metadata: url, gc: { intervalHours: 0, graceMinutes: 0 }, quotas: { namespaces: [{ namespace: 'team', limit: 10_000 }] } };
    a = await startTestRegistry(config);
    b = await startTestRegistry(config);
  });

  after(async () => {
    await a?.close();
    await b?.close();
    await pg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('what one replica linked counts against the other; a refusal releases the push; a smaller push fits', async () => {
    const first = await pushImage(a.url, 'team/app', 'v1', 6_000);
    assert.equal((await b.store.meta.namespaceUsage('team')).usedBytes, first.total);
    const small = await uploadBlob(b.url, 'team/other', randomBytes(500));
    assert.equal(small.status, 201);
    const refused = await uploadBlob(b.url, 'team/other', randomBytes(5_000));
    assert.equal(refused.status, 403);
    assert.equal(refused.code, 'DENIED');
    assert.match(refused.message!, /^quota exceeded for namespace "team": 10000 bytes \(used [0-9.]+ KiB \+ 4\.9 KiB\)$/);
    assert.equal(await status(`${a.url}/v2/team/other/blobs/${small.digest}`), 404, 'the refused push released its first layer, seen by the other replica');
    assert.equal((await a.store.meta.namespaceUsage('team')).usedBytes, first.total);
    const fits = await pushImage(a.url, 'team/other', 'v1', 2_000);
    assert.equal((await b.store.meta.namespaceUsage('team')).usedBytes, first.total + fits.total);
    // Concurrent pushes from both replicas never take the namespace over its quota.
    const results = await Promise.all([uploadBlob(a.url, 'team/x', randomBytes(900)), uploadBlob(b.url, 'team/y', randomBytes(900)), uploadBlob(a.url, 'team/z', randomBytes(900))]);
    assert.ok(results.some((r) => r.status === 403));
    assert.ok((await a.store.meta.namespaceUsage('team')).usedBytes <= 10_000);
  });

  it('berth fsck finds a counter that drifted from the links, and --repair recounts it', async () => {
    const right = (await a.store.meta.namespaceUsage('team')).usedBytes;
    assert.equal((await fsck(a.store, { verifyContent: false })).problems.length, 0);
    await pg.psql(`update namespace_usage set used = 1 where namespace = 'team'`, 'quota');
    const found = await fsck(a.store, { verifyContent: false });
    assert.deepEqual(found.problems.map((p) => [p.kind, p.reference]), [['usage-drift', 'team']]);
    assert.match(found.problems[0]!.detail, new RegExp(`says 1 bytes, its links add up to ${right}`));
    const repaired = await fsck(b.store, { verifyContent: false, repair: true });
    assert.deepEqual(repaired.removed, [{ what: 'usage', repository: 'team', reference: 'team' }]);
    assert.equal((await a.store.meta.namespaceUsage('team')).usedBytes, right);
  });
});
