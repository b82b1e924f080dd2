// Start-up of the verbs that need no network against `node -e 0` on the same Node, in one run:
// `berth images`, `berth ps` and `berth inspect IMAGE` (issue 13: each ≤ 1.5× `node -e 0`).
//   npm run build && node dist/bench/startup.js
// For each Node (this process's `node` on PATH, then Node 24 from scripts/node24.sh unless
// BENCH_NODE24=0), BENCH_ROUNDS rounds (default 31); each round runs `node -e 0` and every verb
// once, in an order rotated per round, so a slow stretch of the machine is shared. Wall time of the
// whole process (spawn to exit), medians; the ratio is the median of the per-round ratios
// verb / `node -e 0`, with its min-max. Also CPU (user + system) of each process, from this
// process's children totals in /proc/self/stat: a mean over the rounds, and the ratio of the means.
// On a shared machine the CPU ratio moves less than the wall one (another tenant's load stretches
// wall time, not the CPU a process needs).
//
// BENCH_BERTH_BEFORE=DIR/bin/berth (another built checkout, e.g. `git archive` of an older commit
// with node_modules linked and `npx tsc` run) adds the same verbs run by that berth to the same
// rounds, labelled "before": a change's start-up cost measured beside the current tree's.
//
// The baseline runs without NODE_EXTRA_CA_CERTS, as berth's own Node does (bin/berth moves it to
// BERTH_EXTRA_CA_CERTS): Node 20 otherwise parses the whole CA bundle at start, which would flatter
// berth by up to ~35 ms.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildImage, busyboxLayer } from '../runtime/test-images.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 31);
const BERTH = fileURLToPath(new URL('../../bin/berth', import.meta.url));
const NODE24 = fileURLToPath(new URL('../../scripts/node24.sh', import.meta.url));

/** CPU milliseconds of the waited-for children so far (cutime + cstime; the kernel keeps nanoseconds and rounds to ticks on reading). */
function childrenCpuMs(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  // After "pid (comm) ": state is field 3, so cutime (16) and cstime (17) are at 13 and 14 here.
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / 100;
}

function timeOnce(cmd: string, args: string[], env: NodeJS.ProcessEnv): number {
  return timeAndCpu(cmd, args, env).ms;
}

