// Berth on S3 + PostgreSQL against distribution 2.8.2 (Debian `docker-registry`, S3 driver,
// `redirect: disable`), side by side in one run on one throwaway Ceph (radosgw, memstore OSD), each
// registry on its own bucket, Berth's metadata in a throwaway PostgreSQL. docs/performance.md,
// section "Registry on S3 + PostgreSQL against distribution 2.8.2 (S3 driver)".
//
//   npm run build && node dist/bench/scale-out.js            # BENCH_ROUNDS (default 3) rounds
//   node dist/bench/scale-out.js --json out.json              # also write every figure as JSON
//
// Environment: BENCH_ROUNDS (3), BENCH_BLOB_MIB (128), BENCH_BIG_MIB (512, the memory phase's
// second push), BENCH_MANIFEST_SECONDS (5), BENCH_CONNECTIONS (16).
//
// Per round and registry, alternating (Berth, distribution, Berth, ...): monolithic push (POST,
// PUT ?digest= with the whole body), chunked push (POST, PATCHes of 16 MiB, PUT ?digest=), pull
// (GET, bytes counted over a raw socket into one reused buffer). Then manifest GET throughput,
// then the memory phase (peak RSS during one BLOB and one BIG monolithic push). The store's own
// single-stream PUT/GET (pre-signed URLs, the same client code) is measured in every round too, and
// the CPU seconds of each server, radosgw and ceph-osd per operation, so each figure can be
// attributed. Berth's default mode (blob GET answered with a 307 to a pre-signed URL) is measured
// by a second Berth process on the same bucket and database, after the rounds.
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { cpus, loadavg, totalmem } from 'node:os';
import { PutObjectCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { request } from 'undici';
import { startCeph, type TestCeph } from '../storage/testing/ceph.js';
import { startPostgres, type TestPostgres } from '../storage/testing/postgres.js';
import { S3BlobDriver } from '../storage/drivers/s3.js';
import { blobChunks, blobDigest } from './blob-source.js';
import { RssMonitor, startBerth, startReferenceS3, type ServerUnderTest } from './registry-servers.js';
import { RegistryClient, tinyImage } from './registry-operations.js';

// The SDK's notice about its future Node versions is not a figure (the driver sets the same).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const MiB = 1 << 20;
const env = (name: string, dflt: number) => Number(process.env[name] ?? dflt);
const cfg = {
  rounds: env('BENCH_ROUNDS', 3),
  blobBytes: env('BENCH_BLOB_MIB', 128) * MiB,
  bigBytes: env('BENCH_BIG_MIB', 512) * MiB,
  chunkBytes: 16 * MiB,
  manifestSeconds: env('BENCH_MANIFEST_SECONDS', 5),
  connections: env('BENCH_CONNECTIONS', 16),
  /** Part sizes tried on the Berth driver's direct put (the part size is a driver option, 8 MiB by default). */
  driverPartMiB: [8, 16, 32],
};
const argv = process.argv.slice(2);
const jsonOut = argv.includes('--json') ? argv[argv.indexOf('--json') + 1] : undefined;

const median = (xs: number[]) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (n: number) => (!Number.isFinite(n) ? '–' : n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const log = (s: string) => process.stderr.write(`${s}\n`);

// ---- CPU accounting ------------------------------------------------------------------------------

const CLOCK_TICKS = 100;
async function cpuOf(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/** The pid of the Ceph daemon `comm` of the cluster in `dir` (its command line names dir/ceph.conf). */
async function cephPid(dir: string, comm: string): Promise<number> {
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const [c, cmd] = await Promise.all([readFile(`/proc/${e}/comm`, 'utf8'), readFile(`/proc/${e}/cmdline`, 'utf8')]);
      if (c.trim() === comm && cmd.includes(`${dir}/ceph.conf`)) return Number(e);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no ${comm} process of the cluster in ${dir}`);
}

/** The postmaster of the cluster in `dir` (its command line names dir/data). */
async function postmasterPid(dir: string): Promise<number> {
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const [c, cmd] = await Promise.all([readFile(`/proc/${e}/comm`, 'utf8'), readFile(`/proc/${e}/cmdline`, 'utf8')]);
      if (c.trim() === 'postgres' && cmd.includes(dir)) return Number(e);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no postmaster of the cluster in ${dir}`);
}

/** CPU seconds of a process and its children: live ones, and (cutime + cstime) those already reaped. */
async function treeCpu(pid: number): Promise<number> {
  let sum = 0;
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = await readFile(`/proc/${e}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(e) === pid) sum += (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLOCK_TICKS;
      else if (Number(f[1]) === pid) sum += (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
    } catch {
      // gone meanwhile
    }
  }
  return sum;
}

interface CpuSplit {
  server: number;
  radosgw: number;
  osd: number;
  postgres: number;
  client: number;
}

class CpuMeter {
  constructor(private readonly pids: { radosgw: number; osd: number; postmaster: number }) {}
  async measure<T>(serverPid: number, fn: () => Promise<T>): Promise<{ value: T; cpu: CpuSplit }> {
    const sample = () => Promise.all([cpuOf(serverPid), cpuOf(this.pids.radosgw), cpuOf(this.pids.osd), treeCpu(this.pids.postmaster)]);
    const before = await sample();
    const c0 = process.cpuUsage();
    const value = await fn();
    const c1 = process.cpuUsage(c0);
    const after = await sample();
    return { value, cpu: { server: after[0]! - before[0]!, radosgw: after[1]! - before[1]!, osd: after[2]! - before[2]!, postgres: after[3]! - before[3]!, client: (c1.user + c1.system) / 1e6 } };
  }
}

// ---- raw HTTP GET (one reused buffer; follows nothing, reports a redirect) ------------------------

const readBuffer = Buffer.allocUnsafe(1 << 20);

/** GET `url`; on 200 counts the body (Content-Length framed), on 3xx returns the Location. */
function rawGet(url: string): Promise<{ status: number; location?: string; bytes: number }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    let head = '';
    let body = -1;
    let expected = -1;
    let status = 0;
    const socket = connect({
      host: u.hostname,
      port: Number(u.port || 80),
      onread: {
        buffer: readBuffer,
        callback: (n: number, buf: Uint8Array) => {
          if (body < 0) {
            head += Buffer.from(buf.buffer, buf.byteOffset, n).toString('latin1');
            const end = head.indexOf('\r\n\r\n');
            if (end < 0) return true;
            const h = head.slice(0, end);
            status = Number(/^HTTP\/1\.1 (\d{3})/.exec(h)?.[1] ?? 0);
            if (status >= 300 && status < 400) {
              socket.destroy();
              resolve({ status, location: /\r\nlocation: *([^\r]+)/i.exec(h)?.[1] ?? '', bytes: 0 });
              return false;
            }
            const length = /\r\ncontent-length: *(\d+)/i.exec(h)?.[1];
            if (status !== 200 || length === undefined) {
              socket.destroy();
              reject(new Error(`GET ${u.pathname}: ${h.slice(0, 300)}`));
              return false;
            }
            expected = Number(length);
            body = head.length - end - 4;
          } else {
            body += n;
          }
          if (body >= expected) {
            socket.end();
            resolve({ status, bytes: body });
          }
          return true;
        },
      },
    });
    socket.on('error', reject);
    socket.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nConnection: close\r\n\r\n`);
  });
}

