// berth push/pull against `skopeo copy` in the same run, on each Node (issue 13's client targets).
//   npm run build && node dist/bench/client.js
// The image: busybox plus BENCH_CLIENT_LAYERS layers of random bytes (default 3), BENCH_CLIENT_MIB
// MiB in all (default 122: issue 13's 4-layer image), built with umoci. The registry:
// BENCH_REGISTRY=reference (default; Debian's docker-registry, distribution 2.8) or berth (an
// in-process Berth registry). berth runs on this process's Node and on Node 24 (scripts/node24.sh;
// BENCH_NODE24=0 to leave it out).
// BENCH_ROUNDS rounds (default 5), medians and paired ratios (berth / skopeo of the same round);
// also each tool process's CPU (user + system, from /proc/self/stat's children totals): mean per
// step and ratio of the means, steadier than wall time on a shared machine.
// Each round gives every tool its own empty registry; the tools take turns going first; `sync`
// (untimed) runs before every step so no tool pays in its fsyncs for what another just wrote.
//   push (cold): from the local store (berth) or the OCI layout (skopeo) into the empty registry.
//   push (warm): the same again, every blob there.
//   pull (cold): from the registry into an empty BERTH_ROOT (berth) or OCI layout folder (skopeo).
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestRegistry } from '../server/testing.js';
import { buildImage, startReferenceRegistry } from '../client/testing/peers.js';

