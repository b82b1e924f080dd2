// Retention (docs/server.md#retention) against real registries: 1 000 tags in one repository
// pushed over HTTP, `berth serve retention --dry-run` and the real run as child processes on the
// same data folder (their lists compared), what is left pulled by a restarted registry; untagged
// manifests aged out with index children and referrers of kept manifests kept; the registry's
// own run before its GC (SIGUSR2's path), its log and metrics, and compare-and-delete.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { startTestRegistry, type TestRegistry } from './testing.js';
import { postgresMissing, startPostgres, type TestPostgres } from '../storage/testing/postgres.js';
import { applyRetention, applyRepositoryPlan, planRepository, RetentionPolicy } from '../storage/retention.js';

const run = promisify(execFile);
const BERTH = fileURLToPath(new URL('../../bin/launch.cjs', import.meta.url));
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function pushBlob(base: string, repo: string, bytes: Buffer): Promise<{ digest: string; size: number }> {
  const digest = sha(bytes);
  const res = await fetch(`${base}/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: new Uint8Array(bytes), headers: { 'Content-Type': 'application/octet-stream' } });
  assert.equal(res.status, 201, `blob push: ${await res.text()}`);
  return { digest, size: bytes.length };
}

async function putManifest(base: string, repo: string, ref: string, body: object, mediaType = OCI_MANIFEST): Promise<{ digest: string; size: number; mediaType: string }> {
  const bytes = Buffer.from(JSON.stringify(body));
  const res = await fetch(`${base}/v2/${repo}/manifests/${ref}`, { method: 'PUT', body: new Uint8Array(bytes), headers: { 'Content-Type': mediaType } });
  assert.equal(res.status, 201, `manifest push: ${await res.text()}`);
  return { digest: sha(bytes), size: bytes.length, mediaType };
}

/** An image of its own config and layer (a few hundred random bytes each), under `ref` (a tag or its digest). */
async function pushImage(base: string, repo: string, ref: string | undefined, extra: { subject?: { digest: string; size: number; mediaType: string }; artifactType?: string } = {}) {
  const config = await pushBlob(base, repo, Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex') })));
  const layer = await pushBlob(base, repo, randomBytes(300));
  const body: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: extra.artifactType ?? 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
    ...(extra.subject ? { subject: extra.subject } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(body));
  const m = await putManifest(base, repo, ref ?? sha(bytes), body);
  return { ...m, config: config.digest, layer: layer.digest };
}

async function pushIndex(base: string, repo: string, ref: string | undefined, children: Array<{ digest: string; size: number; mediaType: string }>) {
  const body = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: children.map((c, i) => ({ ...c, platform: { architecture: i === 0 ? 'amd64' : 'arm64', os: 'linux' } })) };
  const bytes = Buffer.from(JSON.stringify(body));
  return putManifest(base, repo, ref ?? sha(bytes), body, OCI_INDEX);
}

async function status(url: string, method = 'GET'): Promise<number> {
  const res = await fetch(url, { method, headers: { Accept: `${OCI_MANIFEST}, ${OCI_INDEX}` } });
  await res.arrayBuffer();
  return res.status;
}

/** Waits until the clock moves past the last push, so every tag has its own push time. */
async function nextMillisecond(): Promise<void> {
  const t = Date.now();
  while (Date.now() === t) await new Promise((r) => setImmediate(r));
}

async function berth(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [BERTH, ...args], { maxBuffer: 64 << 20 });
}

type Removal = { what: 'tag' | 'manifest'; repository: string; tag?: string; digest: string; reason?: string };

function removals(stdout: string): { items: Removal[]; summary: { removedTags: number; removedManifests: number; unlinkedBlobs: number; skipped: number; dryRun: boolean }; gc?: { removed: number } } {
  const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const last = lines.pop() as { summary: never; gc?: never };
  return { items: lines as unknown as Removal[], summary: last.summary, ...(last.gc ? { gc: last.gc } : {}) };
}

const key = (r: Removal) => (r.what === 'tag' ? `tag ${r.repository}:${r.tag} ${r.digest}` : `manifest ${r.repository}@${r.digest}`);

describe('retention: 1 000 tags in one repository, berth serve retention --dry-run and the real run', { timeout: 300_000 }, () => {
  let work: string;
  let data: string;
  let configFile: string;
  let reg: TestRegistry | undefined;
  const tags: Array<{ tag: string; digest: string; layer: string; config: string }> = [];
  let multi: { digest: string; children: string[] };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-retention-'));
    data = join(work, 'data');
    configFile = join(work, 'berth.yaml');
    await writeFile(
      configFile,
      [
        'gc:',
        '  graceMinutes: 0',
        'retention:',
        '  - repositories: "big/*"',
        '    keepNewest: 10',
        '    keepTags: ["release-[0-9]+", "stable"]',
        '',
      ].join('\n'),
    );
    reg = await startTestRegistry({ data, gc: { intervalHours: 0, graceMinutes: 0 } });
    const base = reg.url;
    // An index early in the history, its children untagged: it goes, and they with it.
    const c1 = await pushImage(base, 'big/app', undefined);
    const c2 = await pushImage(base, 'big/app', undefined);
    const idx = await pushIndex(base, 'big/app', 'multi', [c1, c2]);
    multi = { digest: idx.digest, children: [c1.digest, c2.digest] };
    await nextMillisecond();
    for (let i = 0; i < 1000; i++) {
      const tag = i % 100 === 50 ? `release-${i}` : `t${String(i).padStart(4, '0')}`;
      const m = await pushImage(base, 'big/app', tag);
      tags.push({ tag, digest: m.digest, layer: m.layer, config: m.config });
      await nextMillisecond();
    }
    // Another repository, not under the rule: untouched.
    await pushImage(base, 'other/app', 'old');
    await reg.close();
    reg = undefined;
  });

  after(async () => {
    await reg?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('the dry run lists exactly what the real run removes; newest 10 and the pattern are kept; the index goes with its children', async () => {
    const dry = removals((await berth(['serve', 'retention', '--dry-run', '--format', 'json', '--data', data, '--config', configFile])).stdout);
    assert.equal(dry.summary.dryRun, true);
    // The text form: one line per removal in the same order, then the summary.
    const textLines = (await berth(['serve', 'retention', '--dry-run', '--data', data, '--config', configFile])).stdout.trim().split('\n');
    assert.equal(textLines.length, dry.items.length + 1);
    assert.match(textLines[0]!, /^would remove tag big\/app:(multi|t\d{4}) \(sha256:[a-f0-9]{64}, pushed \d{4}-\d\d-\d\dT[0-9:.]+Z\)$/);
    assert.ok(textLines.some((l) => /^would remove manifest big\/app@sha256:[a-f0-9]{64} \(unreferenced, application\/vnd\.oci\.image\.manifest\.v1\+json, pushed /.test(l)));
    assert.equal(textLines.at(-1), `dry run: 1 repository under a rule: would remove ${dry.summary.removedTags} tags, ${dry.summary.removedManifests} manifests, ${dry.summary.unlinkedBlobs} blob links`);
    const keptTags = new Set([...tags.slice(-10).map((t) => t.tag), ...tags.filter((t) => t.tag.startsWith('release-')).map((t) => t.tag)]);
    assert.equal(keptTags.size, 20);
    const expectedTags = tags.filter((t) => !keptTags.has(t.tag));
    assert.equal(dry.summary.removedTags, expectedTags.length + 1, '980 tags and multi');
    const dryTags = dry.items.filter((r) => r.what === 'tag');
    assert.deepEqual(new Set(dryTags.map((r) => r.tag)), new Set([...expectedTags.map((t) => t.tag), 'multi']));
    const dryManifests = new Set(dry.items.filter((r) => r.what === 'manifest').map((r) => r.digest));
    assert.deepEqual(dryManifests, new Set([...expectedTags.map((t) => t.digest), multi.digest, ...multi.children]));
    // The index before its children (they are referenced until it goes).
    const order = dry.items.filter((r) => r.what === 'manifest').map((r) => r.digest);
    assert.ok(order.indexOf(multi.digest) < order.indexOf(multi.children[0]!) && order.indexOf(multi.digest) < order.indexOf(multi.children[1]!));
    assert.equal(dry.items.find((r) => r.what === 'manifest' && r.digest === multi.children[0])?.reason, 'unreferenced');
    assert.equal(dry.items.find((r) => r.what === 'manifest' && r.digest === tags[0]!.digest)?.reason, 'tags-removed');
    assert.equal(dry.summary.unlinkedBlobs, 2 * (expectedTags.length + 2), 'config and layer of each removed image');

    // The dry run removed nothing: a second dry run says the same.
    const again = removals((await berth(['serve', 'retention', '--dry-run', '--format', 'json', '--data', data, '--config', configFile])).stdout);
    assert.deepEqual(again.items.map(key).sort(), dry.items.map(key).sort());

    const started = Date.now();
    const real = removals((await berth(['serve', 'retention', '--gc', '--format', 'json', '--data', data, '--config', configFile])).stdout);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(real.summary.dryRun, false);
    assert.equal(real.summary.skipped, 0);
    assert.deepEqual(real.items.map(key).sort(), dry.items.map(key).sort(), 'the real run removed what the dry run listed');
    assert.equal(real.summary.unlinkedBlobs, dry.summary.unlinkedBlobs);
    assert.equal(real.gc?.removed, dry.summary.unlinkedBlobs + dry.summary.removedManifests, 'GC freed the removed manifests and their blobs in the same run');
    process.stdout.write(`# retention of 1 000 tags: ${real.summary.removedTags} tags, ${real.summary.removedManifests} manifests, ${real.summary.unlinkedBlobs} blob links removed, then GC, in ${seconds.toFixed(1)} s (child process, LevelDB)\n`);

    // A third run finds nothing more to remove; the text form says so in its summary.
    const after = removals((await berth(['serve', 'retention', '--dry-run', '--format', 'json', '--data', data, '--config', configFile])).stdout);
    assert.equal(after.items.length, 0);
    const text = (await berth(['serve', 'retention', '--dry-run', '--data', data, '--config', configFile])).stdout;
    assert.equal(text, 'dry run: 1 repository under a rule: would remove 0 tags, 0 manifests, 0 blob links\n');
  });

  it('a restarted registry serves every kept tag whole, and none of the removed ones', async () => {
    reg = await startTestRegistry({ data, gc: { intervalHours: 0, graceMinutes: 0 } });
    const base = reg.url;
    // LevelDB is the running registry's: the verb says so and how to get a run instead.
    const locked = await berth(['serve', 'retention', '--dry-run', '--data', data, '--config', configFile]).then(
      () => assert.fail('ran beside the registry holding LevelDB'),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(locked.code, 2);
    assert.match(locked.stderr, /in use by a running berth serve \(LevelDB lock\): stop it first \(or send it SIGUSR2: it runs retention, then GC\)/);
    const listed = (await (await fetch(`${base}/v2/big/app/tags/list?n=1000`)).json()) as { tags: string[] };
    const kept = tags.filter((t) => t.tag.startsWith('release-') || tags.indexOf(t) >= 990);
    assert.deepEqual(listed.tags.sort(), kept.map((t) => t.tag).sort());
    for (const t of kept) {
      assert.equal(await status(`${base}/v2/big/app/manifests/${t.tag}`), 200, t.tag);
      assert.equal(await status(`${base}/v2/big/app/blobs/${t.layer}`), 200, `${t.tag} layer`);
      assert.equal(await status(`${base}/v2/big/app/blobs/${t.config}`), 200, `${t.tag} config`);
    }
    for (const t of tags.slice(0, 5)) {
      assert.equal(await status(`${base}/v2/big/app/manifests/${t.tag}`), 404);
      assert.equal(await status(`${base}/v2/big/app/manifests/${t.digest}`), 404);
      assert.equal(await status(`${base}/v2/big/app/blobs/${t.layer}`), 404);
    }
    assert.equal(await status(`${base}/v2/big/app/manifests/${multi.children[0]}`), 404);
    assert.equal(await status(`${base}/v2/other/app/manifests/old`), 200, 'a repository under no rule is untouched');
    // Usage of the namespace went down with the removals: 20 images of ~700 bytes remain.
    const usage = await reg.store.namespaceUsageOf('big/app');
    assert.ok(usage.usedBytes > 0 && usage.usedBytes < 20 * 2000, `usage ${usage.usedBytes}`);
  });
});

