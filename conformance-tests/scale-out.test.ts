// Many replicas that act as one registry: two `berth serve` processes on one S3 bucket (Ceph's
// radosgw) and one PostgreSQL database, behind haproxy sending each request to the next replica.
// The conformance suite through the balancer; skopeo and docker across replicas; an upload moving
// between replicas, also after kill -9; a tag deleted on one gone on the other; GC on one replica
// while the other takes pushes; S3 stopped in the middle of a push.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { defineConformanceSuite } from './suite.js';
import { RegistryHttp } from './fixtures/http-client.js';
import { openRequest } from './fixtures/raw-http.js';
import { spawnSync } from 'node:child_process';
import { BERTH_BIN } from './fixtures/berth-process.js';
import { clusterMissing, startCluster, stopReplica, type Cluster } from './fixtures/cluster.js';
import { buildBusyboxImage, imageToolsMissing, readLayoutImage, skopeoCopy, writePermissiveSkopeoPolicy, SKOPEO, type BuiltImage } from './fixtures/oci-image.js';
import { dockerMissing, startDockerd } from './fixtures/peer-daemon.js';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startTestRegistry, type TestRegistry } from '../server/testing.js';

const missing = clusterMissing();
const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const MiB = 1 << 20;

// One cluster for the conformance run, with redirects off (the suite checks the registry's own
// blob responses); the interop tests below start one with pre-signed redirects, the default.
defineConformanceSuite({
  name: 'two berth replicas on S3 + PostgreSQL behind haproxy',
  ...(missing ? { unavailable: missing } : {}),
  async start() {
    const cluster = await startCluster({ extraArgs: ['--no-s3-redirect'] });
    return { url: cluster.lb.url, stop: () => cluster.stop() };
  },
});

async function pushBlob(http: RegistryHttp, name: string, data: Buffer): Promise<string> {
  const post = await http.post(`/v2/${name}/blobs/uploads/`);
  assert.equal(post.status, 202, post.body.toString());
  const put = await http.put(post.headers.get('Location')!, { query: { digest: sha256(data) }, body: data });
  assert.equal(put.status, 201, put.body.toString());
  return sha256(data);
}

async function pushImage(http: RegistryHttp, name: string, tag: string, layer: Buffer): Promise<{ digest: string; layer: string; config: string }> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const [c, l] = [await pushBlob(http, name, config), await pushBlob(http, name, layer)];
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: c, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l, size: layer.length }],
    }),
  );
  const res = await http.put(`/v2/${name}/manifests/${tag}`, { headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest });
  assert.equal(res.status, 201, res.body.toString());
  return { digest: sha256(manifest), layer: l, config: c };
}

