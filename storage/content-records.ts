// When each stored blob was last committed or linked, kept in the metadata (never read from file
// times: a re-pushed blob that already exists keeps its old file), and the per-digest exclusion
// that makes "touch, then check the content is there" and GC's "re-check, then delete" atomic
// with respect to each other. This is what lets GC run online (docs/reliability.md, the GC protocol).
import type { Metadata, ContentRecord } from './metadata.js';

export class ContentRecords {
  private readonly locks = new Map<string, Promise<void>>();

  constructor(private readonly meta: Metadata) {}

  /** Runs `fn` while no other `exclusive` call for `digest` runs (in this process). */
  async exclusive<T>(digest: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(digest) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chain = prev.then(() => mine);
    this.locks.set(digest, chain);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(digest) === chain) this.locks.delete(digest);
    }
  }

  /** `exclusive` over several digests, taken in sorted order so two callers never deadlock. */
  exclusiveAll<T>(digests: Iterable<string>, fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(digests)].sort();
    const take = (i: number): Promise<T> => (i === sorted.length ? fn() : this.exclusive(sorted[i]!, () => take(i + 1)));
    return take(0);
  }

  /** Records that `digest` was committed or linked now. Call inside `exclusive(digest)`. */
  async touch(digest: string, size: number): Promise<void> {
    await this.meta.content.put(digest, { size, touched: Date.now() });
  }

  async get(digest: string): Promise<ContentRecord | undefined> {
    return this.meta.content.get(digest);
  }

  async forget(digest: string): Promise<void> {
    await this.meta.content.del(digest);
  }
}