describe('retention: untagged manifests by age, index children and referrers kept, run before the GC of the registry', { timeout: 120_000 }, () => {
  let reg: TestRegistry;
  const lines: Array<Record<string, unknown>> = [];

  before(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    reg = await startTestRegistry(
      {
        gc: { intervalHours: 0, graceMinutes: 0 },
        metrics: { listen: '127.0.0.1:0' },
        retention: [{ repositories: 'age/**', untaggedOlderThanMs: 1500 }],
      },
      { logger: pino({ level: 'info' }, sink) },
    );
  });

  after(async () => {
    await reg.destroy();
  });

  it('removes old untagged manifests and referrers of removed subjects; keeps children of a tagged index, referrers of kept manifests and young ones', async () => {
    const base = reg.url;
    const old = await pushImage(base, 'age/app', undefined);
    const oldSig = await pushImage(base, 'age/app', undefined, { subject: old, artifactType: 'application/vnd.example.signature' });
    const child1 = await pushImage(base, 'age/app', undefined);
    const child2 = await pushImage(base, 'age/app', undefined);
    const idx = await pushIndex(base, 'age/app', 'v1', [child1, child2]);
    const idxSig = await pushImage(base, 'age/app', undefined, { subject: idx, artifactType: 'application/vnd.example.signature' });
    // An index that is itself untagged and old: it goes, and its child with it.
    const orphanChild = await pushImage(base, 'age/app', undefined);
    const orphanIdx = await pushIndex(base, 'age/app', undefined, [orphanChild]);
    await new Promise((r) => setTimeout(r, 1700));
    const young = await pushImage(base, 'age/app', undefined);

    // The dry run through the library, as the CLI does it.
    const planned: string[] = [];
    const dry = await applyRetention(reg.store, new RetentionPolicy(reg.config.retention!), { dryRun: true, onRemoved: (r) => planned.push(r.digest) });
    assert.deepEqual(new Set(planned), new Set([old.digest, oldSig.digest, orphanIdx.digest, orphanChild.digest]));
    assert.equal(dry.removedTags, 0);

    reg.collectGarbage();
    const deadline = Date.now() + 20_000;
    while (!lines.some((l) => l.msg === 'garbage collection done') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const removedLogged = lines.filter((l) => l.msg === 'retention removed manifest').map((l) => l.digest);
    assert.deepEqual(new Set(removedLogged), new Set(planned), 'the log names each removed manifest');
    const gcLine = lines.find((l) => l.msg === 'garbage collection done')!;
    assert.ok((gcLine.removed as number) >= 4 + 2 * 3, `GC of the same run freed the removed manifests and their blobs: ${JSON.stringify(gcLine)}`);
    const order = lines.map((l) => l.msg);
    assert.ok(order.indexOf('retention done') < order.indexOf('garbage collection done'), 'retention runs before the GC mark');

    for (const d of [old, oldSig, orphanIdx, orphanChild]) assert.equal(await status(`${base}/v2/age/app/manifests/${d.digest}`), 404);
    for (const d of [idx, child1, child2, idxSig, young]) assert.equal(await status(`${base}/v2/age/app/manifests/${d.digest}`), 200);
    assert.equal(await status(`${base}/v2/age/app/blobs/${child1.layer}`), 200, 'a kept child keeps its layer');
    assert.equal(await status(`${base}/v2/age/app/blobs/${old.layer}`), 404, 'a removed manifest releases its layer');

    const metrics = await (await fetch(reg.metricsUrl!)).text();
    assert.match(metrics, /^berth_retention_removed_manifests_total 4$/m);
    assert.match(metrics, /^berth_retention_removed_tags_total 0$/m);
    assert.match(metrics, /^berth_retention_runs_total 1$/m);
  });

  it('compare-and-delete: a tag pushed again after the scan is kept, and so is its manifest', async () => {
    const base = reg.url;
    const a = await pushImage(base, 'age/race', 'a');
    await nextMillisecond();
    await pushImage(base, 'age/race', 'b');
    const policy = new RetentionPolicy([{ repositories: 'age/race', keepNewest: 1 }]);
    // The plan is made, then `a` is pushed again (same manifest, a new push time) before it is applied.
    const rule = policy.ruleFor('age/race')!;
    const plan = await planRepository(reg.store, 'age/race', rule, Date.now());
    assert.deepEqual(plan.tags.map((t) => t.tag), ['a']);
    await nextMillisecond();
    await putManifest(base, 'age/race', 'a', JSON.parse(Buffer.from(await (await fetch(`${base}/v2/age/race/manifests/${a.digest}`, { headers: { Accept: OCI_MANIFEST } })).arrayBuffer()).toString()));
    // Applying the stale plan: nothing of `a` goes.
    const result = await applyRepositoryPlan(reg.store, plan);
    assert.equal(result.removedTags, 0);
    assert.equal(result.removedManifests, 0);
    assert.equal(result.skipped, 2);
    assert.equal(await status(`${base}/v2/age/race/manifests/a`), 200);
  });

  it('a manifest an index pushed after the scan names is kept, with its blobs; a tag moved meanwhile keeps its new manifest', async () => {
    const base = reg.url;
    const a = await pushImage(base, 'age/late', 'a');
    const b = await pushImage(base, 'age/late', 'b');
    await nextMillisecond();
    await pushImage(base, 'age/late', 'c');
    const rule = new RetentionPolicy([{ repositories: 'age/late', keepNewest: 1 }]).ruleFor('age/late')!;
    const plan = await planRepository(reg.store, 'age/late', rule, Date.now());
    assert.deepEqual(new Set(plan.manifests.map((m) => m.digest)), new Set([a.digest, b.digest]));
    // After the scan: an index names `a`; tag `b` moves to a new image.
    await nextMillisecond();
    await pushIndex(base, 'age/late', 'multi', [a]);
    const b2 = await pushImage(base, 'age/late', 'b');
    const result = await applyRepositoryPlan(reg.store, plan);
    assert.equal(await status(`${base}/v2/age/late/manifests/${a.digest}`), 200, 'the index child is kept');
    assert.equal(await status(`${base}/v2/age/late/blobs/${a.layer}`), 200, 'and its layer stays linked');
    assert.equal(await status(`${base}/v2/age/late/manifests/b`), 200, 'the moved tag stays');
    assert.equal(await status(`${base}/v2/age/late/manifests/${b2.digest}`), 200);
    assert.equal(await status(`${base}/v2/age/late/manifests/${b.digest}`), 404, 'the manifest it left goes (untagged by the move, as planned)');
    assert.equal(result.removedTags, 1, 'a (its manifest is kept by the index); b was pushed again: skipped');
    assert.equal(result.removedManifests, 1);
  });
});

