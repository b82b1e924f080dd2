// The metadata in LevelDB, in the data folder: the default, for one process (LevelDB locks its
// folder). One sublevel per kind of record; `\x00` separates key parts because the name and tag
// grammars exclude it, and it sorts before every allowed character, so a repository's keys form
// one contiguous range and listings iterate O(page).
//
//   repos:     <name>                          → {created}
//   tags:      <name>\0<tag>                   → manifest digest
//   manifests: <name>\0<digest>                → ManifestLink (bytes live in the blob store)
//   blobs:     <name>\0<digest>                → BlobLink: the repository may read this blob
//   referrers: <name>\0<subject>\0<digest>     → descriptor as the referrers API lists it
//   uploads:   <uuid>                          → UploadRecord
//   content:   <digest>                        → ContentRecord (GC's grace)
//   tagtime:   <name>\0<tag>                   → ms the tag was last set by a manifest PUT
//   recent:    <name>\0<inverted ms>\0<tag>    → manifest digest: the tags newest first (inverted
//              ms: 13 digits of 9999999999999 - ms, so key order is newest first)
//   meta:      'layout'                        → schema version of this data folder
//              'tagTimes'                      → 1 once tags pushed before push times were recorded
//                                                have entries (pushed 0) in tagtime and recent
//   proxy:     t\0<name>\0<tag>                → ms of a mirror's last upstream check of the tag
//              a\0<name>\0<digest>             → {at, kind}: when a mirror last served it
//   notify:    <endpoint>\0<seq, 16 hex>       → {event, attempts, notBefore}: a webhook event
//                                               not yet delivered; seq orders each endpoint's queue
//   nsrefs:    <namespace>\0<digest>           → {size, n}: n links of the namespace's repositories
//   usage:     <namespace>                     → bytes of the digests counted in the namespace
//   meta:      'namespaces'                    → the NamespaceScheme fingerprint the counters follow
import { readdir, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import { KeyedLock } from './keyed-lock.js';
import { randomHex } from './random-hex.js';
import type { Descriptor } from '../oci/manifest.js';
import { RepositoryNameIndex } from './repository-name-index.js';
import { NamespaceScheme, assertWithinQuota } from './quota.js';
import type { BlobLink, BlobLinkEntry, ContentRecord, ManifestEntry, ManifestLink, ManifestWrite, MirrorAccess, NamespaceCount, NotificationWrite, QueuedNotification, ReferrerEntry, RegistryMetadata, SearchPage, TagEntry, TagPush, TagPushCursor, UploadRecord, UsageDrift, MarkPoint } from './registry-metadata.js';

export const SEP = '\x00';
export const LAYOUT_VERSION = 1;

interface RepoRecord {
  created: string;
}

/** Links of one namespace's repositories to one digest. */
interface NamespaceRef {
  size: number;
  n: number;
}

/** A link added (+1) or removed (-1) by a write: what the namespace counters follow. */
interface LinkChange {
  name: string;
  digest: string;
  size: number;
  delta: 1 | -1;
}

type Batch = ReturnType<Level<string, unknown>['batch']>;

interface NotificationRecord {
  event: string;
  attempts: number;
  notBefore: number;
}

export function key(...parts: string[]): string {
  return parts.join(SEP);
}

/** Bounds for iterating every key that starts with `prefix` + SEP. */
export function prefixRange(...parts: string[]): { gt: string; lt: string } {
  const p = parts.join(SEP) + SEP;
  return { gt: p, lt: p + '\xff' };
}

const NEWEST = 9_999_999_999_999;

/** The `recent` key part of a push time: newest sorts first. */
function inverted(ms: number): string {
  return String(NEWEST - Math.max(0, Math.min(NEWEST, Math.floor(ms)))).padStart(13, '0');
}

export class LevelMetadata implements RegistryMetadata {
  readonly kind = 'leveldb' as const;
  readonly shared = false;
  readonly db: Level<string, unknown>;
  private readonly repos;
  private readonly tags;
  private readonly manifests;
  private readonly blobs;
  private readonly referrerIndex;
  private readonly uploads;
  private readonly content;
  private readonly layout;
  private readonly mirror;
  private readonly notify;
  /** The last sequence number of a queued notification (read at open, the highest stored). */
  private notifySeq = 0;
  private readonly tagTime;
  private readonly recent;
  private readonly nsRefs;
  private readonly usage;
  private scheme = new NamespaceScheme();
  /** The search index, loaded on the first search (start-up does not pay for it). */
  private nameIndex: RepositoryNameIndex | undefined;
  private nameIndexLoading: Promise<RepositoryNameIndex> | undefined;
  /** Names created while the index loads, merged in when it is ready. */
  private createdWhileLoading: string[] | undefined;
  private readonly locks = new KeyedLock();
  private readonly jobs = new Set<string>();
  /** Writes run one at a time (see `write`). */
  private writes: Promise<unknown> = Promise.resolve();
  /** Write order of content records (GC's mark points), per process life: see stamp(). */
  private seq = 0;
  private readonly epoch = randomHex(8);
  /** A write failed: LevelDB's log may end in a partial record; no write until it was reopened. */
  private damaged = false;

  constructor(private readonly dir: string) {
    this.db = new Level<string, unknown>(dir, { valueEncoding: 'json' });
    this.repos = this.db.sublevel<string, RepoRecord>('repos', { valueEncoding: 'json' });
    this.tags = this.db.sublevel<string, string>('tags', { valueEncoding: 'utf8' });
    this.manifests = this.db.sublevel<string, ManifestLink>('manifests', { valueEncoding: 'json' });
    this.blobs = this.db.sublevel<string, BlobLink>('blobs', { valueEncoding: 'json' });
    this.referrerIndex = this.db.sublevel<string, Descriptor>('referrers', { valueEncoding: 'json' });
    this.uploads = this.db.sublevel<string, UploadRecord>('uploads', { valueEncoding: 'json' });
    this.content = this.db.sublevel<string, ContentRecord>('content', { valueEncoding: 'json' });
    this.layout = this.db.sublevel<string, number | string>('meta', { valueEncoding: 'json' });
    this.mirror = this.db.sublevel<string, unknown>('proxy', { valueEncoding: 'json' });
    this.notify = this.db.sublevel<string, NotificationRecord>('notify', { valueEncoding: 'json' });
    this.tagTime = this.db.sublevel<string, number>('tagtime', { valueEncoding: 'json' });
    this.recent = this.db.sublevel<string, string>('recent', { valueEncoding: 'utf8' });
    this.nsRefs = this.db.sublevel<string, NamespaceRef>('nsrefs', { valueEncoding: 'json' });
    this.usage = this.db.sublevel<string, number>('usage', { valueEncoding: 'json' });
  }

  useNamespaces(scheme: NamespaceScheme): void {
    this.scheme = scheme;
  }

  async open(): Promise<void> {
    await this.db.open();
    const version = await this.layout.get('layout');
    if (version === undefined) await this.layout.put('layout', LAYOUT_VERSION);
    else if (version !== LAYOUT_VERSION) throw new Error(`data folder has layout version ${version}; this berth reads ${LAYOUT_VERSION}`);
    // Queues are short (events wait only while an endpoint is down): one pass finds the last seq.
    for await (const k of this.notify.keys()) this.notifySeq = Math.max(this.notifySeq, parseInt(k.slice(k.lastIndexOf(SEP) + 1), 16));
    if ((await this.layout.get('tagTimes')) !== 1) await this.recordTagTimes();
    // Counters made with another grouping (or before berth kept them) are recounted, once.
    if ((await this.layout.get('namespaces')) !== this.scheme.fingerprint) await this.recountUsage(true);
  }

  /**
   * Tags written before push times were recorded get push time 0 (listed last, "unknown"): one
   * pass over the tags, once per data folder, in batches (a folder without tags costs one read).
   */
  private async recordTagTimes(): Promise<void> {
    let batch = this.db.batch();
    let n = 0;
    for await (const [k, digest] of this.tags.iterator()) {
      if ((await this.tagTime.get(k)) !== undefined) continue;
      const i = k.indexOf(SEP);
      batch.put(k, 0, { sublevel: this.tagTime });
      batch.put(key(k.slice(0, i), inverted(0), k.slice(i + 1)), digest, { sublevel: this.recent });
      if (++n % 1000 === 0) {
        const full = batch;
        await this.write(() => full.write());
        batch = this.db.batch();
      }
    }
    const last = batch;
    await this.write(() => last.write());
    await this.write(() => this.layout.put('tagTimes', 1));
  }

  /** Search index upkeep: called after a write that created repository `name` succeeded. */
  private created(name: string): void {
    if (this.nameIndex) this.nameIndex.add(name);
    else this.createdWhileLoading?.push(name);
  }

  private names(): Promise<RepositoryNameIndex> {
    if (this.nameIndex) return Promise.resolve(this.nameIndex);
    this.nameIndexLoading ??= (async () => {
      const seen: string[] = [];
      this.createdWhileLoading = seen;
      try {
        const index = new RepositoryNameIndex(await this.repos.keys().all());
        for (const n of seen) index.add(n);
        this.nameIndex = index;
        return index;
      } finally {
        this.createdWhileLoading = undefined;
        this.nameIndexLoading = undefined;
      }
    })();
    return this.nameIndexLoading;
  }

  async searchRepositories(term: string, page: SearchPage): Promise<string[]> {
    return (await this.names()).search(term, page);
  }

  async countRepositories(term: string): Promise<number> {
    return (await this.names()).count(term);
  }

  async newestTags(names: string[]): Promise<Map<string, TagPush>> {
    const found = await Promise.all(names.map(async (n) => [n, (await this.recentTags(n, 1))[0]] as const));
    return new Map(found.filter((e): e is readonly [string, TagPush] => e[1] !== undefined));
  }

  async recentTags(name: string, limit: number, after?: TagPushCursor): Promise<TagPush[]> {
    if (limit <= 0) return [];
    const range = prefixRange(name);
    const entries = await this.recent.iterator({ gt: after ? key(name, inverted(after.pushed), after.tag) : range.gt, lt: range.lt, limit }).all();
    return entries.map(([k, digest]) => {
      const rest = k.slice(name.length + 1);
      return { tag: rest.slice(14), digest, pushed: NEWEST - Number(rest.slice(0, 13)) };
    });
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  /**
   * Every write goes through here, one at a time. Fix (found by the disk-full campaign): when a
   * write fails (ENOSPC), LevelDB may have written part of its record to the log, and LevelDB
   * keeps appending later records after that partial one; they are served from memory, but on the
   * next open the log reader drops everything from the partial record on (measured: 370 of 379
   * writes acknowledged after the disk had room again were gone after a reopen). A failed
   * background flush also leaves LevelDB refusing every write until it is reopened. So after a
   * failed write no other write runs until the database was closed and opened again: recovery
   * reads the log up to the partial record (every acknowledged write), stores it in a table and
   * starts a new log. One write at a time (LevelDB serialises them anyway) makes "after" exact.
   */
  private write<T>(fn: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.damaged) await this.reopen();
      try {
        return await fn();
      } catch (e) {
        if ((e as { code?: string }).code === 'LEVEL_IO_ERROR') this.damaged = true;
        throw e;
      }
    };
    const done = this.writes.then(run, run);
    this.writes = done.catch(() => undefined);
    return done;
  }

  /**
   * Reopens the database after a failed write, once its disk has room for the recovery (the log
   * replayed into a table, a new log): else the write is refused with ENOSPC and the database
   * stays open for reads. Reads arriving while it closes fail (a few milliseconds, after a disk-full).
   */
  private async reopen(): Promise<void> {
    let logs = 0;
    for (const f of await readdir(this.dir)) if (f.endsWith('.log')) logs += (await stat(join(this.dir, f)).catch(() => undefined))?.size ?? 0;
    const fs = await statfs(this.dir);
    if (fs.bavail * fs.bsize < 2 * logs + (4 << 20)) {
      throw Object.assign(new Error(`IO error: ${this.dir}: No space left on device (LevelDB waits for room to recover its log)`), { code: 'ENOSPC' });
    }
    if (this.db.status === 'open') await this.db.close();
    await this.db.open();
    // Sublevels closed with the database, and do not reopen with it.
    await Promise.all([this.repos, this.tags, this.manifests, this.blobs, this.referrerIndex, this.uploads, this.content, this.layout, this.mirror, this.notify, this.tagTime, this.recent, this.nsRefs, this.usage].map((sub) => sub.open()));
    this.damaged = false;
  }

  async repositoryExists(name: string): Promise<boolean> {
    return (await this.repos.get(name)) !== undefined;
  }

  async listRepositories(limit: number, after?: string): Promise<string[]> {
    return this.repos.keys(after ? { limit, gt: after } : { limit }).all();
  }

  async listTags(name: string, limit: number, after?: string): Promise<string[]> {
    const range = prefixRange(name);
    const keys = await this.tags.keys({ gt: after ? key(name, after) : range.gt, lt: range.lt, limit }).all();
    return keys.map((k) => k.slice(name.length + 1));
  }

  getTag(name: string, tag: string): Promise<string | undefined> {
    return this.tags.get(key(name, tag));
  }

  async deleteTag(name: string, tag: string, expect?: { digest: string; pushed?: number }): Promise<boolean> {
    const k = key(name, tag);
    // Read and write in the write queue: a concurrent PUT of the tag cannot slip in between.
    return this.write(async () => {
      const digest = await this.tags.get(k);
      if (digest === undefined) return false;
      if (expect && (digest !== expect.digest || ((await this.tagTime.get(k)) ?? 0) !== (expect.pushed ?? 0))) return false;
      const batch = this.db.batch();
      batch.del(k, { sublevel: this.tags });
      await this.forgetTagTime(batch, name, tag);
      await batch.write();
      return true;
    });
  }

  /** Adds to `batch` the removal of a tag's push time and newest-first entry. */
  private async forgetTagTime(batch: ReturnType<Level<string, unknown>['batch']>, name: string, tag: string): Promise<void> {
    const k = key(name, tag);
    const old = await this.tagTime.get(k);
    if (old === undefined) return;
    batch.del(k, { sublevel: this.tagTime });
    batch.del(key(name, inverted(old), tag), { sublevel: this.recent });
  }

  getManifest(name: string, digest: string): Promise<ManifestLink | undefined> {
    return this.manifests.get(key(name, digest));
  }

  async putManifest(w: ManifestWrite): Promise<void> {
    const batch = this.db.batch();
    const isNew = !(await this.repositoryExists(w.name));
    if (isNew) batch.put(w.name, { created: new Date().toISOString() }, { sublevel: this.repos });
    if (w.referrer && w.link.subject) batch.put(key(w.name, w.link.subject, w.digest), w.referrer, { sublevel: this.referrerIndex });
    for (const t of w.tags) batch.put(key(w.name, t), w.digest, { sublevel: this.tags });
    const stamp = this.stamp();
    for (const c of w.touched) batch.put(c.digest, { size: c.size, ...stamp }, { sublevel: this.content });
    for (const n of w.notifications ?? []) batch.put(this.notifyKey(n.endpoint), { event: n.event, attempts: 0, notBefore: 0 }, { sublevel: this.notify });
    // A tag's previous push time is read in the write queue, so two PUTs of one tag cannot both
    // keep a newest-first entry.
    await this.write(async () => {
      const now = Date.now();
      const mk = key(w.name, w.digest);
      // The namespace counters are read in the write queue too: exact, whatever runs concurrently.
      if ((await this.manifests.get(mk)) === undefined) await this.countLinks(batch, [{ name: w.name, digest: w.digest, size: w.link.size, delta: 1 }], w.quota);
      batch.put(mk, { ...w.link, pushed: now }, { sublevel: this.manifests });
      for (const t of new Set(w.tags)) {
        await this.forgetTagTime(batch, w.name, t);
        batch.put(key(w.name, t), now, { sublevel: this.tagTime });
        batch.put(key(w.name, inverted(now), t), w.digest, { sublevel: this.recent });
      }
      await batch.write();
    });
    if (isNew) this.created(w.name);
  }

  async deleteManifest(name: string, digest: string): Promise<string[] | undefined> {
    // All of it in the write queue: a tag PUT for this manifest cannot land between the listing
    // of its tags and the delete.
    return this.write(async () => {
      const link = await this.manifests.get(key(name, digest));
      if (!link) return undefined;
      const dropped: string[] = [];
      const batch = this.db.batch();
      batch.del(key(name, digest), { sublevel: this.manifests });
      if (link.subject) batch.del(key(name, link.subject, digest), { sublevel: this.referrerIndex });
      for await (const [k, d] of this.tags.iterator(prefixRange(name))) {
        if (d === digest) {
          batch.del(k, { sublevel: this.tags });
          dropped.push(k.slice(name.length + 1));
        }
      }
      for (const t of dropped) await this.forgetTagTime(batch, name, t);
      await this.countLinks(batch, [{ name, digest, size: link.size, delta: -1 }]);
      await batch.write();
      return dropped;
    });
  }

  async referencedBy(name: string, digest: string): Promise<string | undefined> {
    for await (const [k, link] of this.manifests.iterator(prefixRange(name))) if (link.refs.includes(digest)) return k.slice(name.length + 1);
    return undefined;
  }

  async referrers(name: string, subject: string): Promise<Descriptor[]> {
    return this.referrerIndex.values(prefixRange(name, subject)).all();
  }

  getBlobLink(name: string, digest: string): Promise<BlobLink | undefined> {
    return this.blobs.get(key(name, digest));
  }

  async linkBlob(name: string, digest: string, size: number, opts: { quota?: number } = {}): Promise<void> {
    const batch = this.db.batch();
    const isNew = !(await this.repositoryExists(name));
    if (isNew) batch.put(name, { created: new Date().toISOString() }, { sublevel: this.repos });
    const k = key(name, digest);
    batch.put(k, { size }, { sublevel: this.blobs });
    batch.put(digest, { size, ...this.stamp() }, { sublevel: this.content });
    await this.write(async () => {
      if ((await this.blobs.get(k)) === undefined) await this.countLinks(batch, [{ name, digest, size, delta: 1 }], opts.quota);
      await batch.write();
    });
    if (isNew) this.created(name);
  }

  async unlinkBlob(name: string, digest: string): Promise<boolean> {
    const k = key(name, digest);
    return this.write(async () => {
      const link = await this.blobs.get(k);
      if (link === undefined) return false;
      const batch = this.db.batch().del(k, { sublevel: this.blobs });
      await this.countLinks(batch, [{ name, digest, size: link.size, delta: -1 }]);
      await batch.write();
      return true;
    });
  }

  /**
   * Adds the namespace counters' side of `changes` to `batch`. Runs inside the write queue, so
   * the counters read are those every earlier write left. With `quota`, content new to the
   * namespace that would take it over the quota throws QuotaExceededError before anything is written.
   */
  private async countLinks(batch: Batch, changes: LinkChange[], quota?: number): Promise<void> {
    const byNamespace = new Map<string, number>();
    for (const c of changes) {
      const ns = this.scheme.of(c.name);
      const rk = key(ns, c.digest);
      const ref = (await this.nsRefs.get(rk)) ?? { size: c.size, n: 0 };
      const n = Math.max(0, ref.n + c.delta);
      if (ref.n === 0 && n > 0) byNamespace.set(ns, (byNamespace.get(ns) ?? 0) + c.size);
      if (ref.n > 0 && n === 0) byNamespace.set(ns, (byNamespace.get(ns) ?? 0) - ref.size);
      if (n === 0) batch.del(rk, { sublevel: this.nsRefs });
      else batch.put(rk, { size: ref.n === 0 ? c.size : ref.size, n }, { sublevel: this.nsRefs });
    }
    for (const [ns, delta] of byNamespace) {
      if (delta === 0) continue;
      const used = (await this.usage.get(ns)) ?? 0;
      assertWithinQuota(ns, used, delta, quota);
      const next = Math.max(0, used + delta);
      if (next === 0) batch.del(ns, { sublevel: this.usage });
      else batch.put(ns, next, { sublevel: this.usage });
    }
  }

  async namespaceUsage(namespace: string, digest?: string): Promise<{ usedBytes: number; holds: boolean }> {
    const [used, ref] = await Promise.all([this.usage.get(namespace), digest ? this.nsRefs.get(key(namespace, digest)) : undefined]);
    return { usedBytes: used ?? 0, holds: (ref?.n ?? 0) > 0 };
  }

  async listNamespaceUsage(): Promise<NamespaceCount[]> {
    const out: NamespaceCount[] = [];
    for await (const [namespace, usedBytes] of this.usage.iterator()) out.push({ namespace, usedBytes });
    return out;
  }

  async recountUsage(repair: boolean): Promise<UsageDrift[]> {
    // In the write queue: no link changes while the links are read and the counters replaced.
    return this.write(async () => {
      const counted = new Map<string, NamespaceRef>();
      const add = (k: string, size: number) => {
        const i = k.lastIndexOf(SEP);
        const rk = key(this.scheme.of(k.slice(0, i)), k.slice(i + 1));
        const r = counted.get(rk);
        if (r) r.n++;
        else counted.set(rk, { size, n: 1 });
      };
      for await (const [k, link] of this.blobs.iterator()) add(k, link.size);
      for await (const [k, link] of this.manifests.iterator()) add(k, link.size);
      const drift = new Map<string, UsageDrift>();
      const entry = (ns: string): UsageDrift => {
        let d = drift.get(ns);
        if (!d) drift.set(ns, (d = { namespace: ns, storedBytes: 0, countedBytes: 0, digests: 0 }));
        return d;
      };
      const nsOf = (rk: string) => rk.slice(0, rk.lastIndexOf(SEP));
      for (const [rk, r] of counted) entry(nsOf(rk)).countedBytes += r.size;
      for await (const [ns, used] of this.usage.iterator()) entry(ns).storedBytes = used;
      const seen = new Set<string>();
      for await (const [rk, r] of this.nsRefs.iterator()) {
        seen.add(rk);
        const c = counted.get(rk);
        if (!c || c.n !== r.n || c.size !== r.size) entry(nsOf(rk)).digests++;
      }
      for (const rk of counted.keys()) if (!seen.has(rk)) entry(nsOf(rk)).digests++;
      if (repair) {
        await this.nsRefs.clear();
        await this.usage.clear();
        let batch = this.db.batch();
        for (const [rk, r] of counted) {
          batch.put(rk, r, { sublevel: this.nsRefs });
          if (batch.length >= 10_000) {
            await batch.write();
            batch = this.db.batch();
          }
        }
        for (const d of drift.values()) if (d.countedBytes > 0) batch.put(d.namespace, d.countedBytes, { sublevel: this.usage });
        batch.put('namespaces', this.scheme.fingerprint, { sublevel: this.layout });
        await batch.write();
      }
      return [...drift.values()].filter((d) => d.storedBytes !== d.countedBytes || d.digests > 0);
    });
  }

  async referencedDigests(): Promise<Set<string>> {
    const live = new Set<string>();
    for await (const k of this.blobs.keys()) live.add(k.slice(k.lastIndexOf(SEP) + 1));
    for await (const [k, link] of this.manifests.iterator()) {
      live.add(k.slice(k.lastIndexOf(SEP) + 1));
      for (const r of link.refs) live.add(r);
    }
    return live;
  }

  // The listings of fsck: LevelDB iterators read ahead in small batches, never a whole range.
  async *tagEntries(name: string): AsyncIterable<TagEntry> {
    // Two ordered ranges of the same keys, read side by side; push time 0 is "unknown".
    const times = this.tagTime.iterator(prefixRange(name));
    let next = await times.next();
    try {
      for await (const [k, digest] of this.tags.iterator(prefixRange(name))) {
        while (next !== undefined && next[0] < k) next = await times.next();
        const e: TagEntry = { tag: k.slice(name.length + 1), digest };
        if (next !== undefined && next[0] === k && next[1] > 0) e.pushed = next[1];
        yield e;
      }
    } finally {
      await times.close();
    }
  }

  async *manifestEntries(name: string): AsyncIterable<ManifestEntry> {
    for await (const [k, link] of this.manifests.iterator(prefixRange(name))) yield { digest: k.slice(name.length + 1), link };
  }

  async *blobLinks(name: string): AsyncIterable<BlobLinkEntry> {
    for await (const [k, link] of this.blobs.iterator(prefixRange(name))) yield { digest: k.slice(name.length + 1), size: link.size };
  }

  async *referrerEntries(name: string): AsyncIterable<ReferrerEntry> {
    for await (const [k, descriptor] of this.referrerIndex.iterator(prefixRange(name))) {
      const [subject, digest] = k.slice(name.length + 1).split(SEP) as [string, string];
      yield { subject, digest, descriptor };
    }
  }

  async deleteReferrer(name: string, subject: string, digest: string): Promise<boolean> {
    const k = key(name, subject, digest);
    if ((await this.referrerIndex.get(k)) === undefined) return false;
    await this.write(() => this.referrerIndex.del(k));
    return true;
  }

  // LevelDB is one process's: an in-process lock per digest is exclusive everywhere. Calls for
  // different digests nest freely; a nested call for a digest already held would wait forever,
  // which the callers' sorted, de-duplicated order rules out.
  exclusive<T>(digest: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(digest, fn);
  }

  /**
   * A content record's time and place in the write order. Taken synchronously right before the
   * write is queued (writes run in queue order, see write()), so every record stamped before a
   * mark point is on disk once markPoint() has drained the queue.
   */
  private stamp(): { touched: number; seq: number; epoch: string } {
    return { touched: Date.now(), seq: ++this.seq, epoch: this.epoch };
  }

  async touchContent(digest: string, size: number): Promise<void> {
    const record = { size, ...this.stamp() };
    await this.write(() => this.content.put(digest, record));
  }

  async markPoint(): Promise<MarkPoint> {
    const seq = this.seq;
    await this.write(async () => undefined);
    return { mark: true, seq, epoch: this.epoch } as MarkPoint;
  }

  async getContent(digest: string, since?: MarkPoint): Promise<ContentRecord | undefined> {
    const r = (await this.content.get(digest)) as (ContentRecord & { seq?: number; epoch?: string }) | undefined;
    if (!r) return undefined;
    const out: ContentRecord = { size: r.size, touched: r.touched };
    if (since) {
      const p = since as MarkPoint & { seq: number; epoch: string };
      out.afterMark = r.epoch === p.epoch && (r.seq ?? 0) > p.seq;
    }
    return out;
  }

  async forgetContent(digest: string): Promise<void> {
    await this.write(() => this.content.del(digest));
  }

  async createUpload(id: string, record: UploadRecord): Promise<void> {
    await this.write(() => this.uploads.put(id, record));
  }

  getUpload(id: string): Promise<UploadRecord | undefined> {
    return this.uploads.get(id);
  }

  async updateUpload(id: string, record: UploadRecord, expectedOffset: number): Promise<boolean> {
    // Appends to one session are serialised in this process (storage/uploads.ts): the check and
    // the write cannot interleave with another update of the same record.
    const current = await this.uploads.get(id);
    if (!current || current.offset !== expectedOffset) return false;
    await this.write(() => this.uploads.put(id, record));
    return true;
  }

  async deleteUpload(id: string): Promise<void> {
    await this.write(() => this.uploads.del(id));
  }

  async *listUploads(): AsyncIterable<[string, UploadRecord]> {
    yield* this.uploads.iterator();
  }

  async getMirrorTagChecked(name: string, tag: string): Promise<number | undefined> {
    return (await this.mirror.get(key('t', name, tag))) as number | undefined;
  }

  async setMirrorTagChecked(name: string, tag: string, at: number): Promise<void> {
    await this.write(() => this.mirror.put(key('t', name, tag), at));
  }

  async touchMirrorAccess(a: MirrorAccess, at: number): Promise<void> {
    await this.write(() => this.mirror.put(key('a', a.name, a.digest), { at, kind: a.kind }));
  }

  async *mirrorUnusedSince(cutoff: number): AsyncIterable<MirrorAccess> {
    for await (const [k, v] of this.mirror.iterator(prefixRange('a'))) {
      const rec = v as { at: number; kind: MirrorAccess['kind'] };
      if (rec.at >= cutoff) continue;
      const [, name, digest] = k.split(SEP) as [string, string, string];
      yield { name, digest, kind: rec.kind };
    }
  }

  async forgetMirrorAccess(name: string, digest: string): Promise<void> {
    await this.write(() => this.mirror.del(key('a', name, digest)));
  }

  /** The next key of `endpoint`'s queue: taken synchronously, so keys follow the order of calls. */
  private notifyKey(endpoint: string): string {
    return key(endpoint, (++this.notifySeq).toString(16).padStart(16, '0'));
  }

  async enqueueNotifications(events: NotificationWrite[]): Promise<void> {
    if (events.length === 0) return;
    const batch = this.notify.batch();
    for (const n of events) batch.put(this.notifyKey(n.endpoint), { event: n.event, attempts: 0, notBefore: 0 });
    await this.write(() => batch.write());
  }

  async pendingNotifications(endpoint: string, limit: number): Promise<QueuedNotification[]> {
    const rows = await this.notify.iterator({ ...prefixRange(endpoint), limit }).all();
    return rows.map(([k, r]) => ({ endpoint, id: k.slice(endpoint.length + 1), event: r.event, attempts: r.attempts, notBefore: r.notBefore }));
  }

  async removeNotification(endpoint: string, id: string): Promise<boolean> {
    const k = key(endpoint, id);
    if ((await this.notify.get(k)) === undefined) return false;
    await this.write(() => this.notify.del(k));
    return true;
  }

  async deferNotification(endpoint: string, id: string, attempts: number, notBefore: number): Promise<void> {
    const k = key(endpoint, id);
    const r = await this.notify.get(k);
    if (r) await this.write(() => this.notify.put(k, { ...r, attempts, notBefore }));
  }

  async countNotifications(endpoint: string): Promise<number> {
    let n = 0;
    for await (const _ of this.notify.keys(prefixRange(endpoint))) n++;
    return n;
  }

  async runJob<T>(job: string, fn: () => Promise<T>): Promise<T | undefined> {
    if (this.jobs.has(job)) return undefined;
    this.jobs.add(job);
    try {
      return await fn();
    } finally {
      this.jobs.delete(job);
    }
  }
}
