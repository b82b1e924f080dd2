// The layer cache: each layer is unpacked once per blob digest into <root>/layers/<alg>/<hex> and
// shared by every image and container using it. Unpacking goes to a temp dir renamed into place,
// so a reader never sees a half-unpacked layer and concurrent unpackers of one digest do not clash.
import { randomHex } from '../storage/random-hex.js';
import { access, mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fsyncDir } from '../storage/durable-file.js';
import type { Layer } from '../oci/image.js';
import type { RuntimeLayout } from './runtime-layout.js';

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Returns the unpacked directory of `layer`, unpacking it first if it is not cached. */
export async function ensureLayer(layout: RuntimeLayout, layer: Layer): Promise<string> {
  const dir = layout.layerDir(layer.digest);
  if (await exists(dir)) return dir;
  // Only a cache miss pays for the tar code and the native addon.
  const { unpackLayer } = await import('./layer-unpack.js');
  await mkdir(layout.layersTmpDir, { recursive: true });
  const tmp = join(layout.layersTmpDir, randomHex(8));
  await mkdir(tmp, { mode: 0o755 });
  try {
    await unpackLayer(await layer.open(), layer.mediaType, layer.digest, tmp);
    await mkdir(dirname(dir), { recursive: true });
    await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
      // Another process unpacked the same digest first: theirs is as good as ours.
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
      await rm(tmp, { recursive: true, force: true });
    });
    await fsyncDir(dirname(dir));
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  return dir;
}

/** Unpacks (if needed) every layer; returns overlay lower dirs, topmost first as overlayfs wants. */
export async function ensureLayers(layout: RuntimeLayout, layers: readonly Layer[]): Promise<string[]> {
  const dirs: string[] = [];
  for (const l of layers) dirs.push(await ensureLayer(layout, l));
  return dirs.reverse();
}

/**
 * A layer unpacked while it was written (berth build): an empty temp dir to unpack into, then
 * `commit(digest)` renames it into the cache under the digest the writer computed (or drops it
 * when that layer is there already), `abort()` drops it.
 */
export async function unpackingLayer(layout: RuntimeLayout): Promise<{ dir: string; commit(digest: string): Promise<void>; abort(): Promise<void> }> {
  await mkdir(layout.layersTmpDir, { recursive: true });
  const tmp = join(layout.layersTmpDir, randomHex(8));
  await mkdir(tmp, { mode: 0o755 });
  return {
    dir: tmp,
    async commit(digest) {
      const dir = layout.layerDir(digest);
      if (await exists(dir)) return void (await rm(tmp, { recursive: true, force: true }));
      await mkdir(dirname(dir), { recursive: true });
      await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
        await rm(tmp, { recursive: true, force: true });
      });
    },
    abort: () => rm(tmp, { recursive: true, force: true }),
  };
}
