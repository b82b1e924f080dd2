// `berth fsck` on real registries: images pushed over HTTP to a registry started in-process, then
// the data folder checked by the real CLI (dist/bin/berth.js fsck) after the registry is closed,
// corrupted in each way a fault can, repaired, and checked again. Once on LevelDB, once on
// PostgreSQL metadata (both with fs blobs).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, unlink, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestRegistry } from './testing.js';
import { RegistryHttp } from '../conformance-tests/fixtures/http-client.js';
import { content, descriptor, imageIndex, imageManifest, randomContent, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, type Content, type Manifest } from '../conformance-tests/fixtures/content.js';
import { auditBlobFiles } from '../conformance-tests/fixtures/data-dir.js';
import { BERTH_BIN } from '../conformance-tests/fixtures/berth-process.js';
import { postgresMissing, startPostgres, type TestPostgres } from '../storage/testing/postgres.js';
import { LevelMetadata } from '../storage/level-metadata.js';
import { RegistryStore } from '../storage/registry-store.js';
import { fsck } from '../storage/fsck.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function berthFsck(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    // A clean environment: no BERTH_* setting of the machine running the tests leaks in.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BERTH_')));
    execFile(process.execPath, [BERTH_BIN, 'fsck', ...args], { env }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

interface JsonReport {
  ok: boolean;
  repositories: number;
  tags: number;
  manifests: number;
  blobLinks: number;
  referrers: number;
  blobsChecked: number;
  bytesHashed: number;
  orphans: { count: number; bytes: number };
  problems: Array<{ kind: string; repository: string; reference: string; detail: string }>;
  removed: Array<{ what: string; repository: string; reference: string; tags?: string[] }>;
  remainingAfterRepair?: unknown[];
}

async function fsckJson(args: string[], expectCode: number): Promise<JsonReport> {
  const r = await berthFsck([...args, '--format', 'json']);
  assert.equal(r.code, expectCode, `exit code; stdout ${r.stdout.slice(0, 3000)} stderr ${r.stderr}`);
  return JSON.parse(r.stdout) as JsonReport;
}

async function pushBlob(http: RegistryHttp, repo: string, c: Content): Promise<void> {
  const r = await http.post(`/v2/${repo}/blobs/uploads/`, { query: { digest: c.digest }, body: c.bytes });
  assert.equal(r.status, 201, r.body.toString());
}

async function pushManifest(http: RegistryHttp, repo: string, ref: string, m: Manifest): Promise<void> {
  const r = await http.put(`/v2/${repo}/manifests/${ref}`, { headers: { 'Content-Type': m.mediaType }, body: m.bytes });
  assert.equal(r.status, 201, r.body.toString());
}

/** An image: a config and `layers`, pushed over HTTP and tagged. */
async function pushImage(http: RegistryHttp, repo: string, tag: string, layers: Content[], opts: { subject?: Manifest } = {}): Promise<Manifest> {
  const config = content(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, n: Math.random() }));
  for (const b of [config, ...layers]) await pushBlob(http, repo, b);
  const m = imageManifest({
    config: descriptor(config, OCI_CONFIG),
    layers: layers.map((l) => descriptor(l, OCI_LAYER)),
    ...(opts.subject ? { subject: descriptor(opts.subject, OCI_MANIFEST), artifactType: 'application/vnd.example.sig' } : {}),
  });
  await pushManifest(http, repo, tag, m);
  return m;
}

function blobFile(dir: string, digest: string): string {
  const [alg, hex] = digest.split(':') as [string, string];
  return join(dir, 'blobs', alg, hex.slice(0, 2), hex);
}

async function flipByte(path: string, at: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0] = b[0]! ^ 0xff;
    await fh.write(b, 0, 1, at);
  } finally {
    await fh.close();
  }
}

const kinds = (r: JsonReport) => r.problems.map((p) => `${p.kind} ${p.repository} ${p.reference}`).sort();
const D = (c: string) => `sha256:${c.repeat(64)}`;

