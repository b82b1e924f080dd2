// `berth builder prune`: the build cache goes. The step records (build/cache/), the layers only
// they name (blobs no image uses, and their unpacked trees no container uses), leftovers of
// interrupted builds (build/tmp/); with --all also the RUN --mount=type=cache folders.
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { StepRecord } from './cache.js';

async function sizeOf(path: string): Promise<number> {
  const st = await stat(path).catch(() => undefined);
  if (!st) return 0;
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const name of await readdir(path).catch(() => [] as string[])) total += await sizeOf(join(path, name));
  return total;
}

export async function pruneBuildCache(o: { all?: boolean }): Promise<number> {
  const [{ LocalImageStore }, { RuntimeLayout }, { dropUnpackedLayers }, { readFile }] = await Promise.all([
    import('../client/store/image-store.js'),
    import('../runtime/runtime-layout.js'),
    import('../runtime/layer-gc.js'),
    import('node:fs/promises'),
  ]);
  const store = await LocalImageStore.open();
  const dir = join(store.root, 'build');
  const layers = new Set<string>();
  let freed = 0;
  const cacheDir = join(dir, 'cache');
  for (const prefix of await readdir(cacheDir).catch(() => [] as string[])) {
    for (const name of await readdir(join(cacheDir, prefix)).catch(() => [] as string[])) {
      const path = join(cacheDir, prefix, name);
      const rec = await readFile(path, 'utf8').then((t) => JSON.parse(t) as StepRecord, () => undefined);
      if (rec?.layer) layers.add(rec.layer.digest);
      freed += await sizeOf(path);
    }
  }
  await rm(cacheDir, { recursive: true, force: true });
  const removed: string[] = [];
  await store.index.update(async (doc) => {
    const before = new Set(await Promise.all([...layers].map(async (d) => ((await store.blobs.has(d)) ? d : ''))));
    freed += await store.dropUnreferencedBlobs(doc, layers);
    for (const d of before) if (d && !(await store.blobs.has(d))) removed.push(d);
  });
  await dropUnpackedLayers(new RuntimeLayout(store.root), removed);
  for (const sub of o.all ? ['tmp', 'mounts'] : ['tmp']) {
    freed += await sizeOf(join(dir, sub));
    await rm(join(dir, sub), { recursive: true, force: true });
  }
  return freed;
}

export async function main(o: { all?: boolean; force?: boolean }): Promise<number> {
  if (!o.force) {
    const { confirm } = await import('../client/cli/confirm.js');
    if (!(await confirm(`WARNING! This will remove all ${o.all ? 'build cache, RUN cache mounts included' : 'build cache (RUN cache mounts are kept: --all removes them)'}.\nAre you sure you want to continue? [y/N] `))) return 0;
  }
  const freed = await pruneBuildCache(o);
  const { humanSize } = await import('../client/progress.js');
  process.stdout.write(`Total reclaimed space: ${humanSize(freed)}\n`);
  return 0;
}
