// Unpacked layers that nothing needs any more. The layer cache (layer-cache.ts) keeps a tree per
// layer digest, usually larger than the blob; `rmi` drops the trees of the layers it removed from
// the local store, `image prune` every tree that neither a stored image nor a container uses
// (trees unpacked for `oci:` images included: they are unpacked again when next run). There is
// no lock against a `run` of the same image starting at that moment (its layers are unpacked but
// not yet recorded in its container): that run fails to mount and can be run again; nothing
// stored is damaged, since a tree leaves the cache by rename before it is deleted.
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalImageStore } from '../client/store/image-store.js';
import { randomHex } from '../storage/random-hex.js';
import { ContainerStore } from './container-store.js';
import type { RuntimeLayout } from './runtime-layout.js';

/** Digests of every layer of every image in the local store. */
export async function storedLayerDigests(store: LocalImageStore): Promise<Set<string>> {
  const doc = await store.index.read();
  return new Set(Object.values(doc.images).flatMap((img) => (img.layers ?? []).map((l) => l.digest)));
}

/** Digests of the layers in the cache. */
async function cachedLayerDigests(layout: RuntimeLayout): Promise<string[]> {
  const out: string[] = [];
  for (const alg of await readdir(layout.layersDir).catch(() => [] as string[])) {
    if (alg === 'tmp') continue;
    for (const hex of await readdir(join(layout.layersDir, alg)).catch(() => [] as string[])) out.push(`${alg}:${hex}`);
  }
  return out;
}

/**
 * Removes the unpacked trees of `digests` (default: every cached layer not in the local store)
 * that no container, running or stopped, has as a lower layer. Returns how many went.
 */
export async function dropUnpackedLayers(layout: RuntimeLayout, digests?: Iterable<string>): Promise<number> {
  let candidates: Iterable<string>;
  if (digests) {
    candidates = digests;
  } else {
    const stored = await storedLayerDigests(await LocalImageStore.open(layout.root));
    candidates = (await cachedLayerDigests(layout)).filter((d) => !stored.has(d));
  }
  const containers = new ContainerStore(layout);
  const inUse = new Set<string>();
  for (const id of await containers.ids()) {
    const c = await containers.config(id).catch(() => undefined);
    for (const dir of c?.helper.lower ?? []) inUse.add(dir);
  }
  let removed = 0;
  for (const digest of candidates) {
    const dir = layout.layerDir(digest);
    if (inUse.has(dir)) continue;
    // Moved out of the cache first, so a `run` never finds a half-deleted tree: it unpacks afresh.
    await mkdir(layout.layersTmpDir, { recursive: true });
    const doomed = join(layout.layersTmpDir, `gc-${randomHex(8)}`);
    try {
      await rename(dir, doomed);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    await rm(doomed, { recursive: true, force: true });
    removed++;
  }
  return removed;
}
