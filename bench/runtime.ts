// Runtime benchmark: start-to-exit latency of `berth run --rm IMAGE true` against `runc run` on
// the same rootfs and `podman run --rm` (runc, cgroupfs), interleaved round-robin, median of
// BENCH_RUNS runs each; then layer unpack throughput against `tar -xzf` of the same layer.
// Needs root, runc and podman (Debian packages, see .ci/run). Run: node dist/bench/runtime.js
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { digestOf } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';
import { unpackLayer } from '../runtime/layer-unpack.js';
import { RuntimeLayout } from '../runtime/runtime-layout.js';
import { buildImage, busyboxLayer } from '../runtime/test-images.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
// The `berth` command as users run it (bin/berth, which runs the CLI bundle through bin/launch.cjs).
const BERTH = fileURLToPath(new URL('../../bin/berth', import.meta.url));

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

function timeOnce(cmd: string, args: string[], env?: NodeJS.ProcessEnv): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: env ?? process.env });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString()}`);
  return ms;
}

/** `n` subnets 10.200-249.x.0/24 that overlap no route of this host. */
function freeSubnets(n: number): string[] {
  const routes = spawnSync('ip', ['-4', '-o', 'route', 'show'], { encoding: 'utf8' }).stdout ?? '';
  const out: string[] = [];
  for (let b = 200; b < 250 && out.length < n; b++) if (!routes.includes(`10.${b}.`)) out.push(`10.${b}.0.0/24`);
  return out;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the runtime benchmark needs root');
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-rt-'));
  try {
    // podman names an oci: image after its path, which must be lowercase (mkdtemp's is not).
    const layoutDir = join(tmpdir(), `berth-bench-image-${process.pid}`);
    process.on('exit', () => rmSync(layoutDir, { recursive: true, force: true }));
    await buildImage(layoutDir, 'busybox', [busyboxLayer()]);
    const image = `oci:${layoutDir}:busybox`;
    const env = { ...process.env, BERTH_ROOT: join(dir, 'root') };
    const tools: { name: string; cmd: string; args: string[]; env?: NodeJS.ProcessEnv }[] = [
      { name: 'berth run --rm', cmd: BERTH, args: ['run', '--rm', image, 'true'], env },
    ];
    timeOnce(BERTH, ['run', '--rm', image, 'true'], env); // unpacks the layer once
    // The issue's form, `berth run --rm busybox true`: the same image by name from the local store.
    if (has('skopeo')) {
      const archive = join(dir, 'busybox.tar');
      spawnSync('skopeo', ['copy', `oci:${layoutDir}:busybox`, `oci-archive:${archive}:bench/busybox:latest`]);
      timeOnce(BERTH, ['load', '-i', archive], env);
      tools.push({ name: 'berth run (store)', cmd: BERTH, args: ['run', '--rm', 'bench/busybox', 'true'], env });
    }

    if (has('runc')) {
      // The same rootfs for runc: a copy of berth's unpacked layer, and runc's default spec.
      const bundle = join(dir, 'bundle');
      const layout = new RuntimeLayout(env.BERTH_ROOT);
      const [layerDir] = (await import('node:fs')).readdirSync(join(layout.layersDir, 'sha256'));
      mkdirSync(bundle);
      cpSync(join(layout.layersDir, 'sha256', layerDir!), join(bundle, 'rootfs'), { recursive: true, verbatimSymlinks: true });
      spawnSync('runc', ['spec', '--bundle', bundle]);
      const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
      spec.process.args = ['true'];
      spec.process.terminal = false;
      spec.root.readonly = false;
      writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
      tools.push({ name: 'runc run', cmd: 'runc', args: ['run', '--bundle', bundle, `berth-bench-${process.pid}`] });
    }
    if (has('podman')) {
      const P = ['--runtime', 'runc', '--cgroup-manager', 'cgroupfs'];
      const pulled = spawnSync('podman', [...P, 'pull', '-q', image], { encoding: 'utf8' });
      if (pulled.status === 0) {
        const tag = `localhost/berth-bench-${process.pid}`;
        spawnSync('podman', ['tag', pulled.stdout.trim(), tag]);
        // podman's default nofile/nproc limits exceed this host's hard limits.
        tools.push({ name: 'podman run --rm', cmd: 'podman', args: [...P, 'run', '--rm', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', tag, 'true'] });
        process.on('exit', () => spawnSync('podman', ['rmi', '-f', tag]));
      } else console.log(`podman pull failed, podman not measured: ${pulled.stderr}`);
    }
    // On a network: berth's user-defined bridge (veth, hosts file, lock) against podman's CNI
    // bridge network, each on a subnet where this host has no route; both removed at the end.
    const [berthNet, podmanNet] = freeSubnets(2);
    if (berthNet && timeOnce(BERTH, ['network', 'create', '--subnet', berthNet, 'bench-net'], env) >= 0) {
      tools.push({ name: 'berth --network', cmd: BERTH, args: ['run', '--rm', '--network', 'bench-net', image, 'true'], env });
      process.on('exit', () => spawnSync(BERTH, ['network', 'rm', 'bench-net'], { env }));
    }
    const podmanPlain = tools.find((t) => t.name === 'podman run --rm');
    if (podmanPlain && podmanNet) {
      const net = `berth-bench-${process.pid}`;
      if (spawnSync('podman', ['network', 'create', '--subnet', podmanNet, net]).status === 0) {
        tools.push({ ...podmanPlain, name: 'podman --network', args: podmanPlain.args.map((a) => (a === 'none' ? net : a)) });
        process.on('exit', () => spawnSync('podman', ['network', 'rm', '-f', net]));
      }
    }
    const times = new Map<string, number[]>(tools.map((t) => [t.name, []]));
    for (const t of tools) timeOnce(t.cmd, t.args, t.env); // warm caches
    for (let i = 0; i < RUNS; i++) for (const t of tools) times.get(t.name)!.push(timeOnce(t.cmd, t.args, t.env));
    console.log(`start-to-exit latency of \`true\`, median of ${RUNS} runs (ms):`);
    const med = new Map([...times].map(([k, v]) => [k, median(v)]));
    for (const [k, v] of med) console.log(`  ${k.padEnd(18)} ${v.toFixed(1)}`);
    if (med.has('berth --network') && med.has('podman --network')) console.log(`  ${'berth / podman, network'.padEnd(22)} ${(med.get('berth --network')! / med.get('podman --network')!).toFixed(2)}x`);
    for (const [name, label] of [['berth run --rm', 'berth (oci:)'], ['berth run (store)', 'berth (store)']] as const) {
      const b = med.get(name);
      if (b === undefined) continue;
      if (med.has('podman run --rm')) console.log(`  ${`${label} / podman`.padEnd(22)} ${(b / med.get('podman run --rm')!).toFixed(2)}x (target <= 0.6x)`);
      if (med.has('runc run')) console.log(`  ${`${label} / runc`.padEnd(22)} ${(b / med.get('runc run')!).toFixed(2)}x (target <= 2.5x)`);
    }

    // Unpack throughput: a gzip'd layer of many small and some large files (this project's node_modules).
    const src = fileURLToPath(new URL('../../node_modules/', import.meta.url));
    const tgz = join(dir, 'layer.tar.gz');
    spawnSync('tar', ['-czf', tgz, '-C', src, '.']);
    const bytes = readFileSync(tgz);
    const size = Number(spawnSync('sh', ['-c', `gzip -dc ${tgz} | wc -c`], { encoding: 'utf8' }).stdout.trim());
    const unpackTimes: number[] = [];
    const tarTimes: number[] = [];
    for (let i = 0; i < 3; i++) {
      const a = join(dir, `u-${i}`);
      mkdirSync(a);
      const t = process.hrtime.bigint();
      await unpackLayer(Readable.from([bytes]), MediaType.OciLayerGzip, digestOf(bytes), a);
      unpackTimes.push(Number(process.hrtime.bigint() - t) / 1e6);
      const c = join(dir, `t-${i}`);
      mkdirSync(c);
      tarTimes.push(timeOnce('tar', ['-xzf', tgz, '-C', c]));
      rmSync(a, { recursive: true, force: true });
      rmSync(c, { recursive: true, force: true });
    }
    const mbps = (ms: number) => (size / 1e6 / (ms / 1000)).toFixed(1);
    console.log(`layer unpack, ${(size / 1e6).toFixed(1)} MB uncompressed, median of 3 (MB/s):`);
    console.log(`  berth unpackLayer  ${mbps(median(unpackTimes))}`);
    console.log(`  tar -xzf           ${mbps(median(tarTimes))}`);
    console.log(`  berth / tar time   ${(median(unpackTimes) / median(tarTimes)).toFixed(2)}x`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