/** Pulls a blob, following one redirect (Berth's default mode: 307 to a pre-signed S3 URL). */
async function pullFollowing(origin: string, repo: string, digest: string, size: number): Promise<number> {
  const t0 = performance.now();
  let r = await rawGet(`${origin}/v2/${repo}/blobs/${digest}`);
  if (r.location !== undefined) r = await rawGet(new URL(r.location, origin).toString());
  if (r.bytes !== size) throw new Error(`pull ${digest}: ${r.bytes} bytes, expected ${size}`);
  return size / 1e6 / ((performance.now() - t0) / 1000);
}

// ---- the store alone -----------------------------------------------------------------------------

/** Single-stream PUT then GET of one object through pre-signed URLs: the same client path as the registries. */
async function storeSingleStream(s3: S3Client, bucket: string, key: string, seed: number, size: number): Promise<{ put: number; get: number }> {
  const putUrl = await getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 900 });
  const t0 = performance.now();
  const res = await request(putUrl, { method: 'PUT', headers: { 'content-length': String(size) }, body: blobChunks(seed, 0, size) as unknown as Buffer, bodyTimeout: 0, headersTimeout: 0 });
  await res.body.arrayBuffer();
  if (res.statusCode !== 200) throw new Error(`store PUT: ${res.statusCode}`);
  const put = size / 1e6 / ((performance.now() - t0) / 1000);
  const getUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 900 });
  const t1 = performance.now();
  const got = await rawGet(getUrl);
  if (got.bytes !== size) throw new Error(`store GET: ${got.bytes} bytes`);
  return { put, get: size / 1e6 / ((performance.now() - t1) / 1000) };
}