describe('retention on PostgreSQL metadata: the CLI beside running replicas, one replica runs the job', { skip: postgresMissing() ?? false, timeout: 180_000 }, () => {
  let pg: TestPostgres;
  let work: string;
  let url: string;
  let a: TestRegistry;
  let b: TestRegistry;
  const logs: Array<Array<Record<string, unknown>>> = [[], []];
  const tags: Array<{ tag: string; digest: string; layer: string }> = [];

  before(async () => {
    pg = await startPostgres();
    url = await pg.createDatabase('retention');
    work = await mkdtemp(join(tmpdir(), 'berth-retention-pg-'));
    const retention = [{ repositories: 'pg/*', keepNewest: 5, keepTags: ['keep-.*'] }];
    const sink = (i: number) =>
      new Writable({
        write(chunk: Buffer, _enc, done) {
          for (const l of chunk.toString().split('\n')) if (l.trim()) logs[i]!.push(JSON.parse(l) as Record<string, unknown>);
          done();
        },
      });
    const config = { data: join(work, 'data'), metadata: url, gc: { intervalHours: 0, graceMinutes: 0 }, retention };
    a = await startTestRegistry(config, { logger: pino({ level: 'info' }, sink(0)) });
    b = await startTestRegistry(config, { logger: pino({ level: 'info' }, sink(1)) });
    for (let i = 0; i < 40; i++) {
      const tag = i % 10 === 3 ? `keep-${i}` : `t${String(i).padStart(2, '0')}`;
      const m = await pushImage(i % 2 ? a.url : b.url, 'pg/app', tag);
      tags.push({ tag, digest: m.digest, layer: m.layer });
      await nextMillisecond();
    }
    await writeFile(join(work, 'berth.yaml'), `retention:\n  - repositories: "pg/*"\n    keepNewest: 5\n    keepTags: ["keep-.*"]\n`);
  });

  after(async () => {
    await a?.close();
    await b?.close();
    await pg?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('the dry run reads the shared metadata while the replicas serve; the job removes exactly that, once', async () => {
    const dry = removals((await berth(['serve', 'retention', '--dry-run', '--format', 'json', '--data', join(work, 'data'), '--metadata', url, '--config', join(work, 'berth.yaml')])).stdout);
    const kept = new Set([...tags.slice(-5).map((t) => t.tag), ...tags.filter((t) => t.tag.startsWith('keep-')).map((t) => t.tag)]);
    assert.equal(kept.size, 9);
    assert.deepEqual(new Set(dry.items.filter((r) => r.what === 'tag').map((r) => r.tag)), new Set(tags.filter((t) => !kept.has(t.tag)).map((t) => t.tag)));
    // Both replicas are asked at once: one runs retention and GC, the other skips (the job's lock).
    a.collectGarbage();
    b.collectGarbage();
    const deadline = Date.now() + 30_000;
    const done = () => logs.flat().some((l) => l.msg === 'garbage collection done');
    while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    const removedTags = logs.flat().filter((l) => l.msg === 'retention removed tag').map((l) => `tag ${l.repository}:${l.tag} ${l.digest}`);
    const removedManifests = logs.flat().filter((l) => l.msg === 'retention removed manifest').map((l) => `manifest ${l.repository}@${l.digest}`);
    assert.deepEqual([...removedTags, ...removedManifests].sort(), dry.items.map(key).sort());
    assert.equal(logs.filter((l) => l.some((x) => x.msg === 'retention done')).length, 1, 'one replica ran the job');
    const listed = (await (await fetch(`${a.url}/v2/pg/app/tags/list`)).json()) as { tags: string[] };
    assert.deepEqual(listed.tags.sort(), [...kept].sort());
    for (const t of tags) {
      const want = kept.has(t.tag) ? 200 : 404;
      assert.equal(await status(`${b.url}/v2/pg/app/manifests/${t.digest}`), want, t.tag);
      assert.equal(await status(`${a.url}/v2/pg/app/blobs/${t.layer}`), want, `${t.tag} layer`);
    }
  });
});

describe('retention against concurrent pushes: nothing a tag or an index needs is ever removed', { timeout: 180_000 }, () => {
  let reg: TestRegistry;

  before(async () => {
    reg = await startTestRegistry({ gc: { intervalHours: 0, graceMinutes: 0 } });
  });

  after(async () => {
    await reg.destroy();
  });

  it('re-pushed tags, new tags and new indexes naming old manifests, while the rules run: every tag and index left pulls whole', async () => {
    const base = reg.url;
    const old: Array<Awaited<ReturnType<typeof pushImage>> & { tag: string }> = [];
    for (let i = 0; i < 150; i++) old.push({ ...(await pushImage(base, 'race/app', `o${i}`)), tag: `o${i}` });
    const policy = new RetentionPolicy([{ repositories: 'race/*', keepNewest: 3, untaggedOlderThanMs: 0 }]);
    const indexes: Array<{ tag: string; digest: string; children: string[] }> = [];
    const failedIndexes: string[] = [];
    let running = true;
    const pushing = (async () => {
      let n = 0;
      while (running) {
        n++;
        const pick = old[(n * 37) % old.length]!;
        // Re-push an old tag (its manifest again), push a new one, and an index naming two old manifests.
        const body = JSON.parse(Buffer.from(await (await fetch(`${base}/v2/race/app/manifests/${pick.digest}`, { headers: { Accept: OCI_MANIFEST } })).arrayBuffer()).toString() || 'null') as object | null;
        if (body) await fetch(`${base}/v2/race/app/manifests/${pick.tag}`, { method: 'PUT', body: JSON.stringify(body), headers: { 'Content-Type': OCI_MANIFEST } }).then((r) => r.arrayBuffer());
        const fresh = await pushImage(base, 'race/app', `n${n}`);
        // One child just pushed (its tag soon out of the newest 3), one old one (maybe removed already).
        const kids = [fresh, old[(n * 13 + 5) % old.length]!];
        const body2 = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: kids.map((k) => ({ mediaType: OCI_MANIFEST, digest: k.digest, size: k.size, platform: { architecture: 'amd64', os: 'linux' } })) });
        const res = await fetch(`${base}/v2/race/app/manifests/i${n}`, { method: 'PUT', body: body2, headers: { 'Content-Type': OCI_INDEX } });
        const answer = await res.text();
        // Refused only because a child was removed first (MANIFEST_BLOB_UNKNOWN): consistent either way.
        if (res.status === 201) indexes.push({ tag: `i${n}`, digest: sha(Buffer.from(body2)), children: kids.map((k) => k.digest) });
        else {
          assert.equal(res.status, 400, answer);
          assert.match(answer, /MANIFEST_BLOB_UNKNOWN/);
          failedIndexes.push(`i${n}`);
        }
      }
    })();
    let runs = 0;
    let removed = 0;
    let skipped = 0;
    for (let i = 0; i < 6; i++) {
      const r = await applyRetention(reg.store, policy, {});
      runs++;
      removed += r.removedManifests;
      skipped += r.skipped;
      await new Promise((res) => setTimeout(res, 20));
    }
    running = false;
    await pushing;
    assert.ok(removed > 100, `retention removed ${removed} manifests in ${runs} runs`);
    // Every tag left pulls whole: its manifest, and everything the manifest (or index) references.
    const tags = ((await (await fetch(`${base}/v2/race/app/tags/list?n=10000`)).json()) as { tags: string[] }).tags;
    for (const tag of tags) {
      const res = await fetch(`${base}/v2/race/app/manifests/${tag}`, { headers: { Accept: `${OCI_MANIFEST}, ${OCI_INDEX}` } });
      assert.equal(res.status, 200, tag);
      const doc = (await res.json()) as { config?: { digest: string }; layers?: Array<{ digest: string }>; manifests?: Array<{ digest: string }> };
      for (const d of [doc.config?.digest, ...(doc.layers ?? []).map((l) => l.digest)].filter((d): d is string => !!d)) assert.equal(await status(`${base}/v2/race/app/blobs/${d}`, 'HEAD'), 200, `${tag}: blob ${d}`);
      for (const m of doc.manifests ?? []) assert.equal(await status(`${base}/v2/race/app/manifests/${m.digest}`, 'HEAD'), 200, `${tag}: child ${m.digest}`);
    }
    // Every index that was accepted and is still there has its children.
    for (const idx of indexes) {
      if ((await status(`${base}/v2/race/app/manifests/${idx.digest}`, 'HEAD')) !== 200) continue;
      for (const c of idx.children) assert.equal(await status(`${base}/v2/race/app/manifests/${c}`, 'HEAD'), 200, `${idx.tag}: child ${c}`);
    }
    process.stdout.write(`# retention vs concurrent pushes: ${runs} runs removed ${removed} manifests, ${skipped} removals skipped as changed meanwhile; ${indexes.length} indexes accepted, ${failedIndexes.length} refused (a child removed first)\n`);
  });
});