describe('scale-out: replicas on S3 + PostgreSQL', { skip: missing ?? false, timeout: 600_000 }, () => {
  let cluster: Cluster;
  let a: RegistryHttp;
  let b: RegistryHttp;
  let lb: RegistryHttp;
  let work: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-scale-'));
    // Zero grace: GC may take anything not referenced at once, so only the guard protocol
    // (storage/gc.ts) keeps concurrent pushes safe.
    cluster = await startCluster({ extraArgs: ['--gc-grace-minutes', '0'] });
    a = new RegistryHttp(cluster.replicas[0]!.url);
    b = new RegistryHttp(cluster.replicas[1]!.url);
    lb = new RegistryHttp(cluster.lb.url);
  });
  after(async () => {
    await cluster?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('blob GETs answer 307 to a pre-signed S3 URL by default, which serves the exact bytes and honours Range', async () => {
    const data = randomBytes(300_000);
    const digest = await pushBlob(a, 'redirect/app', data);
    const res = await fetch(b.url(`/v2/redirect/app/blobs/${digest}`), { redirect: 'manual' });
    assert.equal(res.status, 307);
    const location = res.headers.get('Location')!;
    assert.match(location, new RegExp(`^${cluster.ceph.endpoint}/${cluster.bucket}/blobs/sha256/`));
    assert.match(location, /X-Amz-Signature=/);
    assert.deepEqual(Buffer.from(await (await fetch(location)).arrayBuffer()), data);
    const part = await fetch(location, { headers: { Range: 'bytes=1000-1999' } });
    assert.equal(part.status, 206);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), data.subarray(1000, 2000));
  });

  it('skopeo pushes through replica A and pulls through B: identical digests', { skip: imageToolsMissing() ?? (existsSync(SKOPEO) ? false : `${SKOPEO} not installed`) }, async () => {
    const policy = await writePermissiveSkopeoPolicy(join(work, 'policy.json'));
    const image: BuiltImage = await buildBusyboxImage(join(work, 'img'), { tag: 'v1' });
    const hostA = new URL(a.baseUrl).host;
    const hostB = new URL(b.baseUrl).host;
    await skopeoCopy(`oci:${image.layoutDir}:v1`, `docker://${hostA}/team/busybox:v1`, { policy, extraArgs: ['--dest-tls-verify=false'] });
    const out = join(work, 'pulled');
    await skopeoCopy(`docker://${hostB}/team/busybox:v1`, `oci:${out}:v1`, { policy, extraArgs: ['--src-tls-verify=false'] });
    const pulled = await readLayoutImage(out, 'v1');
    assert.equal(pulled.manifestDigest, image.manifestDigest);
    assert.deepEqual(pulled.layerDigests, image.layerDigests);
    assert.equal(pulled.configDigest, image.configDigest);
  });

  it('a chunked upload begun on A is continued, queried and finished on B', async () => {
    const data = randomBytes(13 * MiB + 12345);
    const post = await a.post('/v2/chunks/app/blobs/uploads/');
    const first = data.subarray(0, 6 * MiB + 7);
    const p1 = await a.patch(post.headers.get('Location')!, { headers: { 'Content-Range': `0-${first.length - 1}` }, body: first });
    assert.equal(p1.status, 202, p1.body.toString());
    const status = await b.get(p1.headers.get('Location')!);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('Range'), `0-${first.length - 1}`);
    const second = data.subarray(first.length, first.length + 3);
    const p2 = await b.patch(p1.headers.get('Location')!, { headers: { 'Content-Range': `${first.length}-${first.length + 2}` }, body: second });
    assert.equal(p2.status, 202, p2.body.toString());
    const rest = data.subarray(first.length + 3);
    const put = await a.put(p2.headers.get('Location')!, { query: { digest: sha256(data) }, headers: { 'Content-Range': `${first.length + 3}-${data.length - 1}` }, body: rest });
    assert.equal(put.status, 201, put.body.toString());
    const got = await b.get(`/v2/chunks/app/blobs/${sha256(data)}`);
    assert.equal(got.status, 200);
    assert.equal(sha256(got.body), sha256(data));
  });

  it('a tag moved or deleted through B is seen through A at once', async () => {
    const one = await pushImage(a, 'tags/app', 'latest', Buffer.from('layer one'));
    assert.equal((await b.head('/v2/tags/app/manifests/latest')).headers.get('Docker-Content-Digest'), one.digest);
    const two = await pushImage(b, 'tags/app', 'latest', Buffer.from('layer two'));
    assert.equal((await a.head('/v2/tags/app/manifests/latest')).headers.get('Docker-Content-Digest'), two.digest);
    assert.equal((await b.delete('/v2/tags/app/manifests/latest')).status, 202);
    assert.equal((await a.head('/v2/tags/app/manifests/latest')).status, 404);
    assert.equal((await a.get('/v2/tags/app/manifests/' + one.digest)).status, 200);
  });

  it('online GC on one replica while the other takes pushes: no blob of any manifest lost', async () => {
    const gc = cluster.replicas[1]!;
    // SIGUSR2 asks a replica for one GC run now (berth serve's admin signal).
    const pushes = (async () => {
      const out: Array<{ name: string; digest: string; layer: string }> = [];
      for (let i = 0; i < 12; i++) {
        const r = await pushImage(a, `gc/app${i % 3}`, `v${i}`, randomBytes(200_000 + i));
        out.push({ name: `gc/app${i % 3}`, ...r });
        // Orphans for GC to find: a blob uploaded and never used, a manifest deleted.
        await pushBlob(a, `gc/app${i % 3}`, randomBytes(1000));
      }
      return out;
    })();
    let runs = 0;
    while (runs < 6) {
      gc.child.kill('SIGUSR2');
      await gc.waitForLog('garbage collection done');
      runs++;
      await sleep(50);
    }
    const pushed = await pushes;
    gc.child.kill('SIGUSR2');
    for (const p of pushed) {
      const m = await lb.get(`/v2/${p.name}/manifests/${p.digest}`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
      assert.equal(m.status, 200, `${p.name}@${p.digest}`);
      const layer = await lb.get(`/v2/${p.name}/blobs/${p.layer}`);
      assert.equal(layer.status, 200, `${p.name} layer ${p.layer}`);
      assert.equal(sha256(layer.body), p.layer);
    }
  });

  it('replica A killed with -9 mid-upload: B finishes the upload from the acknowledged offset', async () => {
    const data = randomBytes(12 * MiB);
    const post = await a.post('/v2/killed/app/blobs/uploads/');
    const location = post.headers.get('Location')!;
    const first = data.subarray(0, 5 * MiB);
    assert.equal((await a.patch(location, { headers: { 'Content-Range': `0-${first.length - 1}` }, body: first })).status, 202);
    // A second chunk is streaming into A when it dies.
    const { req, response } = openRequest(a.baseUrl, 'PATCH', location, { 'Content-Range': `${first.length}-${data.length - 1}`, 'Content-Length': String(data.length - first.length) });
    response.catch(() => undefined);
    req.write(data.subarray(first.length, first.length + 3 * MiB));
    await sleep(300);
    cluster.replicas[0]!.child.kill('SIGKILL');
    await cluster.replicas[0]!.exited;
    req.destroy();
    const status = await b.get(location);
    assert.equal(status.status, 204, status.body.toString());
    const offset = Number(status.headers.get('Range')!.split('-')[1]) + 1;
    assert.equal(offset, first.length, 'the cut-off chunk was never acknowledged');
    const put = await b.put(location, { query: { digest: sha256(data) }, headers: { 'Content-Range': `${offset}-${data.length - 1}` }, body: data.subarray(offset) });
    assert.equal(put.status, 201, put.body.toString());
    assert.equal(sha256((await b.get(`/v2/killed/app/blobs/${sha256(data)}`)).body), sha256(data));
    // A comes back on its old address, interchangeable again.
    await cluster.startReplica(0);
    assert.equal((await a.head(`/v2/killed/app/blobs/${sha256(data)}`)).status, 200);
  });

  it('S3 stopped during a push: a 5xx spec error, success on retry once it is back, no manifest pointing at a missing blob', async () => {
    const layer = randomBytes(2 * MiB);
    await cluster.ceph.stopRadosgw();
    let failed;
    try {
      const post = await lb.post('/v2/s3down/app/blobs/uploads/');
      failed = post.status === 202 ? await lb.put(post.headers.get('Location')!, { query: { digest: sha256(layer) }, body: layer }) : post;
    } finally {
      await cluster.ceph.startRadosgw();
    }
    assert.ok(failed.status >= 500 && failed.status < 600, `expected 5xx while S3 is down, got ${failed.status}`);
    assert.equal(failed.json<{ errors: Array<{ code: string }> }>().errors[0]?.code, 'UNAVAILABLE');
    // A manifest naming the blob that never got stored is refused, not stored dangling.
    const config = Buffer.from('{}');
    const cfg = await pushBlob(lb, 's3down/app', config);
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfg, size: 2 }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }] }));
    const refused = await lb.put('/v2/s3down/app/manifests/v1', { headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest });
    assert.equal(refused.status, 400);
    assert.equal(refused.json<{ errors: Array<{ code: string }> }>().errors[0]?.code, 'MANIFEST_BLOB_UNKNOWN');
    // The client's retry succeeds.
    await pushBlob(lb, 's3down/app', layer);
    assert.equal((await lb.put('/v2/s3down/app/manifests/v1', { headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest })).status, 201);
    assert.equal(sha256((await lb.get(`/v2/s3down/app/blobs/${sha256(layer)}`)).body), sha256(layer));
  });

  it('PostgreSQL restarted while idle: the next requests through the balancer succeed', async () => {
    await pushImage(lb, 'pg/app', 'v1', Buffer.from('before the restart'));
    await cluster.pg.restart();
    for (let i = 0; i < 4; i++) {
      const res = await lb.get('/v2/pg/app/manifests/v1', { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
      assert.equal(res.status, 200, res.body.toString());
    }
    await pushImage(lb, 'pg/app', 'v2', Buffer.from('after the restart'));
  });

  it('docker pushes and pulls through the balancer', { skip: dockerMissing() ?? imageToolsMissing() ?? false }, async () => {
    const policy = await writePermissiveSkopeoPolicy(join(work, 'policy-docker.json'));
    const image = await buildBusyboxImage(join(work, 'dimg'), { tag: 'v1', files: { '/etc/replica': 'pushed by docker\n' } });
    await skopeoCopy(`oci:${image.layoutDir}:v1`, `docker-archive:${join(work, 'd.tar')}:team/d:1`, { policy });
    const host = new URL(lb.baseUrl).host;
    const dockerd = await startDockerd({ insecureRegistries: [host] });
    try {
      await dockerd.docker('load', '-i', join(work, 'd.tar'));
      await dockerd.docker('tag', 'team/d:1', `${host}/team/d:1`);
      await dockerd.docker('push', `${host}/team/d:1`);
      await dockerd.docker('rmi', `${host}/team/d:1`, 'team/d:1');
      const pulled = await dockerd.docker('pull', `${host}/team/d:1`);
      assert.match(pulled.stdout, /Digest: sha256:[0-9a-f]{64}/);
      const inspect = await dockerd.docker('image', 'inspect', '-f', '{{json .RootFS.Layers}}', `${host}/team/d:1`);
      assert.equal((JSON.parse(inspect.stdout) as string[]).length, 2);
    } finally {
      await dockerd.stop();
    }
  });

  it('bad configuration stops berth serve at start with one line and exit code 1', async () => {
    const pgUrl = new URL(cluster.databaseUrl);
    const wrongPassword = `postgres://${pgUrl.username}:wrong@${pgUrl.host}${pgUrl.pathname}`;
    const s3 = (bucket: string) => ['--storage', 's3', '--s3-bucket', bucket, '--s3-endpoint', cluster.ceph.endpoint, '--s3-region', cluster.ceph.region];
    const cases: Array<{ args: string[]; env?: NodeJS.ProcessEnv; line: RegExp }> = [
      { args: [...s3('no-such-bucket'), '--metadata', cluster.databaseUrl], line: /^berth serve: S3 bucket no-such-bucket does not exist at http:\/\/127\.0\.0\.1:\d+/ },
      { args: [...s3(cluster.bucket), '--metadata', cluster.databaseUrl], env: { ...cluster.env, AWS_SECRET_ACCESS_KEY: 'wrong' }, line: /^berth serve: S3 refused the credentials/ },
      { args: ['--storage', 's3', '--s3-bucket', cluster.bucket, '--s3-endpoint', 'http://127.0.0.1:1'], line: /^berth serve: S3 endpoint http:\/\/127\.0\.0\.1:1 unreachable: ECONNREFUSED/ },
      { args: [...s3(cluster.bucket), '--metadata', wrongPassword], line: /^berth serve: PostgreSQL at postgres:\/\/berth@127\.0\.0\.1:\d+\/registry refused the credentials/ },
      { args: ['--metadata', 'postgres://berth@127.0.0.1:1/registry'], line: /^berth serve: PostgreSQL at postgres:\/\/berth@127\.0\.0\.1:1\/registry is unreachable: ECONNREFUSED/ },
      { args: ['--storage', 'ftp'], line: /^berth serve: flags: storage must be fs or s3, got "ftp"/ },
      { args: ['--storage', 's3'], line: /^berth serve: --storage s3 needs a bucket/ },
    ];
    for (const c of cases) {
      const dataDir = await mkdtemp(join(work, 'badcfg-'));
      const r = spawnSync(process.execPath, [BERTH_BIN, 'serve', '--listen', '127.0.0.1:0', '--data', dataDir, ...c.args], { env: c.env ?? cluster.env, encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 1, `${c.args.join(' ')}: ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one line, got: ${r.stderr}`);
      assert.match(lines[0]!, c.line);
      assert.ok(!r.stderr.includes('wrong') || !/AWS_SECRET|:wrong@/.test(r.stderr), 'no secret in the message');
      assert.ok(!/\n\s+at /.test(r.stderr), 'no stack trace');
    }
  });

  it('berth fsck over the S3 bucket and PostgreSQL finds everything above consistent', async () => {
    const r = spawnSync(process.execPath, [BERTH_BIN, 'fsck', ...cluster.storageArgs], { env: cluster.env, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /manifests/);
  });

  it('every replica stopped cleanly exits 0', async () => {
    for (const r of cluster.replicas) {
      await stopReplica(r);
      assert.equal(await r.exited, 0);
    }
  });
});

describe('scale-out: a pull-through mirror as replicas on S3 + PostgreSQL', { skip: missing ?? false, timeout: 300_000 }, () => {
  let upstream: TestRegistry;
  const upstreamBlobGets: string[] = [];
  let cluster: Cluster;

  before(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString().split('\n')) {
          if (!line) continue;
          const l = JSON.parse(line) as { msg?: string; method?: string; path?: string };
          if (l.msg === 'request' && l.method === 'GET' && l.path?.includes('/blobs/')) upstreamBlobGets.push(l.path);
        }
        cb();
      },
    });
    upstream = await startTestRegistry({}, { logger: pino({ level: 'info' }, sink) });
    cluster = await startCluster({ extraArgs: ['--proxy-remote-url', upstream.url, '--no-s3-redirect'] });
  });
  after(async () => {
    await cluster?.stop();
    await upstream?.destroy();
  });

  it('concurrent pulls of a missing blob through both replicas make one upstream download; every client gets the exact bytes', async () => {
    const layer = randomBytes(8 * MiB);
    const image = await pushImage(new RegistryHttp(upstream.url), 'library/app', 'v1', layer);
    const lb = new RegistryHttp(cluster.lb.url);
    const m = await lb.get('/v2/library/app/manifests/v1', { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(m.status, 200, m.body.toString());
    assert.equal(sha256(m.body), image.digest);
    upstreamBlobGets.length = 0;
    // Six clients, every request to the next replica: both replicas miss at once.
    const bodies = await Promise.all(Array.from({ length: 6 }, () => lb.get(`/v2/library/app/blobs/${image.layer}`)));
    for (const b of bodies) {
      assert.equal(b.status, 200, b.body.toString().slice(0, 300));
      assert.equal(sha256(b.body), image.layer);
    }
    assert.deepEqual(upstreamBlobGets, [`/v2/library/app/blobs/${image.layer}`], 'one upstream GET across both replicas');
    // Cached: served again without upstream, from either replica.
    for (const r of cluster.replicas) assert.equal(sha256((await new RegistryHttp(r.url).get(`/v2/library/app/blobs/${image.layer}`)).body), image.layer);
    assert.equal(upstreamBlobGets.length, 1);
  });
});
