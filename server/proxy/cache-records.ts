// What the mirror remembers besides the content: when each tag was last checked upstream, and when
// each cached manifest or blob was last served (for eviction). One LevelDB sublevel, `proxy`:
//   t\0<name>\0<tag>     → ms of the last upstream check of the tag
//   a\0<name>\0<digest>  → { at: ms of the last use, kind }
import type { RegistryStore } from '../../storage/registry-store.js';
import { LevelMetadata, SEP } from '../../storage/level-metadata.js';

export type CachedKind = 'manifest' | 'blob';
interface AccessRecord {
  at: number;
  kind: CachedKind;
}

export class CacheRecords {
  private readonly db;
  /** Last time each access record was written: a hot blob is not rewritten on every pull. */
  private readonly lastWrite = new Map<string, number>();
  private readonly throttleMs: number;

  constructor(store: RegistryStore, evictAfterMs: number) {
    // The mirror's records are LevelDB's for now: `berth serve` refuses --proxy-remote-url with
    // shared (PostgreSQL) metadata at start (server/serve.ts).
    if (!(store.meta instanceof LevelMetadata)) throw new Error('the pull-through mirror needs the default LevelDB metadata');
    this.db = store.meta.db.sublevel<string, unknown>('proxy', { valueEncoding: 'json' });
    this.throttleMs = Math.min(60_000, evictAfterMs / 10);
  }

  async tagCheckedAt(name: string, tag: string): Promise<number | undefined> {
    return (await this.db.get(['t', name, tag].join(SEP))) as number | undefined;
  }

  async tagChecked(name: string, tag: string, at = Date.now()): Promise<void> {
    await this.db.put(['t', name, tag].join(SEP), at);
  }

  async touch(name: string, digest: string, kind: CachedKind, at = Date.now()): Promise<void> {
    const k = ['a', name, digest].join(SEP);
    if (at - (this.lastWrite.get(k) ?? 0) < this.throttleMs) return;
    if (this.lastWrite.size > 100_000) this.lastWrite.clear();
    this.lastWrite.set(k, at);
    await this.db.put(k, { at, kind } satisfies AccessRecord);
  }

  /** Records last used before `cutoff`. */
  async *unusedSince(cutoff: number): AsyncGenerator<{ name: string; digest: string; kind: CachedKind }> {
    const p = 'a' + SEP;
    for await (const [k, v] of this.db.iterator({ gt: p, lt: p + '\xff' })) {
      const rec = v as AccessRecord;
      if (rec.at >= cutoff) continue;
      const [, name, digest] = k.split(SEP) as [string, string, string];
      yield { name, digest, kind: rec.kind };
    }
  }

  async forget(name: string, digest: string): Promise<void> {
    const k = ['a', name, digest].join(SEP);
    this.lastWrite.delete(k);
    await this.db.del(k);
  }
}