// The `berth` command as users run it (bin/berth, which runs the CLI bundle through bin/launch.cjs).
const BERTH = fileURLToPath(new URL('../../bin/berth', import.meta.url));
const NODE24 = fileURLToPath(new URL('../../scripts/node24.sh', import.meta.url));
const MIB = Number(process.env.BENCH_CLIENT_MIB ?? 122);
const LAYERS = Number(process.env.BENCH_CLIENT_LAYERS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const REGISTRY = process.env.BENCH_REGISTRY ?? 'reference';

/** CPU seconds of the reaped children so far (cutime + cstime, in ticks of 1/100 s). */
function childrenCpu(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

/** CPU of the last tool run (the registries are reaped only after a round's steps). */
let lastCpu = 0;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const cpu0 = childrenCpu();
  const start = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      lastCpu = childrenCpu() - cpu0;
      return code === 0 ? resolve(Number(process.hrtime.bigint() - start) / 1e9) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.slice(0, 500)}`));
    });
  });
}

/** Flushes dirty pages (not timed): without it the next tool pays, in its own fsyncs, for writing
 * back the hundreds of MB the previous one just wrote. */
const sync = (): Promise<number> => run('sync', [], process.env);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

interface Registry {
  host: string;
  stop(): Promise<void>;
}

async function startRegistry(): Promise<Registry> {
  if (REGISTRY === 'berth') {
    const r = await startTestRegistry();
    return { host: new URL(r.url).host, stop: () => r.destroy() };
  }
  const r = await startReferenceRegistry();
  return { host: r.host, stop: () => r.stop() };
}

type Op = 'push (cold)' | 'push (warm)' | 'pull (cold)';
const OPS: Op[] = ['push (cold)', 'push (warm)', 'pull (cold)'];

interface Tool {
  name: string;
  node?: string;
  push(host: string): Promise<number>;
  pull(host: string): Promise<number>;
}

async function main(): Promise<void> {
  // Each reference registry's temp folder adds a process 'exit' listener (client/testing/peers.ts).
  process.setMaxListeners(0);
  const work = await mkdtemp(join(tmpdir(), 'berth-bench-client-'));
  const registries: Registry[] = [];
  try {
    const layerBytes = Math.floor(((MIB - 1) * 1024 * 1024) / LAYERS);
    process.stdout.write(`building a ${LAYERS + 1}-layer image of ${MIB} MiB with umoci…\n`);
    const layout = await buildImage(work, 'bench', { extraLayers: LAYERS, layerBytes });
    const { NODE_EXTRA_CA_CERTS: _unused, ...base } = process.env;
    const root = join(work, 'berth-root');
    const env: NodeJS.ProcessEnv = { ...base, BERTH_ROOT: root, BERTH_CONFIG: join(work, 'daemon.json'), HOME: work };
    await writeFile(env.BERTH_CONFIG!, '{}');
    // berth pushes from its local store: the image is loaded from an OCI archive once (not timed).
    const archive = join(work, 'img.tar');
    await run('skopeo', ['copy', `oci:${layout}:bench`, `oci-archive:${archive}:bench/img:1`], env);
    await run(BERTH, ['load', '-i', archive], env);

    const skPullDir = join(work, 'sk-pull');
    const tools: Tool[] = [
      {
        name: 'skopeo',
        push: (host) => run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:bench`, `docker://${host}/bench/img:1`], env),
        pull: async (host) => {
          await rm(skPullDir, { recursive: true, force: true });
          await mkdir(skPullDir, { recursive: true });
          await sync();
          return run('skopeo', ['copy', '--src-tls-verify=false', `docker://${host}/bench/img:1`, `oci:${skPullDir}:bench`], env);
        },
      },
    ];
    const nodes: Array<{ label: string; env: NodeJS.ProcessEnv }> = [{ label: 'berth', env }];
    if (process.env.BENCH_NODE24 !== '0') {
      const dir = spawnSync('sh', [NODE24], { encoding: 'utf8' });
      if (dir.status === 0) nodes.push({ label: 'berth@24', env: { ...env, PATH: `${dir.stdout.trim()}${delimiter}${env.PATH ?? ''}` } });
      else process.stdout.write(`(no Node 24: ${dir.stderr.trim()})\n`);
    }
    for (const n of nodes) {
      const version = spawnSync('node', ['--version'], { env: n.env, encoding: 'utf8' }).stdout.trim();
      const pullRoot = join(work, `pull-${n.label}`);
      tools.push({
        name: n.label,
        node: version,
        push: async (host) => {
          await run(BERTH, ['tag', 'bench/img:1', `${host}/bench/img:1`], env);
          return run(BERTH, ['push', `${host}/bench/img:1`], n.env);
        },
        pull: async (host) => {
          await rm(pullRoot, { recursive: true, force: true });
          await sync();
          return run(BERTH, ['pull', `${host}/bench/img:1`], { ...n.env, BERTH_ROOT: pullRoot });
        },
      });
    }

    const times = new Map<string, Record<Op, number[]>>(tools.map((t) => [t.name, { 'push (cold)': [], 'push (warm)': [], 'pull (cold)': [] }]));
    const cpu = new Map<string, Record<Op, number[]>>(tools.map((t) => [t.name, { 'push (cold)': [], 'push (warm)': [], 'pull (cold)': [] }]));
    for (let round = 0; round < ROUNDS; round++) {
      const regs = await Promise.all(tools.map(() => startRegistry()));
      registries.push(...regs);
      const order = tools.map((_, i) => (i + round) % tools.length);
      for (const op of OPS) {
        for (const i of order) {
          const t = tools[i]!;
          await sync();
          const host = regs[i]!.host;
          times.get(t.name)![op].push(await (op === 'pull (cold)' ? t.pull(host) : t.push(host)));
          cpu.get(t.name)![op].push(lastCpu);
        }
      }
      await Promise.all(regs.map((r) => r.stop()));
      registries.length = 0;
      process.stdout.write(`round ${round + 1}/${ROUNDS} done\n`);
    }

    const sk = times.get('skopeo')!;
    const skCpu = cpu.get('skopeo')!;
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const results: Record<string, unknown> = {};
    process.stdout.write(`\n${REGISTRY === 'berth' ? 'Berth registry' : "Debian's docker-registry"}, ${MIB} MiB in ${LAYERS + 1} layers; load average ${loadavg()[0]!.toFixed(1)} at the end; median of ${ROUNDS} rounds (each: fresh registries, tools rotate going first, sync before each step)\n`);
    process.stdout.write(`${'operation'.padEnd(14)}${'tool'.padEnd(22)}${'s'.padStart(7)}${'skopeo s'.padStart(10)}${'ratio'.padStart(8)}${'cpu s'.padStart(8)}${'skopeo'.padStart(8)}${'ratio'.padStart(7)}   runs (wall)\n`);
    for (const op of OPS) {
      for (const t of tools.slice(1)) {
        const r = times.get(t.name)![op];
        const ratios = r.map((x, k) => x / sk[op][k]!);
        const label = `${t.name} (${t.node})`;
        const c = mean(cpu.get(t.name)![op]);
        const kc = mean(skCpu[op]);
        results[`${op} ${label}`] = { berth: median(r), skopeo: median(sk[op]), ratio: median(ratios), runs: r, skopeoRuns: sk[op], cpu: c, skopeoCpu: kc };
        process.stdout.write(`${op.padEnd(14)}${label.padEnd(22)}${median(r).toFixed(3).padStart(7)}${median(sk[op]).toFixed(3).padStart(10)}${median(ratios).toFixed(2).padStart(8)}${c.toFixed(3).padStart(8)}${kc.toFixed(3).padStart(8)}${(c / kc).toFixed(2).padStart(7)}   ${r.map((x) => x.toFixed(2)).join(' ')} | ${sk[op].map((x) => x.toFixed(2)).join(' ')}\n`);
      }
    }
    const out = fileURLToPath(new URL('./results/', import.meta.url.replace('/dist/bench/', '/bench/')));
    await mkdir(out, { recursive: true });
    await writeFile(join(out, `client-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify({ registry: REGISTRY, mib: MIB, layers: LAYERS + 1, rounds: ROUNDS, results }, null, 2));
  } finally {
    await Promise.all(registries.map((r) => r.stop()));
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/client: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
