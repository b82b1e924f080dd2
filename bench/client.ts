// berth push/pull against `skopeo copy` in the same run: a 3-layer image of random bytes
// (~BENCH_CLIENT_MB MB, default 300) to and from in-process Berth registries on loopback.
//   npm run build && node dist/bench/client.js
// Cold push: each tool into a fresh registry. Warm push: the same again (every blob is there).
// Pull: each tool from the registry into an empty destination (berth: a fresh BERTH_ROOT;
// skopeo: an OCI layout directory).
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestRegistry, type TestRegistry } from '../server/testing.js';
import { buildImage } from '../client/testing/peers.js';

const BERTH = new URL('../bin/berth.js', import.meta.url).pathname;
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

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'berth-bench-client-'));
  const registries: TestRegistry[] = [];
  try {
    process.stdout.write(`building a 3-layer image of ${MB} MB with umoci…\n`);
    // busybox plus two random layers; the third layer is most of the bytes.
    const layout = await buildImage(work, 'bench', { extraLayers: 2, layerBytes: Math.floor((MB * 1e6) / 2) });
    const [skReg, beReg] = await Promise.all([startTestRegistry(), startTestRegistry()]);
    registries.push(skReg, beReg);
    const sk = new URL(skReg.url).host;
    const be = new URL(beReg.url).host;
    const root = join(work, 'berth-root');
    const env = { BERTH_ROOT: root, BERTH_CONFIG: join(work, 'daemon.json'), HOME: work };
    await writeFile(env.BERTH_CONFIG, '{}');

    const results: Record<string, { berth: number; skopeo: number }> = {};
    // Cold push. berth needs the image in its store first: loaded from an OCI archive (not timed).
    await run('skopeo', ['copy', `oci:${layout}:bench`, `oci-archive:${join(work, 'img.tar')}:bench/img:1`]);
    await run(process.execPath, [BERTH, 'load', '-i', join(work, 'img.tar')], env);
    await run(process.execPath, [BERTH, 'tag', 'bench/img:1', `${be}/bench/img:1`], env);
    const skPush = await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:bench`, `docker://${sk}/bench/img:1`]);
    const bePush = await run(process.execPath, [BERTH, 'push', `${be}/bench/img:1`], env);
    results['push (cold)'] = { berth: bePush, skopeo: skPush };
    const skWarm = await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:bench`, `docker://${sk}/bench/img:1`]);
    const beWarm = await run(process.execPath, [BERTH, 'push', `${be}/bench/img:1`], env);
    results['push (warm)'] = { berth: beWarm, skopeo: skWarm };

    // Pull into empty destinations.
    await rm(root, { recursive: true, force: true });
    await mkdir(join(work, 'sk-pull'), { recursive: true });
    const skPull = await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${sk}/bench/img:1`, `oci:${join(work, 'sk-pull')}:bench`]);
    const bePull = await run(process.execPath, [BERTH, 'pull', `${be}/bench/img:1`], env);
    results['pull (cold)'] = { berth: bePull, skopeo: skPull };

    process.stdout.write(`\n${'operation'.padEnd(14)}${'berth s'.padStart(10)}${'skopeo s'.padStart(10)}${'ratio'.padStart(8)}\n`);
    for (const [op, r] of Object.entries(results)) {
      process.stdout.write(`${op.padEnd(14)}${r.berth.toFixed(2).padStart(10)}${r.skopeo.toFixed(2).padStart(10)}${(r.berth / r.skopeo).toFixed(2).padStart(8)}\n`);
    }
    const out = new URL('./results/', import.meta.url.replace('/dist/bench/', '/bench/')).pathname;
    await mkdir(out, { recursive: true });
    await writeFile(join(out, `client-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify({ mb: MB, results }, null, 2));
  } finally {
    await Promise.all(registries.map((r) => r.destroy()));
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/client: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
