// The reliability issue's load campaign: `berth serve` as a child process under 200 concurrent
// clients mixing pulls of 40 MiB blobs, pushes (monolithic and chunked, small and medium blobs,
// cross-repository mounts, manifests), deletes of manifests and tags, `_catalog` and `tags/list`
// paging, with a garbage collection (grace 0) asked for by SIGUSR2 every 30 s. Asserted:
//   - every answer is 2xx or a spec answer (MANIFEST_BLOB_UNKNOWN when GC took a blob before its
//     manifest came: the client pushes the blobs again), never a 5xx or a dropped connection;
//   - nothing lost: every manifest acknowledged and not deleted is pullable byte-identical, with
//     every blob it names; fsck of the data folder (server stopped) finds no problem;
//   - the server's peak RSS (VmRSS every 250 ms) ≤ 300 MB; its open file descriptors at the end
//     within a few of the start.
// The test process must not be the memory hog: pulled bodies are hashed as they stream, pushed
// bodies are generated a MiB at a time.
//
// Default 45 s of load (2 shared cores; every client also goes on for at least 20 s after its
// first pull, which 200 clients make at once); BERTH_LOAD_SECONDS=600 for the 10 minutes.
// BERTH_LOAD_CLIENTS (200), BERTH_LOAD_GC_SECONDS (30; a shorter run GCs every quarter of it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { Pool } from 'undici';
import { startBerthProcess } from '../conformance-tests/fixtures/berth-process.js';
import { RegistryStore } from '../storage/registry-store.js';
import { fsck } from '../storage/fsck.js';

const MiB = 1 << 20;
const SECONDS = Number(process.env.BERTH_LOAD_SECONDS ?? 45);
const CLIENTS = Number(process.env.BERTH_LOAD_CLIENTS ?? 200);
const GC_SECONDS = Number(process.env.BERTH_LOAD_GC_SECONDS ?? Math.min(30, Math.max(5, Math.round(SECONDS / 4))));
const RSS_LIMIT = 300e6;
const FD_MARGIN = 8;
const BIG_BLOBS = 4;
const BIG_SIZE = 40 * MiB;
const SHARED_LAYERS = 8;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';

// ---- content: blob `seed` is a random MiB repeated, each MiB stamped with (seed, index) ---------

const BASE = randomBytes(MiB);
/** Bytes [k MiB, k MiB + len) of blob `seed`, freshly allocated. */
function block(seed: number, k: number, len = MiB): Buffer {
  const b = Buffer.allocUnsafe(len);
  BASE.copy(b, 0, 0, len);
  const stamp = Buffer.alloc(16);
  stamp.writeUInt32BE(0xb10b, 0);
  stamp.writeUInt32BE(seed >>> 0, 4);
  stamp.writeUInt32BE(Math.floor(seed / 2 ** 32), 8);
  stamp.writeUInt32BE(k, 12);
  stamp.copy(b, 0, 0, Math.min(16, len));
  return b;
}
function* blocks(seed: number, size: number, from = 0, to = size): Generator<Buffer> {
  for (let k = Math.floor(from / MiB); k * MiB < to; k++) {
    const b = block(seed, k, Math.min(MiB, size - k * MiB));
    const s = Math.max(0, from - k * MiB);
    const e = Math.min(b.length, to - k * MiB);
    yield s === 0 && e === b.length ? b : b.subarray(s, e);
  }
}
interface Blob {
  seed: number;
  size: number;
  digest: string;
}
function blob(seed: number, size: number): Blob {
  const h = createHash('sha256');
  for (const b of blocks(seed, size)) h.update(b);
  return { seed, size, digest: `sha256:${h.digest('hex')}` };
}

// ---- figures ----------------------------------------------------------------------------------

const latencies = new Map<string, number[]>();
function timed(op: string, ms: number): void {
  let l = latencies.get(op);
  if (!l) latencies.set(op, (l = []));
  l.push(ms);
}
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const unexpected: string[] = [];
let unexpectedCount = 0;
function fail(what: string): void {
  unexpectedCount++;
  if (unexpected.length < 40) unexpected.push(what);
}
const counts = { pulledBytes: 0, bigPulls: 0, rangePulls: 0, pushes: 0, blobPushes: 0, mounts: 0, manifestBlobUnknown: 0, deletes: 0, tagDeletes: 0, catalogPages: 0, tagPages: 0, manifestGets: 0 };