function timeAndCpu(cmd: string, args: string[], env: NodeJS.ProcessEnv): { ms: number; cpu: number } {
  const cpu0 = childrenCpuMs();
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString().slice(0, 500)}`);
  return { ms, cpu: childrenCpuMs() - cpu0 };
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function nodeVersion(env: NodeJS.ProcessEnv): string {
  return spawnSync('node', ['--version'], { env, encoding: 'utf8' }).stdout.trim();
}

interface Case {
  name: string;
  cmd: string;
  args: string[];
}

export interface StartupResult {
  node: string;
  baselineMs: number;
  baselineCpuMs: number;
  verbs: { name: string; ms: number; ratio: number; ratioMin: number; ratioMax: number; cpuMs: number; cpuRatio: number }[];
}

function measure(env: NodeJS.ProcessEnv, cases: Case[]): StartupResult {
  const all: Case[] = [{ name: 'node -e 0', cmd: 'node', args: ['-e', '0'] }, ...cases];
  // Untimed warm-up: the page cache, and the compile cache on a Node that has one.
  for (const c of all) for (let i = 0; i < 2; i++) timeOnce(c.cmd, c.args, env);
  const times = all.map(() => [] as number[]);
  const cpu = all.map(() => [] as number[]);
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < all.length; k++) {
      const i = (k + round) % all.length;
      const r = timeAndCpu(all[i]!.cmd, all[i]!.args, env);
      times[i]!.push(r.ms);
      cpu[i]!.push(r.cpu);
    }
  }
  const base = times[0]!;
  const baseCpu = mean(cpu[0]!);
  return {
    node: nodeVersion(env),
    baselineMs: median(base),
    baselineCpuMs: baseCpu,
    verbs: cases.map((c, j) => {
      const t = times[j + 1]!;
      const ratios = t.map((x, r) => x / base[r]!);
      const c1 = mean(cpu[j + 1]!);
      return { name: c.name, ms: median(t), ratio: median(ratios), ratioMin: Math.min(...ratios), ratioMax: Math.max(...ratios), cpuMs: c1, cpuRatio: c1 / baseCpu };
    }),
  };
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'berth-bench-startup-'));
  try {
    const { NODE_EXTRA_CA_CERTS: _unused, ...rest } = process.env;
    const env: NodeJS.ProcessEnv = { ...rest, BERTH_ROOT: join(work, 'root'), BERTH_CONFIG: join(work, 'daemon.json'), HOME: work };
    await writeFile(env.BERTH_CONFIG!, '{}');
    // One busybox image in the store (skopeo makes the archive `berth load` reads), and, when this
    // machine can run containers, one exited container so that `ps -a` has a row to print.
    const layout = join(work, 'layout');
    await mkdir(layout);
    await buildImage(layout, 'bb', [busyboxLayer()]);
    const archive = join(work, 'bb.tar');
    timeOnce('skopeo', ['copy', `oci:${layout}:bb`, `oci-archive:${archive}:bench/bb:1`], env);
    timeOnce(BERTH, ['load', '-i', archive], env);
    let container = false;
    try {
      timeOnce(BERTH, ['run', '--name', 'bench-startup', 'bench/bb:1', 'true'], env);
      container = true;
    } catch (e) {
      process.stdout.write(`(no container for ps -a: ${(e as Error).message.split('\n')[0]})\n`);
    }
    const cases: Case[] = [
      { name: 'berth images', cmd: BERTH, args: ['images'] },
      { name: container ? 'berth ps -a' : 'berth ps', cmd: BERTH, args: container ? ['ps', '-a'] : ['ps'] },
      { name: 'berth inspect IMAGE', cmd: BERTH, args: ['inspect', 'bench/bb:1'] },
      ...(container ? [{ name: 'berth inspect CONTAINER', cmd: BERTH, args: ['inspect', 'bench-startup'] }] : []),
    ];
    const before = process.env.BENCH_BERTH_BEFORE;
    if (before) cases.push(...cases.map((c) => ({ ...c, name: `${c.name} (before)`, cmd: before })));

    const nodes: { label: string; env: NodeJS.ProcessEnv }[] = [{ label: 'system', env }];
    if (process.env.BENCH_NODE24 !== '0') {
      const dir = spawnSync('sh', [NODE24], { encoding: 'utf8' });
      if (dir.status === 0) nodes.push({ label: 'node24', env: { ...env, PATH: `${dir.stdout.trim()}${delimiter}${env.PATH ?? ''}` } });
      else process.stdout.write(`(no Node 24: ${dir.stderr.trim()})\n`);
    }

    const results: StartupResult[] = [];
    for (const n of nodes) {
      const r = measure(n.env, cases);
      results.push(r);
      process.stdout.write(`\nNode ${r.node}, ${ROUNDS} rounds, load average ${loadavg()[0]!.toFixed(1)} at the end. wall: median ms, ratio = median of the per-round ratios to node -e 0 (min-max); cpu: mean ms, ratio of the means\n`);
      process.stdout.write(`${''.padEnd(36)}${'wall'.padStart(8)}${'ratio'.padStart(8)}${''.padStart(15)}${'cpu'.padStart(8)}${'ratio'.padStart(8)}\n`);
      process.stdout.write(`${'node -e 0'.padEnd(36)}${r.baselineMs.toFixed(1).padStart(8)}${''.padStart(23)}${r.baselineCpuMs.toFixed(1).padStart(8)}\n`);
      for (const v of r.verbs) {
        const range = `(${v.ratioMin.toFixed(2)}-${v.ratioMax.toFixed(2)})`;
        process.stdout.write(`${v.name.padEnd(36)}${v.ms.toFixed(1).padStart(8)}${v.ratio.toFixed(2).padStart(8)}  ${range.padEnd(13)}${v.cpuMs.toFixed(1).padStart(8)}${v.cpuRatio.toFixed(2).padStart(8)}${v.ratio <= 1.5 ? '  ≤ 1.5' : '  > 1.5'}\n`);
      }
    }
    if (container) timeOnce(BERTH, ['rm', 'bench-startup'], env);
    const out = fileURLToPath(new URL('./results/', import.meta.url.replace('/dist/bench/', '/bench/')));
    await mkdir(out, { recursive: true });
    await writeFile(join(out, `startup-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify({ rounds: ROUNDS, results }, null, 2));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/startup: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