// ---- main ----------------------------------------------------------------------------------------

interface Row {
  metric: string;
  unit: string;
  berth: number;
  reference: number;
  ratio: number;
  target?: string;
  met?: boolean;
  runs: { berth: number[]; reference: number[] };
}

async function main(): Promise<void> {
  log(`config: ${JSON.stringify(cfg)}`);
  const started = performance.now();
  const load0 = loadavg()[0]!;
  let ceph: TestCeph | undefined;
  let pg: TestPostgres | undefined;
  const servers: ServerUnderTest[] = [];
  const clients: RegistryClient[] = [];
  try {
    // Everything the run stores stays in the memstore OSD (radosgw frees deleted data later, in its GC).
    const stored = 2 * (cfg.rounds * (3 * cfg.blobBytes) + cfg.blobBytes + cfg.bigBytes) + cfg.driverPartMiB.length * cfg.blobBytes;
    ceph = await startCeph({ memstoreBytes: Math.max(1 << 30, Math.ceil(stored * 2.2)) });
    pg = await startPostgres();
    await ceph.createBucket('berth-bench');
    await ceph.createBucket('distribution-bench');
    await ceph.createBucket('store-bench');
    const dbUrl = await pg.createDatabase('berth_bench');
    const pids = { radosgw: await cephPid(ceph.dir, 'radosgw'), osd: await cephPid(ceph.dir, 'ceph-osd'), postmaster: await postmasterPid(pg.dir) };
    const meter = new CpuMeter(pids);
    const s3env = { ...process.env, AWS_ACCESS_KEY_ID: ceph.accessKeyId, AWS_SECRET_ACCESS_KEY: ceph.secretAccessKey };
    const berthArgs = ['--storage', 's3', '--s3-bucket', 'berth-bench', '--s3-endpoint', ceph.endpoint, '--s3-region', ceph.region, '--metadata', dbUrl];
    const berth = await startBerth({ label: 'berth', extraArgs: [...berthArgs, '--no-s3-redirect'], env: s3env });
    servers.push(berth);
    const reference = await startReferenceS3({ endpoint: ceph.endpoint, region: ceph.region, bucket: 'distribution-bench', accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey, disableRedirect: true });
    servers.push(reference);
    const sides = [berth, reference].map((server) => {
      const client = new RegistryClient(server.origin, cfg.connections);
      clients.push(client);
      return { server, client, rss: new RssMonitor(server.pid) };
    });
    const s3 = new S3Client({ region: ceph.region, endpoint: ceph.endpoint, forcePathStyle: true, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });

    // Warm-up: a 16 MiB push and pull on each (JIT, connections, the SDK's first requests).
    for (const s of sides) {
      const d = blobDigest(99, 16 * MiB);
      await s.client.pushMonolithic('perf/warmup', 99, 16 * MiB, d);
      await s.client.pull('perf/warmup', d, 16 * MiB);
    }
    await storeSingleStream(s3, 'store-bench', 'warmup', 98, 16 * MiB);

    const ops = ['monolithic push', 'chunked push', 'pull'] as const;
    type Op = (typeof ops)[number];
    const runs: Record<Op, Record<string, number[]>> = { 'monolithic push': { berth: [], reference: [] }, 'chunked push': { berth: [], reference: [] }, pull: { berth: [], reference: [] } };
    const cpu: Record<string, Record<string, CpuSplit[]>> = {};
    const addCpu = (op: string, label: string, c: CpuSplit) => (((cpu[op] ??= {})[label] ??= []).push(c));
    const store = { put: [] as number[], get: [] as number[] };
    const singlePost: number[] = [];
    const seedOf = (label: string, round: number, kind: number) => (label === 'berth' ? 0 : 500) + 10 * round + kind;
    const digests = new Map<number, string>();
    const digestFor = (seed: number, size = cfg.blobBytes) => {
      if (!digests.has(seed)) digests.set(seed, blobDigest(seed, size));
      return digests.get(seed)!;
    };

    for (let round = 0; round < cfg.rounds; round++) {
      log(`round ${round + 1}/${cfg.rounds} (load average ${loadavg()[0]!.toFixed(1)})`);
      const order = round % 2 === 0 ? sides : [...sides].reverse();
      for (const op of ops) {
        for (const s of order) {
          const label = s.server.label;
          const seed = seedOf(label, round, op === 'chunked push' ? 2 : 1);
          const digest = digestFor(seed);
          const { value, cpu: c } = await meter.measure(s.server.pid, async () => {
            if (op === 'monolithic push') return (await s.client.pushMonolithic('perf/push', seed, cfg.blobBytes, digest)).mbps;
            if (op === 'chunked push') return (await s.client.pushChunked('perf/chunked', seed, cfg.blobBytes, cfg.chunkBytes, digest)).mbps;
            return (await s.client.pull('perf/push', digest, cfg.blobBytes)).mbps;
          });
          runs[op][label]!.push(value);
          addCpu(op, label, c);
          log(`  ${op} ${label}: ${fmt(value)} MB/s (CPU s: server ${c.server.toFixed(2)}, radosgw ${c.radosgw.toFixed(2)}, osd ${c.osd.toFixed(2)}, postgres ${c.postgres.toFixed(2)}, client ${c.client.toFixed(2)})`);
        }
      }
      // The store alone, single stream, in the same round.
      const { value: st, cpu: sc } = await meter.measure(berth.pid, () => storeSingleStream(s3, 'store-bench', `single-${round}`, 900 + round, cfg.blobBytes));
      store.put.push(st.put);
      store.get.push(st.get);
      addCpu('store PUT+GET', 'store', sc);
      log(`  store single stream: PUT ${fmt(st.put)} MB/s, GET ${fmt(st.get)} MB/s`);
      // Berth's single-request upload (POST ?digest= with the body: the driver's direct put, no session).
      {
        const seed = seedOf('berth', round, 3);
        const digest = digestFor(seed);
        const { value, cpu: c } = await meter.measure(berth.pid, async () => {
          const t0 = performance.now();
          const res = await request(`${berth.origin}/v2/perf/single/blobs/uploads/?digest=${encodeURIComponent(digest)}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': String(cfg.blobBytes) }, body: blobChunks(seed, 0, cfg.blobBytes) as unknown as Buffer, bodyTimeout: 0, headersTimeout: 0 });
          await res.body.arrayBuffer();
          if (res.statusCode !== 201) throw new Error(`single POST: ${res.statusCode}`);
          return cfg.blobBytes / 1e6 / ((performance.now() - t0) / 1000);
        });
        singlePost.push(value);
        addCpu('single POST', 'berth', c);
        log(`  single POST berth: ${fmt(value)} MB/s`);
      }
    }

    // Manifest GET through PostgreSQL (Berth) / the S3 driver (distribution).
    const img = tinyImage();
    const manifestRps: Record<string, number[]> = { berth: [], reference: [] };
    for (const s of sides) {
      await s.client.pushSmall('perf/manifest', img.blob, img.blobDigest);
      await s.client.putManifest('perf/manifest', 'latest', img.manifest);
      await s.client.manifestLoad('perf/manifest', 'latest', img.manifest.length, cfg.connections, 1); // warm-up
    }
    for (let round = 0; round < Math.min(cfg.rounds, 3); round++) {
      for (const s of round % 2 === 0 ? sides : [...sides].reverse()) {
        const { value, cpu: c } = await meter.measure(s.server.pid, () => s.client.manifestLoad('perf/manifest', 'latest', img.manifest.length, cfg.connections, cfg.manifestSeconds));
        manifestRps[s.server.label]!.push(value.rps);
        addCpu('manifest GET', s.server.label, c);
        log(`  manifest GET ${s.server.label}: ${fmt(value.rps)} req/s`);
      }
    }

    // Memory: peak RSS during one BLOB and one BIG monolithic push, from an idle start.
    const memory: Record<string, { idle: number; small: number; big: number; cpuSmall: number; cpuBig: number }> = {};
    for (const s of sides) {
      const label = s.server.label;
      await new Promise((r) => setTimeout(r, 1000));
      const idle = await s.rss.current();
      const peaks: number[] = [];
      const cpus: number[] = [];
      for (const [i, size] of [cfg.blobBytes, cfg.bigBytes].entries()) {
        const seed = seedOf(label, 50, 5 + i);
        const digest = blobDigest(seed, size);
        await s.rss.start();
        const c0 = await cpuOf(s.server.pid);
        await s.client.pushMonolithic('perf/memory', seed, size, digest);
        cpus.push((await cpuOf(s.server.pid)) - c0);
        peaks.push(await s.rss.stop());
      }
      memory[label] = { idle, small: peaks[0]!, big: peaks[1]!, cpuSmall: cpus[0]!, cpuBig: cpus[1]! };
      log(`  memory ${label}: idle ${(idle / 1e6).toFixed(0)} MB, peak ${(peaks[0]! / 1e6).toFixed(0)} MB (${cfg.blobBytes / MiB} MiB push), ${(peaks[1]! / 1e6).toFixed(0)} MB (${cfg.bigBytes / MiB} MiB push)`);
    }

    // Berth's default mode: a second replica on the same bucket and database answering blob GETs
    // with a 307 to a pre-signed URL; the client then reads from radosgw directly.
    const redirectRuns: number[] = [];
    {
      const replica = await startBerth({ label: 'berth-redirect', extraArgs: berthArgs, env: s3env });
      servers.push(replica);
      await pullFollowing(replica.origin, 'perf/warmup', blobDigest(99, 16 * MiB), 16 * MiB);
      for (let round = 0; round < cfg.rounds; round++) {
        const v = await pullFollowing(replica.origin, 'perf/push', digestFor(seedOf('berth', round, 1)), cfg.blobBytes);
        redirectRuns.push(v);
        log(`  pull berth (307 to S3): ${fmt(v)} MB/s`);
      }
    }

    // The Berth driver's direct put (the path of a single-request upload) with other part sizes:
    // the driver takes the part size as an option; the parts in flight are fixed in the driver (PARTS_IN_FLIGHT).
    const driverPut: Record<number, number> = {};
    for (const mib of cfg.driverPartMiB) {
      const driver = new S3BlobDriver({ bucket: 'store-bench', endpoint: ceph.endpoint, region: ceph.region, accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey, prefix: `parts-${mib}`, partSize: mib * MiB });
      await driver.open();
      const seed = 700 + mib;
      const digest = blobDigest(seed, cfg.blobBytes);
      const t0 = performance.now();
      await driver.put(blobChunks(seed, 0, cfg.blobBytes), { digest, size: cfg.blobBytes });
      driverPut[mib] = cfg.blobBytes / 1e6 / ((performance.now() - t0) / 1000);
      await driver.close();
      log(`  driver put (in the bench process), ${mib} MiB parts: ${fmt(driverPut[mib])} MB/s`);
    }

    // ---- report ----------------------------------------------------------------------------------
    const rows: Row[] = [];
    const add = (metric: string, unit: string, b: number[], r: number[], min?: number) => {
      const berthM = median(b);
      const refM = median(r);
      const ratio = berthM / refM;
      rows.push({ metric, unit, berth: berthM, reference: refM, ratio, ...(min !== undefined ? { target: `≥ ${min}×`, met: ratio >= min } : {}), runs: { berth: b, reference: r } });
    };
    const mb = cfg.blobBytes / MiB;
    add(`monolithic push ${mb} MiB (POST, PUT ?digest=)`, 'MB/s', runs['monolithic push'].berth!, runs['monolithic push'].reference!, 2);
    add(`chunked push ${mb} MiB (16 MiB PATCHes)`, 'MB/s', runs['chunked push'].berth!, runs['chunked push'].reference!, 1.5);
    add(`pull ${mb} MiB, through the registry (Berth --no-s3-redirect)`, 'MB/s', runs.pull.berth!, runs.pull.reference!, 1.0);
    add(`pull ${mb} MiB, Berth default (307 to S3) vs distribution streaming`, 'MB/s', redirectRuns, runs.pull.reference!);
    add(`manifest GET, ${cfg.connections} connections`, 'req/s', manifestRps.berth!, manifestRps.reference!, 5);
    add(`single POST ?digest= ${mb} MiB (Berth only; no session)`, 'MB/s', singlePost, []);

    const out: string[] = [];
    out.push(`Berth (S3 + PostgreSQL, one replica) vs distribution 2.8 (S3 driver, redirect disabled), one radosgw — ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`);
    out.push(`${cfg.rounds} rounds, medians; load average ${load0.toFixed(1)} at start, ${loadavg()[0]!.toFixed(1)} at end`);
    out.push('');
    out.push('| metric | unit | Berth | distribution | Berth/distribution | target | met | runs Berth | runs distribution |');
    out.push('|---|---|---:|---:|---:|---|---|---|---|');
    for (const r of rows) {
      out.push(`| ${r.metric} | ${r.unit} | ${fmt(r.berth)} | ${fmt(r.reference)} | ${Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}×` : ''} | ${r.target ?? ''} | ${r.met === undefined ? '' : r.met ? 'yes' : 'NO'} | ${r.runs.berth.map(fmt).join(' / ')} | ${r.runs.reference.map(fmt).join(' / ')} |`);
    }
    out.push('');
    out.push(`The store alone, one stream (pre-signed PUT / GET of ${mb} MiB, the same client code): PUT ${fmt(median(store.put))} MB/s (${store.put.map(fmt).join(' / ')}), GET ${fmt(median(store.get))} MB/s (${store.get.map(fmt).join(' / ')})`);
    out.push(`Berth's S3 driver put in the bench process, ${mb} MiB, the driver's parts in flight: ${cfg.driverPartMiB.map((m) => `${m} MiB parts ${fmt(driverPut[m]!)} MB/s`).join(', ')}`);
    out.push('');
    out.push('CPU seconds per operation (median of the rounds; user + system, all threads):');
    out.push('| operation | registry | registry CPU s | radosgw CPU s | ceph-osd CPU s | PostgreSQL CPU s | client CPU s | sum |');
    out.push('|---|---|---:|---:|---:|---:|---:|---:|');
    for (const [op, byLabel] of Object.entries(cpu)) {
      for (const [label, xs] of Object.entries(byLabel)) {
        const m = (k: keyof CpuSplit) => median(xs.map((x) => x[k]));
        out.push(`| ${op} | ${label} | ${m('server').toFixed(2)} | ${m('radosgw').toFixed(2)} | ${m('osd').toFixed(2)} | ${m('postgres').toFixed(2)} | ${m('client').toFixed(2)} | ${(m('server') + m('radosgw') + m('osd') + m('postgres') + m('client')).toFixed(2)} |`);
      }
    }
    out.push('(store PUT+GET: the "registry" column is Berth idle, for reference)');
    out.push('');
    out.push(`Memory: peak RSS during one monolithic push (VmHWM reset at the start, VmRSS sampled every 50 ms):`);
    out.push(`| registry | idle MB | peak, ${mb} MiB push | peak, ${cfg.bigBytes / MiB} MiB push | growth for ${(cfg.bigBytes - cfg.blobBytes) / MiB} MiB more | flat (< 10 % of it) | CPU s, ${mb} / ${cfg.bigBytes / MiB} MiB |`);
    out.push('|---|---:|---:|---:|---:|---|---|');
    for (const [label, m] of Object.entries(memory)) {
      const growth = m.big - m.small;
      out.push(`| ${label} | ${(m.idle / 1e6).toFixed(0)} | ${(m.small / 1e6).toFixed(0)} | ${(m.big / 1e6).toFixed(0)} | ${(growth / 1e6).toFixed(0)} MB | ${growth < 0.1 * (cfg.bigBytes - cfg.blobBytes) ? 'yes' : 'NO'} | ${m.cpuSmall.toFixed(2)} / ${m.cpuBig.toFixed(2)} |`);
    }
    out.push('');
    out.push(`total bench time ${((performance.now() - started) / 1000).toFixed(0)} s`);
    process.stdout.write(out.join('\n') + '\n');
    if (jsonOut) await writeFile(jsonOut, JSON.stringify({ config: cfg, rows, store, driverPut, cpu, memory, redirectRuns, singlePost }, null, 2));
    s3.destroy();
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await Promise.all(servers.map((s) => s.stop()));
    await pg?.stop();
    await ceph?.stop();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/scale-out failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
