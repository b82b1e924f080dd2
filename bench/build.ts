// `berth build` against `buildah bud --isolation chroot --layers` (Debian's, overlay storage in its
// own root) on one 10-instruction Dockerfile: two stages, 3 RUN, 4 COPY reading a 50 MB tree
// (half text-like files, half incompressible bytes, 400 files in 20 folders: `deps/`, 19 folders,
// copied early as dependencies are, and `src/`, one folder, copied last as sources are), from an
// offline busybox-static base in an OCI layout. Four cases per round, in this order, with fresh
// storage for each tool at the start of the round: cold build; fully cached rebuild; rebuild
// after one file of src/ changed (its COPY and the RUN after it run again: the edit-and-rebuild
// loop); rebuild after one file of deps/ changed (the first COPY of each stage and every later
// step run again). Rounds alternate which tool goes first; medians, min-max and the ratio
// berth / buildah per case.
// Needs root and buildah. Run: node dist/bench/build.js   (BENCH_ROUNDS=5 by default)
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildImage, busyboxLayer } from '../runtime/test-images.js';
import { withHistory } from '../build/testing/base-history.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const BERTH = fileURLToPath(new URL('../../bin/berth', import.meta.url));
const CASES = ['cold', 'cached', 'one src file changed', 'one deps file changed'] as const;
type Case = (typeof CASES)[number];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env, cwd });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString().slice(-2000)}`);
  return ms;
}

/** The 50 MB tree: 20 folders × 20 files of 128 KiB (deps/pkg0-18, src/), every other one text-like, the rest random. */
function writeTree(root: string): void {
  const line = (i: number) => `export function handler${i}(req, res) { return res.send({ id: ${i}, ok: true, items: [${i}, ${i * 7}, ${i * 13}] }); }\n`;
  let text = '';
  for (let i = 0; text.length < 128 << 10; i++) text += line(i);
  for (let d = 0; d < 20; d++) {
    const folder = d < 19 ? join(root, 'deps', `pkg${d}`) : join(root, 'src');
    mkdirSync(folder, { recursive: true });
    for (let f = 0; f < 20; f++) {
      const body = (d * 20 + f) % 2 === 0 ? Buffer.from(`// ${d}/${f}\n${text}`).subarray(0, 128 << 10) : randomBytes(128 << 10);
      writeFileSync(join(folder, `file${f}.${(d * 20 + f) % 2 === 0 ? 'js' : 'bin'}`), body);
    }
  }
}

function dockerfile(layout: string): string {
  return [
    `FROM oci:${layout}:busybox AS build`,
    'COPY tree/deps /deps/',
    'RUN cat /deps/pkg0/*.js | wc -c > /deps/size.txt && mkdir -p /out && cp -r /deps/pkg1 /out/',
    `FROM oci:${layout}:busybox`,
    'COPY tree/deps /app/deps/',
    'COPY --from=build /out /app/out/',
    'RUN echo built > /app/built.txt && rm -r /app/deps/pkg3',
    'COPY tree/src /app/src/',
    'RUN ls -R /app/src > /app/listing.txt',
    'CMD ["cat", "/app/built.txt"]',
    '',
  ].join('\n');
}

function main(): void {
  if (process.getuid?.() !== 0) throw new Error('the build benchmark needs root');
  if (spawnSync('buildah', ['--version']).status !== 0) throw new Error('buildah is not installed (apt-get install buildah)');
  // Lower case: buildah reads `oci:PATH` in a multi-stage FROM as a name, which must be.
  const dir = join(tmpdir(), `berth-bench-build-${randomBytes(4).toString('hex')}`);
  mkdirSync(dir);
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  process.on('exit', cleanup);
  const times: Record<'berth' | 'buildah', Record<Case, number[]>> = {
    berth: { cold: [], cached: [], 'one src file changed': [], 'one deps file changed': [] },
    buildah: { cold: [], cached: [], 'one src file changed': [], 'one deps file changed': [] },
  };
  return void (async () => {
    const layout = join(dir, 'layout');
    await buildImage(layout, 'busybox', [busyboxLayer()]);
    await withHistory(layout); // buildah wants a history entry per layer
    const ctx = join(dir, 'ctx');
    writeTree(join(ctx, 'tree'));
    writeFileSync(join(ctx, 'Dockerfile'), dockerfile(layout));
    const srcFile = join(ctx, 'tree', 'src', 'file4.js');
    const depsFile = join(ctx, 'tree', 'deps', 'pkg7', 'file4.js');
    const env = { ...process.env, CONTAINERS_REGISTRIES_CONF: '/dev/null' };
    console.log(`berth build vs buildah bud (chroot, overlay, --layers): 10 instructions, 3 RUN, 4 COPY from a 50 MB tree; ${ROUNDS} rounds`);
    for (let round = 0; round < ROUNDS; round++) {
      const tools = round % 2 === 0 ? (['berth', 'buildah'] as const) : (['buildah', 'berth'] as const);
      for (const tool of tools) {
        const root = join(dir, `${tool}-${round}`);
        const build = () =>
          tool === 'berth'
            ? timed(BERTH, ['build', '-q', '-t', 'bench/build:1', ctx], { ...env, BERTH_ROOT: root }, ctx)
            : timed('buildah', ['--root', join(root, 'root'), '--runroot', join(root, 'run'), '--storage-driver', 'overlay', 'bud', '--isolation', 'chroot', '--layers', '-q', '-t', 'localhost/bench/build:1', ctx], env, ctx);
        // Both tools see the same tree for each case.
        writeFileSync(srcFile, `// round ${round}\n`);
        writeFileSync(depsFile, `// round ${round}\n`);
        times[tool].cold.push(build());
        times[tool].cached.push(build());
        writeFileSync(srcFile, `// round ${round}, changed\n`);
        times[tool]['one src file changed'].push(build());
        writeFileSync(depsFile, `// round ${round}, changed\n`);
        times[tool]['one deps file changed'].push(build());
        if (tool === 'buildah') spawnSync('buildah', ['--root', join(root, 'root'), '--runroot', join(root, 'run'), '--storage-driver', 'overlay', 'rmi', '-a', '-f'], { stdio: 'ignore', env });
        rmSync(root, { recursive: true, force: true });
      }
      process.stdout.write(`round ${round + 1}/${ROUNDS}: ${CASES.map((c) => `${c} berth ${times.berth[c].at(-1)!.toFixed(0)} ms, buildah ${times.buildah[c].at(-1)!.toFixed(0)} ms`).join('; ')}\n`);
    }
    console.log('\n| case | berth median (min-max) | buildah median (min-max) | berth / buildah |');
    console.log('| --- | --- | --- | --- |');
    for (const c of CASES) {
      const b = times.berth[c];
      const h = times.buildah[c];
      const fmt = (xs: number[]) => `${median(xs).toFixed(0)} ms (${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)})`;
      console.log(`| ${c} | ${fmt(b)} | ${fmt(h)} | ${(median(b) / median(h)).toFixed(2)} |`);
    }
  })().catch((e: Error) => {
    console.error(e.message);
    process.exitCode = 1;
  });
}

main();
