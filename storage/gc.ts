// Online garbage collection of blob content no repository references any more.
// Mark: every digest linked by a repository (blob links, manifests and what they reference),
// read from LevelDB. Sweep: blob files outside that set whose mtime is older than a grace period.
// The grace period covers content committed but not yet linked (an upload between its rename and
// its link, a manifest between its bytes and its batch), the race distribution's offline GC has.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { RegistryStore } from './registry-store.js';
import { unlinkQuietly } from './durable-file.js';

export interface GcResult {
  scanned: number;
  removed: number;
  freedBytes: number;
}

export async function collectGarbage(store: RegistryStore, opts: { graceMs: number; dryRun?: boolean }): Promise<GcResult> {
  const live = await store.referencedDigests();
  const cutoff = Date.now() - opts.graceMs;
  const result: GcResult = { scanned: 0, removed: 0, freedBytes: 0 };
  const root = store.layout.blobsDir;
  for (const algorithm of await readdir(root).catch(() => [] as string[])) {
    if (algorithm !== 'sha256' && algorithm !== 'sha512') continue;
    for (const prefix of await readdir(join(root, algorithm))) {
      for (const encoded of await readdir(join(root, algorithm, prefix))) {
        result.scanned++;
        const digest = `${algorithm}:${encoded}`;
        if (live.has(digest)) continue;
        const path = join(root, algorithm, prefix, encoded);
        const st = await stat(path).catch(() => undefined);
        if (!st || st.mtimeMs > cutoff) continue;
        result.removed++;
        result.freedBytes += st.size;
        if (!opts.dryRun) await unlinkQuietly(path);
      }
    }
  }
  return result;
}