// ---- HTTP -------------------------------------------------------------------------------------

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}
type Body = Buffer | string | Iterable<Buffer> | null;

async function call(pool: Pool, method: string, path: string, opts: { headers?: Record<string, string>; body?: Body } = {}): Promise<Answer> {
  const res = await pool.request({ method: method as 'GET', path, headers: opts.headers ?? {}, body: (opts.body ?? null) as Buffer | null });
  const parts: Buffer[] = [];
  for await (const c of res.body) parts.push(c as Buffer);
  return { status: res.statusCode, headers: res.headers, body: Buffer.concat(parts) };
}
const header = (a: Answer, name: string) => {
  const v = a.headers[name];
  return Array.isArray(v) ? v[0] : v;
};
const errorCode = (a: Answer) => {
  try {
    return (JSON.parse(a.body.toString()) as { errors?: Array<{ code?: string }> }).errors?.[0]?.code;
  } catch {
    return undefined;
  }
};
function locationPath(a: Answer, origin: string): string {
  const loc = header(a, 'location');
  if (!loc) throw new Error(`no Location (status ${a.status})`);
  const u = new URL(loc, origin);
  return u.pathname + u.search;
}
const withQuery = (path: string, q: string) => path + (path.includes('?') ? '&' : '?') + q;
const nextLink = (a: Answer) => /<([^>]+)>;\s*rel="next"/.exec(header(a, 'link') ?? '')?.[1];

/** A blob GET with Range through undici, compared with the generator's bytes as it streams. */
async function pullRange(pool: Pool, repo: string, b: Blob, range: { start: number; end: number }): Promise<void> {
  const res = await pool.request({ method: 'GET', path: `/v2/${repo}/blobs/${b.digest}`, headers: { range: `bytes=${range.start}-${range.end}` } });
  const expected = blocks(b.seed, b.size, range.start, range.end + 1);
  let exp: Buffer = Buffer.alloc(0);
  let n = 0;
  let mismatch = false;
  await new Promise<void>((resolve, reject) => {
    res.body.on('data', (c: Buffer) => {
      n += c.length;
      counts.pulledBytes += c.length;
      for (let off = 0; off < c.length && !mismatch; ) {
        if (exp.length === 0) exp = expected.next().value ?? Buffer.alloc(0);
        if (exp.length === 0) return void (mismatch = true); // more bytes than the range
        const len = Math.min(exp.length, c.length - off);
        if (!c.subarray(off, off + len).equals(exp.subarray(0, len))) mismatch = true;
        exp = exp.subarray(len);
        off += len;
      }
    });
    res.body.once('end', resolve);
    res.body.once('error', reject);
  });
  if (res.statusCode !== 206) throw new Error(`GET blob range: ${res.statusCode}`);
  if (mismatch || n !== range.end - range.start + 1) throw new Error(`range ${range.start}-${range.end}: ${n} bytes, mismatch ${mismatch}`);
}

/**
 * A whole 40 MiB blob over its own connection, read by the socket into one reused 64 KiB buffer
 * (net's `onread`) and hashed there: the load generator must cost less than what it loads (an
 * HTTP client library copies and allocates per chunk, bench/registry-operations.ts measured 4-6
 * CPU-s per GiB), or 200 clients measure the test process. Any answer but 200 with a
 * Content-Length, or a connection that ends before the last byte, is an error.
 */
