// What the mirror remembers besides the content: when each tag was last checked upstream, and when
// each cached manifest or blob was last served (for eviction). Kept in the registry's metadata
// (RegistryMetadata's mirror records: LevelDB's `proxy` sublevel, or PostgreSQL tables shared by
// every replica).
import type { RegistryStore } from '../../storage/registry-store.js';
import type { MirrorAccess } from '../../storage/registry-metadata.js';

export type CachedKind = MirrorAccess['kind'];

export class CacheRecords {
  /** Last time each access record was written: a hot blob is not rewritten on every pull. */
  private readonly lastWrite = new Map<string, number>();
  private readonly throttleMs: number;

  constructor(
    private readonly store: RegistryStore,
    evictAfterMs: number,
  ) {
    this.throttleMs = Math.min(60_000, evictAfterMs / 10);
  }

  tagCheckedAt(name: string, tag: string): Promise<number | undefined> {
    return this.store.meta.getMirrorTagChecked(name, tag);
  }

  async tagChecked(name: string, tag: string, at = Date.now()): Promise<void> {
    await this.store.meta.setMirrorTagChecked(name, tag, at);
  }

  async touch(name: string, digest: string, kind: CachedKind, at = Date.now()): Promise<void> {
    const k = `${name}@${digest}`;
    if (at - (this.lastWrite.get(k) ?? 0) < this.throttleMs) return;
    if (this.lastWrite.size > 100_000) this.lastWrite.clear();
    this.lastWrite.set(k, at);
    await this.store.meta.touchMirrorAccess({ name, digest, kind }, at);
  }

  /** Records last used before `cutoff`. */
  unusedSince(cutoff: number): AsyncIterable<MirrorAccess> {
    return this.store.meta.mirrorUnusedSince(cutoff);
  }

  async forget(name: string, digest: string): Promise<void> {
    this.lastWrite.delete(`${name}@${digest}`);
    await this.store.meta.forgetMirrorAccess(name, digest);
  }
}
