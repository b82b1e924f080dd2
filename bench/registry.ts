// Berth against the reference registry (docker-registry), side by side in one run.
//
//   npm run build && npm run bench                # full run (512 MiB blobs, 10 000 repositories)
//   npm run bench -- --quick                      # small run for development
//   npm run bench -- --big                        # also: 2 GiB push + pull on Berth, RSS growth
//   npm run bench -- --json out.json              # also write the figures as JSON
//
// Each phase runs the servers alternately (Berth, reference, Berth, ...) so that load from other
// processes on the machine falls on both; throughputs are the median of the repetitions.
import { writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { blobDigest } from './blob-source.js';
import { RssMonitor, startBerth, startReference, type ServerUnderTest } from './registry-servers.js';
import { RegistryClient, forEachConcurrent, tinyImage } from './registry-operations.js';

const MiB = 1 << 20;
const argv = process.argv.slice(2);
const flag = (f: string) => argv.includes(f);
const option = (f: string) => {
  const i = argv.indexOf(f);
  return i >= 0 ? argv[i + 1] : undefined;
};
const quick = flag('--quick');
const cfg = {
  blobBytes: Number(option('--blob-mib') ?? (quick ? 64 : 512)) * MiB,
  chunkBytes: 16 * MiB,
  reps: Number(option('--reps') ?? (quick ? 1 : 3)),
  manifestSeconds: Number(option('--seconds') ?? (quick ? 3 : 10)),
  connections: 32,
  repos: Number(option('--repos') ?? (quick ? 1000 : 10_000)),
  catalogN: 100,
  catalogSamples: quick ? 20 : 100,
  bigBytes: 2048 * MiB,
};

interface Side {
  server: ServerUnderTest;
  client: RegistryClient;
  rss: RssMonitor;
}

interface Row {
  metric: string;
  unit: string;
  berth: number;
  reference: number;
  /** Berth's advantage as a multiple of the reference (higher is better for Berth). */
  ratio: number;
  target?: string;
  met?: boolean;
}

const rows: Row[] = [];
const rssRows: Array<{ phase: string; berth: number; reference: number; berthCpu: number; referenceCpu: number; clientCpu: number }> = [];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

function addRow(metric: string, unit: string, berth: number, reference: number, higherIsBetter: boolean, minRatio?: number): void {
  const ratio = higherIsBetter ? berth / reference : reference / berth;
  const row: Row = { metric, unit, berth, reference, ratio };
  if (minRatio !== undefined) {
    row.target = `≥ ${minRatio}×`;
    row.met = ratio >= minRatio;
  }
  rows.push(row);
}

/** Runs `body` for both servers, `reps` times alternately, with RSS monitored for the phase. */
async function phase<T>(name: string, sides: Side[], reps: number, body: (s: Side, rep: number) => Promise<T>): Promise<Map<string, T[]>> {
  const results = new Map<string, T[]>(sides.map((s) => [s.server.label, []]));
  await Promise.all(sides.map((s) => s.rss.start()));
  const cpu0 = await Promise.all(sides.map((s) => s.rss.cpuSeconds()));
  const client0 = process.cpuUsage();
  for (let rep = 0; rep < reps; rep++) {
    for (const s of sides) {
      results.get(s.server.label)!.push(await body(s, rep));
    }
  }
  const client1 = process.cpuUsage(client0);
  const cpu1 = await Promise.all(sides.map((s) => s.rss.cpuSeconds()));
  const [b, r] = await Promise.all(sides.map((s) => s.rss.stop()));
  rssRows.push({ phase: name, berth: b!, reference: r!, berthCpu: cpu1[0]! - cpu0[0]!, referenceCpu: cpu1[1]! - cpu0[1]!, clientCpu: (client1.user + client1.system) / 1e6 });
  process.stderr.write(`  ${name} done\n`);
  return results;
}

function fmt(n: number): string {
  if (n >= 100) return n.toFixed(0);
  if (n >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

async function main(): Promise<void> {
  process.stderr.write(`config: ${JSON.stringify(cfg)}\n`);
  const started = performance.now();
  const servers: ServerUnderTest[] = [];
  const clients: RegistryClient[] = [];
  try {
    servers.push(await startBerth(), await startReference());
    const sides: Side[] = servers.map((server) => {
      const client = new RegistryClient(server.origin, cfg.connections);
      clients.push(client);
      return { server, client, rss: new RssMonitor(server.pid) };
    });
    const byLabel = (m: Map<string, number[]>, label: string) => m.get(label)!;

    await phase('idle', sides, 1, async () => undefined);

    // Seeds: one distinct blob per server and repetition, so no push is deduplicated.
    const seeds = (rep: number, kind: number) => 1000 * kind + rep;
    const digests = new Map<number, string>();
    const digestFor = (seed: number, size: number) => {
      if (!digests.has(seed)) digests.set(seed, blobDigest(seed, size));
      return digests.get(seed)!;
    };
    for (let rep = 0; rep < cfg.reps; rep++) {
      digestFor(seeds(rep, 1), cfg.blobBytes);
      digestFor(seeds(rep, 2), cfg.blobBytes);
    }

    // Warm-up: a 16 MiB push and pull on each, so Berth's JIT compilation is not in the figures.
    for (const s of sides) {
      const d = blobDigest(99, 16 * MiB);
      await s.client.pushMonolithic('perf/warmup', 99, 16 * MiB, d);
      await s.client.pull('perf/warmup', d, 16 * MiB);
    }

    const push = await phase('monolithic push', sides, cfg.reps, async (s, rep) => (await s.client.pushMonolithic('perf/push', seeds(rep, 1), cfg.blobBytes, digestFor(seeds(rep, 1), cfg.blobBytes))).mbps);
    addRow(`monolithic push ${cfg.blobBytes / MiB} MiB`, 'MB/s', median(byLabel(push, 'berth')), median(byLabel(push, 'reference')), true, 1.3);

    const pull = await phase('pull', sides, cfg.reps, async (s, rep) => (await s.client.pull('perf/push', digestFor(seeds(rep, 1), cfg.blobBytes), cfg.blobBytes)).mbps);
    addRow(`pull ${cfg.blobBytes / MiB} MiB`, 'MB/s', median(byLabel(pull, 'berth')), median(byLabel(pull, 'reference')), true, 1.0);

    const chunked = await phase('chunked push', sides, cfg.reps, async (s, rep) =>
      (await s.client.pushChunked('perf/chunked', seeds(rep, 2), cfg.blobBytes, cfg.chunkBytes, digestFor(seeds(rep, 2), cfg.blobBytes))).mbps,
    );
    addRow(`chunked push ${cfg.blobBytes / MiB} MiB (16 MiB chunks)`, 'MB/s', median(byLabel(chunked, 'berth')), median(byLabel(chunked, 'reference')), true, 1.3);

    const img = tinyImage();
    for (const s of sides) {
      await s.client.pushSmall('perf/manifest', img.blob, img.blobDigest);
      await s.client.putManifest('perf/manifest', 'latest', img.manifest);
      await s.client.manifestLoad('perf/manifest', 'latest', img.manifest.length, cfg.connections, 1); // warm-up
    }
    const manifest = await phase('manifest GET', sides, 1, async (s) => (await s.client.manifestLoad('perf/manifest', 'latest', img.manifest.length, cfg.connections, cfg.manifestSeconds)).rps);
    addRow(`manifest GET, ${cfg.connections} connections`, 'req/s', median(byLabel(manifest, 'berth')), median(byLabel(manifest, 'reference')), true, 3);

    const names = Array.from({ length: cfg.repos }, (_, i) => `catalog/r${String(i).padStart(5, '0')}`);
    const create = await phase(`create ${cfg.repos} repositories`, sides, 1, async (s) => {
      const t0 = performance.now();
      await forEachConcurrent(names.length, cfg.connections, async (i) => {
        await s.client.mount(names[i]!, 'perf/manifest', img.blobDigest);
        await s.client.putManifest(names[i]!, 'latest', img.manifest);
      });
      return (2 * names.length) / ((performance.now() - t0) / 1000);
    });
    addRow(`repository creation (mount + manifest PUT), ${cfg.connections} conc.`, 'req/s', median(byLabel(create, 'berth')), median(byLabel(create, 'reference')), true);

    // Pages start at evenly spread positions, so half the samples are in the deeper half.
    const positions = Array.from({ length: cfg.catalogSamples }, (_, i) => Math.floor((i * cfg.repos) / cfg.catalogSamples));
    const catalog = await phase(`_catalog n=${cfg.catalogN} at ${cfg.repos} repos`, sides, 1, async (s) => {
      await s.client.catalogPage(cfg.catalogN); // warm-up
      const ms: number[] = [];
      for (const p of positions) {
        const last = p === 0 ? undefined : names[p - 1];
        const page = await s.client.catalogPage(cfg.catalogN, last);
        const want = names[p]!;
        if (page.names[0] !== want || page.names.length < Math.min(cfg.catalogN, cfg.repos - p)) throw new Error(`${s.server.label}: _catalog page after ${last} starts at ${page.names[0]} (${page.names.length} names), expected ${want}`);
        ms.push(page.ms);
      }
      return ms;
    });
    const catB = catalog.get('berth')![0]!;
    const catR = catalog.get('reference')![0]!;
    addRow(`_catalog page n=${cfg.catalogN}, ${cfg.repos} repos, median`, 'ms', median(catB), median(catR), false, 1.0);
    addRow(`_catalog page n=${cfg.catalogN}, ${cfg.repos} repos, p95`, 'ms', percentile(catB, 95), percentile(catR, 95), false);

    let big: { before: number; peakPush: number; peakPull: number; pushMbps: number; pullMbps: number } | undefined;
    if (flag('--big')) {
      const s = sides[0]!;
      process.stderr.write(`  2 GiB push + pull on Berth...\n`);
      const digest = blobDigest(7777, cfg.bigBytes);
      const before = await s.rss.current();
      await s.rss.start();
      const p = await s.client.pushMonolithic('perf/big', 7777, cfg.bigBytes, digest);
      const peakPush = await s.rss.stop();
      await s.rss.start();
      const q = await s.client.pull('perf/big', digest, cfg.bigBytes);
      const peakPull = await s.rss.stop();
      big = { before, peakPush, peakPull, pushMbps: p.mbps, pullMbps: q.mbps };
    }

    // ---- report ------------------------------------------------------------------------------
    const out: string[] = [];
    out.push(`Berth vs reference registry (docker-registry 2.8) — ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, node ${process.version}`);
    out.push(`${quick ? 'QUICK run' : 'full run'}: blobs ${cfg.blobBytes / MiB} MiB × ${cfg.reps} reps (median), manifest GET ${cfg.manifestSeconds} s, ${cfg.repos} repositories`);
    out.push('');
    out.push('| metric | unit | Berth | reference | Berth/ref | target | met |');
    out.push('|---|---|---:|---:|---:|---|---|');
    for (const r of rows) out.push(`| ${r.metric} | ${r.unit} | ${fmt(r.berth)} | ${fmt(r.reference)} | ${r.ratio.toFixed(2)}× | ${r.target ?? ''} | ${r.met === undefined ? '' : r.met ? 'yes' : 'NO'} |`);
    out.push('');
    out.push('(latency rows: ratio = reference ms / Berth ms, so > 1 means Berth is faster)');
    out.push('');
    out.push('| phase | Berth peak RSS MB | reference peak RSS MB | Berth/ref | Berth < 200 MB | Berth CPU s | reference CPU s | client CPU s |');
    out.push('|---|---:|---:|---:|---|---:|---:|---:|');
    for (const r of rssRows) {
      out.push(`| ${r.phase} | ${(r.berth / 1e6).toFixed(0)} | ${(r.reference / 1e6).toFixed(0)} | ${(r.berth / r.reference).toFixed(2)}× | ${r.berth < 200e6 ? 'yes' : 'NO'} | ${r.berthCpu.toFixed(2)} | ${r.referenceCpu.toFixed(2)} | ${r.clientCpu.toFixed(2)} |`);
    }
    out.push('(CPU s: user + system seconds the process used in the phase, all repetitions, less sensitive to other load on the machine than wall time; client = this benchmark process, driving both servers)');
    if (big) {
      out.push('');
      out.push(`2 GiB blob on Berth: push ${fmt(big.pushMbps)} MB/s, pull ${fmt(big.pullMbps)} MB/s; RSS before ${(big.before / 1e6).toFixed(0)} MB, peak during push ${(big.peakPush / 1e6).toFixed(0)} MB (+${((big.peakPush - big.before) / 1e6).toFixed(0)}), during pull ${(big.peakPull / 1e6).toFixed(0)} MB (+${((big.peakPull - big.before) / 1e6).toFixed(0)})`);
    }
    out.push('');
    out.push(`total bench time ${((performance.now() - started) / 1000).toFixed(0)} s`);
    process.stdout.write(out.join('\n') + '\n');
    const json = option('--json');
    if (json) await writeFile(json, JSON.stringify({ config: cfg, rows, rss: rssRows, big }, null, 2));
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await Promise.all(servers.map((s) => s.stop()));
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
