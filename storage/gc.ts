// Online garbage collection of blob content no repository references any more.
// Mark: every digest linked by a repository (blob links, manifests and what they reference),
// read from LevelDB. Sweep: each stored blob outside that set whose content record says it was
// last committed or linked before the grace period, re-checked and deleted under the digest's
// guard. Every write that makes a digest reachable (a commit, a blob link, a mount, a manifest
// and its references) touches that record under the same guard after checking the content is
// there, so a link made after the mark is either refused (content already gone) or seen by the
// sweep's re-check; distribution's offline GC has no such protocol and needs a read-only registry.
// The grace period comes from the metadata, never from file times: a blob pushed again while
// stored keeps its old file.
import type { RegistryStore } from './registry-store.js';
import type { MarkPoint } from './registry-metadata.js';

export interface GcResult {
  scanned: number;
  removed: number;
  freedBytes: number;
}

export interface GcOptions {
  graceMs: number;
  dryRun?: boolean;
  /** Runs between mark and sweep: lets tests interleave pushes at the one moment that matters. */
  afterMark?: () => Promise<void>;
  /** Stops the sweep between two blobs (the registry is closing); what was removed stays removed. */
  signal?: AbortSignal;
}

export async function collectGarbage(store: RegistryStore, opts: GcOptions): Promise<GcResult> {
  const started = Date.now();
  const cutoff = started - opts.graceMs;
  // Before the mark: a touch the mark may not have seen (its link written after the mark's read)
  // is told apart by the write order, not by its timestamp (found by the load campaign).
  const point = await store.meta.markPoint();
  const live = await store.referencedDigests();
  await opts.afterMark?.();
  const result: GcResult = { scanned: 0, removed: 0, freedBytes: 0 };
  for await (const digest of store.blobs.list()) {
    if (opts.signal?.aborted) break;
    result.scanned++;
    if (live.has(digest)) continue;
    const freed = await removeIfUntouched(store, digest, cutoff, point, opts.dryRun === true);
    if (freed !== undefined) {
      result.removed++;
      result.freedBytes += freed;
    }
  }
  return result;
}

/**
 * Deletes the content of `digest` unless it was committed or linked at or after `cutoff`, or after
 * `point`, checked under the digest's guard (the sweep of GC and of mirror eviction). Call only
 * for a digest that no link read after `point` references. Returns the bytes freed, or undefined
 * when it was kept.
 */
export async function removeIfUntouched(store: RegistryStore, digest: string, cutoff: number, point: MarkPoint, dryRun = false): Promise<number | undefined> {
  return store.meta.exclusive(digest, async () => {
    const size = await store.blobs.stat(digest);
    if (size === undefined) return undefined;
    const record = await store.meta.getContent(digest, point);
    if (!record) {
      // Content stored before berth kept these records: its grace period starts now.
      if (!dryRun) await store.meta.touchContent(digest, size);
      return undefined;
    }
    if (record.afterMark || record.touched >= cutoff) return undefined;
    if (!dryRun) {
      await store.blobs.delete(digest);
      await store.meta.forgetContent(digest);
    }
    return size;
  });
}