function pullWhole(origin: string, repo: string, b: Blob): Promise<void> {
  const { hostname, port } = new URL(origin);
  return new Promise<void>((resolve, reject) => {
    const h = createHash('sha256');
    let head = '';
    let body = -1; // -1 while the head is arriving
    let expected = -1;
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    const socket = connect({
      host: hostname,
      port: Number(port),
      onread: {
        buffer: Buffer.allocUnsafe(64 << 10),
        callback: (n: number, buf: Uint8Array) => {
          let chunk = buf.subarray(0, n);
          if (body < 0) {
            const before = head.length;
            head += Buffer.from(chunk.buffer, chunk.byteOffset, n).toString('latin1');
            const end = head.indexOf('\r\n\r\n');
            if (end < 0) return true;
            const status = /^HTTP\/1\.1 (\d{3})/.exec(head)?.[1];
            const length = /\r\ncontent-length: *(\d+)/i.exec(head.slice(0, end))?.[1];
            if (status !== '200' || length === undefined) {
              finish(new Error(`GET blob: ${head.slice(0, Math.min(end, 300))}`));
              return false;
            }
            expected = Number(length);
            body = 0;
            chunk = chunk.subarray(end + 4 - before);
          }
          h.update(chunk);
          body += chunk.length;
          counts.pulledBytes += chunk.length;
          if (body >= expected) {
            const d = `sha256:${h.digest('hex')}`;
            finish(body === b.size && d === b.digest ? undefined : new Error(`pull of ${b.digest}: ${body} bytes, digest ${d}`));
          }
          return true;
        },
      },
    });
    socket.setTimeout(120_000, () => finish(new Error(`pull of ${b.digest}: no byte for 120 s (${body} received)`)));
    socket.on('error', (e) => finish(e));
    socket.on('close', () => finish(new Error(`pull of ${b.digest}: connection closed after ${body} body bytes`)));
    socket.write(`GET /v2/${repo}/blobs/${b.digest} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: close\r\n\r\n`);
  });
}

// ---- the clients --------------------------------------------------------------------------------

interface Image {
  repo: string;
  tag: string | undefined;
  digest: string;
  bytes: Buffer;
  blobs: Blob[];
}

let seedCounter = 1000;
const rand = (n: number) => Math.floor(Math.random() * n);

async function pushBlob(pool: Pool, origin: string, repo: string, b: Blob, how: 'post' | 'put' | 'chunked'): Promise<void> {
  counts.blobPushes++;
  if (how === 'post') {
    const a = await call(pool, 'POST', `/v2/${repo}/blobs/uploads/?digest=${b.digest}`, { headers: { 'content-type': 'application/octet-stream' }, body: Buffer.concat([...blocks(b.seed, b.size)]) });
    if (a.status !== 201) throw new Error(`POST blob: ${a.status} ${a.body.toString().slice(0, 200)}`);
    return;
  }
  const started = await call(pool, 'POST', `/v2/${repo}/blobs/uploads/`);
  if (started.status !== 202) throw new Error(`POST upload: ${started.status}`);
  let loc = locationPath(started, origin);
  if (how === 'chunked') {
    let off = 0;
    for (const chunk of blocks(b.seed, b.size)) {
      const a = await call(pool, 'PATCH', loc, { headers: { 'content-type': 'application/octet-stream', 'content-range': `${off}-${off + chunk.length - 1}`, 'content-length': String(chunk.length) }, body: chunk });
      if (a.status !== 202) throw new Error(`PATCH: ${a.status} ${a.body.toString().slice(0, 200)}`);
      loc = locationPath(a, origin);
      off += chunk.length;
    }
    const a = await call(pool, 'PUT', withQuery(loc, `digest=${b.digest}`));
    if (a.status !== 201) throw new Error(`PUT (chunked): ${a.status} ${a.body.toString().slice(0, 200)}`);
    return;
  }
  const a = await call(pool, 'PUT', withQuery(loc, `digest=${b.digest}`), { headers: { 'content-type': 'application/octet-stream', 'content-length': String(b.size) }, body: blocks(b.seed, b.size) });
  if (a.status !== 201) throw new Error(`PUT blob: ${a.status} ${a.body.toString().slice(0, 200)}`);
}

class Client {
  readonly repo: string;
  readonly images = new Map<string, Image>(); // by tag
  readonly untagged = new Map<string, Image>(); // by digest: tag deleted, manifest kept
  private tags = 0;
  constructor(
    readonly id: number,
    private readonly pool: Pool,
    private readonly origin: string,
    private readonly big: Blob[],
    private readonly shared: Blob[],
  ) {
    this.repo = `load/w${String(id).padStart(3, '0')}`;
  }

  async run(until: number, first: boolean): Promise<void> {
    // Everyone's first operation is a 40 MiB pull: the 200 concurrent pulls, at once.
    if (first) await this.op('pull', () => this.pullBig());
    // On a crowded machine that burst can outlast a short run: each client mixes for a while after it.
    const end = Math.max(until, Date.now() + Math.min(SECONDS, 20) * 1000);
    while (Date.now() < end) {
      const r = Math.random();
      if (r < 0.3) await this.op('pull', () => this.pullBig());
      else if (r < 0.35) await this.op('range pull', () => this.pullRange());
      else if (r < 0.62) await this.op('push image', () => this.pushImage());
      else if (r < 0.73) await this.op('manifest GET', () => this.getManifest());
      else if (r < 0.83) await this.op('delete', () => this.delete());
      else if (r < 0.91) await this.op('catalog', () => this.catalog());
      else await this.op('tags/list', () => this.tagList());
    }
  }