describe('berth fsck (LevelDB metadata, fs blobs)', { timeout: 120_000 }, () => {
  let dir = '';
  const shared = randomContent(40_000);
  const onlyV2 = randomContent(300_000);
  const onlyB = randomContent(20_000);
  let v1: Manifest, v2: Manifest, sig: Manifest, index: Manifest, b1: Manifest, b2: Manifest;
  let orphan: Content;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-fsck-'));
    const reg = await startTestRegistry({ data: dir });
    const http = new RegistryHttp(reg.url);
    try {
      v1 = await pushImage(http, 'team/app', 'v1', [shared, randomContent(10_000)]);
      v2 = await pushImage(http, 'team/app', 'v2', [shared, onlyV2]);
      sig = await pushImage(http, 'team/app', 'sig', [content('signature')], { subject: v1 });
      index = imageIndex({ manifests: [descriptor(v1, OCI_MANIFEST, { platform: { architecture: 'amd64', os: 'linux' } }), descriptor(v2, OCI_MANIFEST, { platform: { architecture: 'arm64', os: 'linux' } })] });
      await pushManifest(http, 'team/app', 'multi', index);
      b1 = await pushImage(http, 'other/app', 'latest', [onlyB, shared]);
      b2 = await pushImage(http, 'other/app', 'old', [randomContent(5000)]);
      // Uploaded, then its link deleted: stored content nothing links or references (an orphan).
      orphan = randomContent(12_345);
      await pushBlob(http, 'other/app', orphan);
      assert.equal((await http.delete(`/v2/other/app/blobs/${orphan.digest}`)).status, 202);
      // Uploaded and linked, never referenced by a manifest: not an orphan, not a problem.
      await pushBlob(http, 'other/app', randomContent(777));
    } finally {
      await reg.close();
    }
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a clean registry: exit 0, the counts right, orphans counted but not a problem', async () => {
    const r = await fsckJson(['--data', dir], 0);
    assert.equal(r.ok, true);
    assert.deepEqual(r.problems, []);
    assert.equal(r.repositories, 2);
    assert.equal(r.tags, 6);
    assert.equal(r.manifests, 6);
    // team/app: v1 (config, 2 layers), v2 (config, onlyV2; shared already), sig (config, 1 layer); other/app: latest (config, onlyB, shared), old (config, 1 layer), the unreferenced one.
    assert.equal(r.blobLinks, 3 + 2 + 2 + 3 + 2 + 1);
    assert.equal(r.referrers, 1);
    // 6 manifests and 12 distinct blobs (shared counted once), each hashed once.
    assert.equal(r.blobsChecked, 6 + 12);
    assert.deepEqual(r.orphans, { count: 1, bytes: orphan.size });
    const text = await berthFsck(['--data', dir]);
    assert.equal(text.code, 0, text.stdout + text.stderr);
    assert.match(text.stdout, /checked 2 repositories: 6 tags, 6 manifests, 13 blob links, 1 referrer entry; 18 distinct blobs, [\d.]+ KiB hashed/);
    assert.match(text.stdout, /orphans: 1 blob, 12\.1 KiB/);
    assert.match(text.stdout, /clean: no problems/);
    const fast = await fsckJson(['--data', dir, '--fast'], 0);
    assert.ok(fast.bytesHashed < r.bytesHashed, '--fast hashes only the manifests');
  });

  it('fsck on the data folder of a running registry fails with one clear line (LevelDB lock), exit 2', async () => {
    const reg = await startTestRegistry({ data: dir });
    try {
      const r = await berthFsck(['--data', dir]);
      assert.equal(r.code, 2);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^berth fsck: the data folder .* is in use by a running berth serve \(LevelDB lock\): stop it first/);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    } finally {
      await reg.close();
    }
    const none = await berthFsck(['--data', join(dir, 'nope')]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no berth data in .*nope \(no meta\/ folder\)/);
    assert.equal((await berthFsck(['--data', dir, '--format', 'xml'])).code, 125);
    assert.equal((await berthFsck(['--no-such-flag'])).code, 125);
  });

  it('each corruption is listed (exit 1); --repair removes exactly the dangling metadata, never content; a second fsck is clean', async () => {
    // A layer file deleted, a layer flipped, a manifest's bytes deleted (as a lost disk write would).
    await unlink(blobFile(dir, onlyB.digest));
    await flipByte(blobFile(dir, onlyV2.digest), 1000);
    await unlink(blobFile(dir, b2.digest));
    // Metadata a bug or a lost write could leave: a tag to no manifest, a link to no content, a
    // referrer entry whose manifest is gone (written straight into LevelDB, the registry closed).
    const meta = new LevelMetadata(join(dir, 'meta'));
    await meta.open();
    await meta.db.sublevel<string, string>('tags', { valueEncoding: 'utf8' }).put(`team/app\0ghost`, D('e'));
    await meta.linkBlob('team/app', D('f'), 99);
    await meta.db.sublevel<string, object>('referrers', { valueEncoding: 'json' }).put(`team/app\0${v1.digest}\0${D('c')}`, { mediaType: OCI_MANIFEST, digest: D('c'), size: 10 });
    await meta.close();

    const broken = await fsckJson(['--data', dir], 1);
    assert.equal(broken.ok, false);
    assert.deepEqual(
      kinds(broken),
      [
        `blob-corrupt team/app ${onlyV2.digest}`,
        `blob-missing other/app ${onlyB.digest}`,
        `blob-missing team/app ${D('f')}`,
        `manifest-missing other/app ${b2.digest}`,
        `reference-corrupt team/app ${v2.digest}`,
        `reference-missing other/app ${b1.digest}`,
        `referrer-dangling team/app ${D('c')}`,
        `tag-dangling team/app ghost`,
      ].sort(),
    );
    const text = await berthFsck(['--data', dir]);
    assert.equal(text.code, 1);
    assert.match(text.stdout, new RegExp(`blob-corrupt +team/app ${onlyV2.digest}: content hashes to sha256:`));
    assert.match(text.stdout, /8 problems found: berth fsck --repair removes the dangling metadata/);
    // --fast sees what is missing, not the flipped byte.
    const fast = await fsckJson(['--data', dir, '--fast'], 1);
    assert.ok(!kinds(fast).some((k) => k.includes('corrupt')), kinds(fast).join('\n'));

    const filesBefore = (await auditBlobFiles(dir)).digests.length + (await auditBlobFiles(dir)).corrupt.length;
    const repaired = await fsckJson(['--data', dir, '--repair'], 0);
    assert.equal(repaired.ok, true);
    assert.deepEqual(repaired.remainingAfterRepair, []);
    assert.deepEqual(
      repaired.removed.map((r) => `${r.what} ${r.repository} ${r.reference}${r.tags ? ` [${r.tags.sort().join(',')}]` : ''}`).sort(),
      [
        `blob-link other/app ${onlyB.digest}`,
        `blob-link team/app ${D('f')}`,
        `blob-link team/app ${onlyV2.digest}`,
        `manifest other/app ${b1.digest} [latest]`,
        `manifest other/app ${b2.digest} [old]`,
        `manifest team/app ${v2.digest} [v2]`,
        `referrer team/app ${D('c')}`,
        `tag team/app ghost`,
      ].sort(),
    );
    const after = await auditBlobFiles(dir);
    assert.equal(after.digests.length + after.corrupt.length, filesBefore, 'no content removed');

    const clean = await fsckJson(['--data', dir], 0);
    assert.deepEqual(clean.problems, []);
    // v1, sig and multi (an index: its child v2 lost its link, but v2's bytes are whole, so the
    // index's references are); latest and old went with their manifests.
    assert.equal(clean.tags, 3);
    assert.ok(clean.orphans.count > 1, 'content whose links went is now GC’s');

    // What was not broken is still served.
    const reg = await startTestRegistry({ data: dir });
    try {
      const http = new RegistryHttp(reg.url);
      assert.equal((await http.get(`/v2/team/app/manifests/v1`)).status, 200);
      assert.equal((await http.get(`/v2/team/app/blobs/${shared.digest}`)).status, 200);
      assert.equal((await http.get(`/v2/team/app/manifests/v2`)).status, 404);
      assert.deepEqual((await http.get(`/v2/team/app/referrers/${v1.digest}`)).json<{ manifests: Array<{ digest: string }> }>().manifests.map((m) => m.digest), [sig.digest]);
    } finally {
      await reg.close();
    }
  });

  it('the module: stale upload sessions counted; an index whose child manifest is corrupt is reported', async () => {
    const d2 = await mkdtemp(join(tmpdir(), 'berth-fsck-'));
    try {
      const reg = await startTestRegistry({ data: d2 });
      const http = new RegistryHttp(reg.url);
      const a = await pushImage(http, 'idx/app', 'a', [randomContent(100)]);
      const idx = imageIndex({ manifests: [descriptor(a, OCI_MANIFEST)] });
      await pushManifest(http, 'idx/app', 'all', idx);
      assert.equal((await http.post('/v2/idx/app/blobs/uploads/')).status, 202);
      await reg.close();
      await flipByte(blobFile(d2, a.digest), 5);
      const store = new RegistryStore(d2);
      await store.open();
      try {
        const r = await fsck(store, { uploadPurgeAgeMs: 0 });
        assert.equal(r.staleUploads, 1);
        assert.deepEqual(r.problems.map((p) => `${p.kind} ${p.reference}`).sort(), [`manifest-corrupt ${a.digest}`, `reference-corrupt ${idx.digest}`].sort());
        assert.equal((await fsck(store, { uploadPurgeAgeMs: 3600_000 })).staleUploads, 0);
      } finally {
        await store.close();
      }
    } finally {
      await rm(d2, { recursive: true, force: true });
    }
  });
});

