// berth push/pull against `skopeo copy` in the same run: a 3-layer image of random bytes
// (~BENCH_CLIENT_MB MB, default 300) to and from in-process Berth registries on loopback.
//   npm run build && node dist/bench/client.js
// BENCH_ROUNDS rounds (default 3), medians. Cold push: each tool into a fresh registry. Warm push:
// the same again (every blob is there).
// Pull: each tool from the registry into an empty destination (berth: a fresh BERTH_ROOT;
// skopeo: an OCI layout directory).
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestRegistry, type TestRegistry } from '../server/testing.js';
import { buildImage } from '../client/testing/peers.js';

// The `berth` command as users run it (the launcher in bin/, which starts Node on dist/bin/berth.js).
const BERTH = new URL('../../bin/berth', import.meta.url).pathname;
const MB = Number(process.env.BENCH_CLIENT_MB ?? 300);

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<number> {
  const start = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Number(process.hrtime.bigint() - start) / 1e9) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.slice(0, 500)}`))));
  });
}

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

type Op = 'push (cold)' | 'push (warm)' | 'pull (cold)';
type Tool = 'berth' | 'skopeo';

/** Flushes dirty pages (not timed): without it the second tool of a pair pays, in its own fsyncs,
 * for writing back the hundreds of MB the first one just wrote. */
const sync = (): Promise<number> => run('sync', []);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'berth-bench-client-'));
  const registries: TestRegistry[] = [];
  try {
    process.stdout.write(`building a 3-layer image of ${MB} MB with umoci…\n`);
    // busybox plus two random layers; the third layer is most of the bytes.
    const layout = await buildImage(work, 'bench', { extraLayers: 2, layerBytes: Math.floor((MB * 1e6) / 2) });
    const root = join(work, 'berth-root');
    const env = { BERTH_ROOT: root, BERTH_CONFIG: join(work, 'daemon.json'), HOME: work };
    await writeFile(env.BERTH_CONFIG, '{}');
    // berth pushes from its local store: the image is loaded from an OCI archive once (not timed).
    const archive = join(work, 'img.tar');
    await run('skopeo', ['copy', `oci:${layout}:bench`, `oci-archive:${archive}:bench/img:1`]);

    const times: Record<Op, Record<Tool, number[]>> = {
      'push (cold)': { berth: [], skopeo: [] },
      'push (warm)': { berth: [], skopeo: [] },
      'pull (cold)': { berth: [], skopeo: [] },
    };
    for (let round = 0; round < ROUNDS; round++) {
      // Each round: two empty registries, and the tools take turns going first.
      const [skReg, beReg] = await Promise.all([startTestRegistry(), startTestRegistry()]);
      registries.push(skReg, beReg);
      const sk = new URL(skReg.url).host;
      const be = new URL(beReg.url).host;
      await rm(root, { recursive: true, force: true });
      await run(BERTH, ['load', '-i', archive], env);
      await run(BERTH, ['tag', 'bench/img:1', `${be}/bench/img:1`], env);
      const skPullDir = join(work, 'sk-pull');
      const steps: Record<Op, Record<Tool, () => Promise<number>>> = {
        'push (cold)': {
          skopeo: () => run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:bench`, `docker://${sk}/bench/img:1`]),
          berth: () => run(BERTH, ['push', `${be}/bench/img:1`], env),
        },
        'push (warm)': {
          skopeo: () => run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:bench`, `docker://${sk}/bench/img:1`]),
          berth: () => run(BERTH, ['push', `${be}/bench/img:1`], env),
        },
        'pull (cold)': {
          skopeo: async () => {
            await rm(skPullDir, { recursive: true, force: true });
            await mkdir(skPullDir, { recursive: true });
            await sync();
            return run('skopeo', ['copy', '--src-tls-verify=false', `docker://${sk}/bench/img:1`, `oci:${skPullDir}:bench`]);
          },
          berth: async () => {
            await rm(root, { recursive: true, force: true });
            await sync();
            return run(BERTH, ['pull', `${be}/bench/img:1`], env);
          },
        },
      };
      const order: Tool[] = round % 2 === 0 ? ['skopeo', 'berth'] : ['berth', 'skopeo'];
      for (const op of Object.keys(steps) as Op[]) {
        for (const tool of order) {
          await sync();
          times[op][tool].push(await steps[op][tool]());
        }
      }
      await Promise.all([skReg.destroy(), beReg.destroy()]);
      registries.length = 0;
    }

    process.stdout.write(`\nmedian of ${ROUNDS} rounds (each: fresh registries, tools alternate going first, sync before each step)\n`);
    process.stdout.write(`${'operation'.padEnd(14)}${'berth s'.padStart(10)}${'skopeo s'.padStart(10)}${'ratio'.padStart(8)}   runs berth | skopeo\n`);
    const results: Record<string, { berth: number; skopeo: number; runs: Record<Tool, number[]> }> = {};
    for (const [op, r] of Object.entries(times)) {
      const b = median(r.berth);
      const k = median(r.skopeo);
      results[op] = { berth: b, skopeo: k, runs: r };
      const runs = `${r.berth.map((x) => x.toFixed(2)).join(' ')} | ${r.skopeo.map((x) => x.toFixed(2)).join(' ')}`;
      process.stdout.write(`${op.padEnd(14)}${b.toFixed(2).padStart(10)}${k.toFixed(2).padStart(10)}${(b / k).toFixed(2).padStart(8)}   ${runs}\n`);
    }
    const out = new URL('./results/', import.meta.url.replace('/dist/bench/', '/bench/')).pathname;
    await mkdir(out, { recursive: true });
    await writeFile(join(out, `client-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify({ mb: MB, rounds: ROUNDS, results }, null, 2));
  } finally {
    await Promise.all(registries.map((r) => r.destroy()));
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/client: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