  private async op(name: string, body: () => Promise<unknown>): Promise<void> {
    const t0 = performance.now();
    try {
      if ((await body()) !== false) timed(name, performance.now() - t0);
    } catch (e) {
      fail(`${this.repo} ${name}: ${(e as Error).message}`);
    }
  }

  private async pullBig(): Promise<void> {
    await pullWhole(this.origin, 'load/big', this.big[rand(this.big.length)]!);
    counts.bigPulls++;
  }

  private async pullRange(): Promise<void> {
    const b = this.big[rand(this.big.length)]!;
    const start = rand(b.size - 2 * MiB);
    await pullRange(this.pool, 'load/big', b, { start, end: start + rand(2 * MiB) });
    counts.rangePulls++;
  }

  private async pushImage(): Promise<void> {
    const layers: Blob[] = [this.shared[rand(this.shared.length)]!, blob(seedCounter++, 1 + rand(32 * 1024))];
    if (Math.random() < 0.5) layers.push(blob(seedCounter++, MiB + rand(3 * MiB)));
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, client: this.id, n: seedCounter++ }));
    const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
    const pushAll = async () => {
      // The shared layer: mounted from another client's repository (it may not hold it: then 202
      // and an upload), the others pushed in one of the three ways.
      const s = layers[0]!;
      const from = `load/w${String(rand(CLIENTS)).padStart(3, '0')}`;
      const m = await call(this.pool, 'POST', `/v2/${this.repo}/blobs/uploads/?mount=${s.digest}&from=${from}`);
      if (m.status === 201) counts.mounts++;
      else if (m.status === 202) {
        const a = await call(this.pool, 'PUT', withQuery(locationPath(m, this.origin), `digest=${s.digest}`), { headers: { 'content-type': 'application/octet-stream' }, body: Buffer.concat([...blocks(s.seed, s.size)]) });
        if (a.status !== 201) throw new Error(`PUT after mount: ${a.status}`);
      } else throw new Error(`mount: ${m.status}`);
      for (const l of layers.slice(1)) await pushBlob(this.pool, this.origin, this.repo, l, l.size > MiB ? (Math.random() < 0.5 ? 'chunked' : 'put') : 'post');
      const c = await call(this.pool, 'POST', `/v2/${this.repo}/blobs/uploads/?digest=${configDigest}`, { headers: { 'content-type': 'application/octet-stream' }, body: config });
      if (c.status !== 201) throw new Error(`POST config: ${c.status}`);
    };
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: OCI_CONFIG, digest: configDigest, size: config.length },
        layers: layers.map((l) => ({ mediaType: OCI_LAYER, digest: l.digest, size: l.size })),
      }),
    );
    const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
    const tag = `t${this.tags++}`;
    await pushAll();
    for (let attempt = 1; ; attempt++) {
      const a = await call(this.pool, 'PUT', `/v2/${this.repo}/manifests/${tag}`, { headers: { 'content-type': OCI_MANIFEST }, body: manifest });
      if (a.status === 201) {
        if (header(a, 'docker-content-digest') !== digest) throw new Error(`manifest PUT: digest ${header(a, 'docker-content-digest')}, expected ${digest}`);
        break;
      }
      // GC (grace 0) took an unreferenced blob between its upload and this manifest: the spec
      // answer, and the client pushes again.
      if (a.status === 400 && errorCode(a) === 'MANIFEST_BLOB_UNKNOWN' && attempt < 5) {
        counts.manifestBlobUnknown++;
        await pushAll();
        continue;
      }
      throw new Error(`manifest PUT: ${a.status} ${a.body.toString().slice(0, 200)}`);
    }
    this.images.set(tag, { repo: this.repo, tag, digest, bytes: manifest, blobs: [...layers, { seed: -1, size: config.length, digest: configDigest }] });
    counts.pushes++;
  }

  private pick(): Image | undefined {
    const tags = [...this.images.keys()];
    return tags.length ? this.images.get(tags[rand(tags.length)]!) : undefined;
  }

  private async getManifest(): Promise<boolean> {
    const img = this.pick();
    if (!img) return false;
    const a = await call(this.pool, 'GET', `/v2/${this.repo}/manifests/${Math.random() < 0.5 ? img.tag : img.digest}`, { headers: { accept: OCI_MANIFEST } });
    if (a.status !== 200 || !a.body.equals(img.bytes)) throw new Error(`manifest GET: ${a.status}, ${a.body.length} bytes`);
    counts.manifestGets++;
    return true;
  }

  private async delete(): Promise<boolean> {
    const img = this.pick();
    if (!img) return false;
    this.images.delete(img.tag!);
    if (Math.random() < 0.5) {
      const a = await call(this.pool, 'DELETE', `/v2/${this.repo}/manifests/${img.digest}`);
      if (a.status !== 202) throw new Error(`DELETE manifest: ${a.status} ${a.body.toString().slice(0, 200)}`);
      counts.deletes++;
    } else {
      const a = await call(this.pool, 'DELETE', `/v2/${this.repo}/manifests/${img.tag}`);
      if (a.status !== 202) throw new Error(`DELETE tag: ${a.status} ${a.body.toString().slice(0, 200)}`);
      this.untagged.set(img.digest, { ...img, tag: undefined });
      counts.tagDeletes++;
    }
    return true;
  }

  private async catalog(): Promise<void> {
    // Up to 30 pages of n=10 from a random client's name on, following Link; names strictly ascending.
    let path: string | undefined = `/v2/_catalog?n=10&last=load/w${String(rand(CLIENTS)).padStart(3, '0')}`;
    let prev = '';
    for (let pages = 0; path && pages < 30; pages++) {
      const a = await call(this.pool, 'GET', path);
      if (a.status !== 200) throw new Error(`_catalog: ${a.status}`);
      const names = (JSON.parse(a.body.toString()) as { repositories: string[] }).repositories;
      for (const n of names) {
        if (n <= prev) throw new Error(`_catalog: ${n} after ${prev}`);
        prev = n;
      }
      counts.catalogPages++;
      path = nextLink(a);
    }
  }

  private async tagList(): Promise<void> {
    let path: string | undefined = `/v2/${this.repo}/tags/list?n=5`;
    const seen: string[] = [];
    for (let pages = 0; path && pages < 200; pages++) {
      const a = await call(this.pool, 'GET', path);
      if (a.status === 404 && errorCode(a) === 'NAME_UNKNOWN' && seen.length === 0 && this.images.size === 0) return; // nothing pushed yet
      if (a.status !== 200) throw new Error(`tags/list: ${a.status} ${a.body.toString().slice(0, 200)}`);
      const tags = (JSON.parse(a.body.toString()) as { tags: string[] | null }).tags ?? [];
      seen.push(...tags);
      counts.tagPages++;
      path = nextLink(a);
    }
    // This client is the only writer of its repository and is here: the listing is exact.
    const want = [...this.images.keys()].sort();
    if (JSON.stringify(seen) !== JSON.stringify(want)) throw new Error(`tags/list: ${seen.length} tags listed, ${want.length} expected`);
  }
}