const pgMissing = postgresMissing();
describe('berth fsck (PostgreSQL metadata, fs blobs)', { timeout: 120_000, ...(pgMissing ? { skip: pgMissing } : {}) }, () => {
  let pg: TestPostgres | undefined;
  let dir = '';
  after(async () => {
    await pg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('clean, then a deleted layer listed, repaired, clean again', async () => {
    pg = await startPostgres();
    const url = await pg.createDatabase('fsck');
    dir = await mkdtemp(join(tmpdir(), 'berth-fsck-pg-'));
    const layer = randomContent(50_000);
    const reg = await startTestRegistry({ data: dir, metadata: url });
    let m: Manifest;
    try {
      const http = new RegistryHttp(reg.url);
      m = await pushImage(http, 'pg/app', 'v1', [layer]);
      await pushImage(http, 'pg/app', 'v2', [randomContent(1000)]);
      // PostgreSQL metadata is shared: fsck may run while the registry does.
      const live = await fsckJson(['--data', dir, '--metadata', url], 0);
      assert.equal(live.manifests, 2);
    } finally {
      await reg.close();
    }
    const r = await fsckJson(['--data', dir, '--metadata', url], 0);
    assert.equal(r.repositories, 1);
    assert.equal(r.tags, 2);
    assert.equal(r.blobLinks, 4);
    await unlink(blobFile(dir, layer.digest));
    const broken = await fsckJson(['--data', dir, '--metadata', url], 1);
    assert.deepEqual(kinds(broken), [`blob-missing pg/app ${layer.digest}`, `reference-missing pg/app ${m.digest}`]);
    const repaired = await fsckJson(['--data', dir, '--metadata', url, '--repair'], 0);
    assert.deepEqual(repaired.removed.map((x) => `${x.what} ${x.reference}`).sort(), [`blob-link ${layer.digest}`, `manifest ${m.digest}`].sort());
    const clean = await fsckJson(['--data', dir, '--metadata', url], 0);
    assert.equal(clean.tags, 1);
  });
});