// ---- the server's resources -------------------------------------------------------------------

async function rssOf(pid: number): Promise<number> {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
}
async function fdsOf(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

test(`load: ${CLIENTS} clients for ${SECONDS} s, GC every ${GC_SECONDS} s`, { timeout: (SECONDS + 600) * 1000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-load-'));
  const data = join(dir, 'data');
  const log = { serverErrors: [] as string[], status5xx: 0, gcRuns: 0, gcRemoved: 0 };
  const p = await startBerthProcess(data, ['--gc-grace-minutes', '0'], {
    logFilter: (line) => {
      if (line.msg === 'request') {
        if (Number(line.status) >= 500) log.status5xx++;
        return false;
      }
      if (Number(line.level) >= 50 && log.serverErrors.length < 20) log.serverErrors.push(JSON.stringify(line).slice(0, 500));
      if (line.msg === 'garbage collection done') {
        log.gcRuns++;
        log.gcRemoved += Number(line.removed ?? 0);
        return false;
      }
      return true;
    },
  });
  const pid = p.child.pid!;
  const pools: Pool[] = [];
  try {
    // Seed: the 40 MiB blobs and an image naming them (so GC keeps them), the shared layers.
    const seedPool = new Pool(p.url, { connections: 4 });
    const big = Array.from({ length: BIG_BLOBS }, (_, i) => blob(i + 1, BIG_SIZE));
    const shared = Array.from({ length: SHARED_LAYERS }, (_, i) => blob(100 + i, 4096 + i));
    for (const b of big) await pushBlob(seedPool, p.url, 'load/big', b, 'put');
    for (const s of shared) await pushBlob(seedPool, p.url, 'load/base', s, 'post');
    const cfg = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
    const cfgDigest = `sha256:${createHash('sha256').update(cfg).digest('hex')}`;
    assert.equal((await call(seedPool, 'POST', `/v2/load/big/blobs/uploads/?digest=${cfgDigest}`, { body: cfg })).status, 201);
    assert.equal((await call(seedPool, 'POST', `/v2/load/base/blobs/uploads/?digest=${cfgDigest}`, { body: cfg })).status, 201);
    const manifestOf = (layers: Blob[]) => JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: cfgDigest, size: cfg.length }, layers: layers.map((l) => ({ mediaType: OCI_LAYER, digest: l.digest, size: l.size })) });
    assert.equal((await call(seedPool, 'PUT', '/v2/load/big/manifests/latest', { headers: { 'content-type': OCI_MANIFEST }, body: manifestOf(big) })).status, 201);
    assert.equal((await call(seedPool, 'PUT', '/v2/load/base/manifests/latest', { headers: { 'content-type': OCI_MANIFEST }, body: manifestOf(shared) })).status, 201);
    await seedPool.close();
    await new Promise((r) => setTimeout(r, 300));

    const rss0 = await rssOf(pid);
    const fds0 = await fdsOf(pid);
    const samples: Array<{ t: number; rss: number; fds: number }> = [];
    let clientPeak = 0;
    const t0 = Date.now();
    const sampler = setInterval(() => {
      clientPeak = Math.max(clientPeak, process.memoryUsage().rss);
      Promise.all([rssOf(pid), fdsOf(pid)]).then(
        ([rss, fds]) => samples.push({ t: Date.now() - t0, rss, fds }),
        () => undefined,
      );
    }, 250);
    const gcTimer = setInterval(() => p.child.kill('SIGUSR2'), GC_SECONDS * 1000);

    const pool = new Pool(p.url, { connections: CLIENTS + 8, headersTimeout: 120_000, bodyTimeout: 120_000 });
    pools.push(pool);
    const clients = Array.from({ length: CLIENTS }, (_, i) => new Client(i, pool, p.url, big, shared));
    const until = t0 + SECONDS * 1000;
    await Promise.all(clients.map((c) => c.run(until, true)));
    const elapsed = (Date.now() - t0) / 1000;
    clearInterval(gcTimer);
    clearInterval(sampler);
    await pool.close();

    // File descriptors: back to the start once the clients' connections are closed.
    let fdsEnd = await fdsOf(pid);
    for (let i = 0; i < 50 && fdsEnd > fds0 + FD_MARGIN; i++) {
      await new Promise((r) => setTimeout(r, 200));
      fdsEnd = await fdsOf(pid);
    }

    // Nothing lost: every acknowledged manifest not deleted, by tag (and by digest for untagged
    // ones), byte-identical, and every blob it names.
    const check = new Pool(p.url, { connections: 8 });
    pools.push(check);
    const images = clients.flatMap((c) => [...c.images.values(), ...c.untagged.values()]);
    const blobsChecked = new Set<string>();
    let lost = 0;
    for (let i = 0; i < images.length; i += 8) {
      await Promise.all(
        images.slice(i, i + 8).map(async (img) => {
          const m = await call(check, 'GET', `/v2/${img.repo}/manifests/${img.tag ?? img.digest}`, { headers: { accept: OCI_MANIFEST } });
          if (m.status !== 200 || !m.body.equals(img.bytes)) {
            lost++;
            return fail(`lost: ${img.repo}:${img.tag ?? img.digest}: ${m.status}`);
          }
          for (const b of img.blobs) {
            const key = `${img.repo}@${b.digest}`;
            if (blobsChecked.has(key)) continue;
            blobsChecked.add(key);
            const g = await call(check, 'GET', `/v2/${img.repo}/blobs/${b.digest}`);
            const d = `sha256:${createHash('sha256').update(g.body).digest('hex')}`;
            if (g.status !== 200 || d !== b.digest) {
              lost++;
              fail(`lost blob ${b.digest} of ${img.repo}:${img.tag ?? img.digest}: ${g.status}`);
            }
          }
        }),
      );
    }
    await check.close();

    p.child.kill('SIGTERM');
    const code = await p.exited;
    const store = new RegistryStore(data);
    await store.open();
    const report = await fsck(store).finally(() => store.close());

    const peak = Math.max(...samples.map((s) => s.rss));
    const fdsPeak = Math.max(...samples.map((s) => s.fds));
    const lines = [
      `load: ${CLIENTS} clients, ${elapsed.toFixed(0)} s, GC every ${GC_SECONDS} s (${log.gcRuns} runs, ${log.gcRemoved} blobs removed)`,
      `server RSS: ${(rss0 / 1e6).toFixed(0)} MB at start, peak ${(peak / 1e6).toFixed(0)} MB (limit ${RSS_LIMIT / 1e6}), end ${((samples.at(-1)?.rss ?? 0) / 1e6).toFixed(0)} MB; test process peak RSS ${(clientPeak / 1e6).toFixed(0)} MB`,
      `server RSS MB by tenth of the run (peak in each): ${Array.from({ length: 10 }, (_, i) => {
        const span = samples.filter((x) => x.t >= (i * elapsed * 1000) / 10 && x.t < ((i + 1) * elapsed * 1000) / 10);
        return span.length ? (Math.max(...span.map((x) => x.rss)) / 1e6).toFixed(0) : '-';
      }).join(' ')}`,
      `server fds: ${fds0} at start, peak ${fdsPeak} under load, ${fdsEnd} after the clients closed`,
      `pulled ${(counts.pulledBytes / 1e9).toFixed(1)} GB (${(counts.pulledBytes / 1e6 / elapsed).toFixed(0)} MB/s): ${counts.bigPulls} 40 MiB pulls, ${counts.rangePulls} range pulls; ${counts.pushes} images pushed (${counts.blobPushes} blob uploads, ${counts.mounts} mounts, ${counts.manifestBlobUnknown} MANIFEST_BLOB_UNKNOWN re-pushes); ${counts.deletes} manifest + ${counts.tagDeletes} tag deletes; ${counts.manifestGets} manifest GETs; ${counts.catalogPages} _catalog + ${counts.tagPages} tags/list pages`,
      `verified at the end: ${images.length} manifests, ${blobsChecked.size} blob links; fsck: ${report.manifests} manifests, ${report.blobsChecked} blobs checked, ${report.orphans.count} orphans, ${report.problems.length} problems`,
      `unexpected answers: ${unexpectedCount}; server 5xx: ${log.status5xx}; server error lines: ${log.serverErrors.length}`,
      'latency ms (p50 / p99 / max, count):',
      ...[...latencies].map(([op, xs]) => `  ${op.padEnd(13)} ${pct(xs, 50).toFixed(1)} / ${pct(xs, 99).toFixed(1)} / ${Math.max(...xs).toFixed(0)}  (${xs.length}, ${(xs.length / elapsed).toFixed(1)}/s)`),
    ];
    process.stdout.write(lines.map((l) => `# ${l}`).join('\n') + '\n');

    assert.deepEqual(unexpected, [], `${unexpectedCount} unexpected answers`);
    assert.equal(log.status5xx, 0, 'server answered 5xx');
    assert.deepEqual(log.serverErrors, []);
    assert.equal(lost, 0);
    assert.equal(code, 0, 'berth serve exits 0 on SIGTERM');
    assert.deepEqual(report.problems, []);
    assert.ok(log.gcRuns >= 1, 'at least one GC ran');
    assert.ok(counts.bigPulls >= CLIENTS, 'every client pulled');
    assert.ok(peak <= RSS_LIMIT, `server peak RSS ${(peak / 1e6).toFixed(0)} MB > ${RSS_LIMIT / 1e6} MB`);
    assert.ok(fdsEnd <= fds0 + FD_MARGIN, `server fds ${fds0} at start, ${fdsEnd} at the end`);
  } finally {
    await Promise.all(pools.map((x) => x.destroy().catch(() => undefined)));
    if (p.child.exitCode === null) {
      p.child.kill('SIGKILL');
      await p.exited;
    }
    await rm(dir, { recursive: true, force: true });
  }
});
