// Repository-level view of the store: which repository holds which manifests, tags and blobs.
// Every write that changes what a repository contains is one atomic step of the metadata backend
// (storage/registry-metadata.ts: LevelDB by default, PostgreSQL for many replicas).
import type { BlobLink, ManifestLink, NotificationWrite, RegistryMetadata } from './registry-metadata.js';
import { LevelMetadata } from './level-metadata.js';
import type { BlobDriver, ByteSource, CommitGuard } from './blob-driver.js';
import { FsBlobDriver } from './drivers/fs.js';
import { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { unlinkQuietly } from './durable-file.js';
import { UploadSessions } from './uploads.js';
import { DataLayout } from './layout.js';
import { LruCache } from './lru-cache.js';
import { RegistryError } from '../oci/errors.js';
import { digestOf, parseDigest, looksLikeDigest, type DigestAlgorithm } from '../oci/digest.js';
import { parseManifest, type Descriptor } from '../oci/manifest.js';
import { MediaType } from '../oci/media-types.js';
import { assertRepositoryName, isValidTag } from '../oci/names.js';
import { Quotas, QuotaExceededError, assertWithinQuota, type NamespaceUsage } from './quota.js';

export interface StoredManifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

export interface Page<T> {
  items: T[];
  /** The last item, when more follow: the `last` of the next page. */
  next?: string;
}

export interface RegistryStoreOptions {
  /** Bytes of manifest content kept in memory: manifests are immutable, so the cache never goes stale. */
  manifestCacheBytes?: number;
  /** The metadata backend; LevelDB in `<root>/meta` by default. */
  metadata?: RegistryMetadata;
  /** The blob driver, given the commit guard it must call; files in `<root>` by default. */
  blobDriver?: (guard: CommitGuard) => BlobDriver;
  /** Namespaces and their limits (storage/quota.ts); usage is counted per first path segment without. */
  quotas?: Quotas;
}

/** Cache key of a (repository, tag or digest) pair: NUL is in neither grammar. */
function ck(name: string, ref: string): string {
  return `${name}\0${ref}`;
}

export class RegistryStore {
  readonly layout: DataLayout;
  readonly meta: RegistryMetadata;
  readonly blobs: BlobDriver;
  readonly uploads: UploadSessions;
  readonly quotas: Quotas;
  private readonly manifestBytes: LruCache<string, Buffer>;
  // Tag and link lookups are cached only when this process is the metadata's one writer (LevelDB
  // holds its lock): every write passes through here and invalidates them. With shared metadata
  // another replica may move a tag at any moment, so nothing is cached.
  private readonly tagCache: LruCache<string, string> | undefined;
  private readonly linkCache: LruCache<string, ManifestLink> | undefined;
  /** When this process last refused a push into each repository for its quota (ms): sessions opened before are refused too. */
  private readonly refusedAt = new LruCache<string, number>(10_000);

  constructor(root: string, opts: RegistryStoreOptions = {}) {
    this.layout = new DataLayout(root);
    this.meta = opts.metadata ?? new LevelMetadata(this.layout.metaDir);
    this.quotas = opts.quotas ?? new Quotas();
    this.meta.useNamespaces(this.quotas.scheme);
    if (!this.meta.shared) {
      this.tagCache = new LruCache(50_000);
      this.linkCache = new LruCache(50_000);
    }
    const guard: CommitGuard = {
      committing: (digest, size, place) =>
        this.meta.exclusive(digest, async () => {
          await this.meta.touchContent(digest, size);
          await place();
        }),
    };
    this.blobs = opts.blobDriver ? opts.blobDriver(guard) : new FsBlobDriver(this.layout, guard);
    this.uploads = new UploadSessions(this.meta, this.blobs, {
      admit: async (name, digest, size, started) => {
        await this.assertNotRefused(name, started);
        await this.admit(name, digest, size);
      },
      link: async (name, digest, size, started) => {
        await this.assertNotRefused(name, started);
        await this.meta.linkBlob(name, digest, size, this.quotaOf(name));
      },
      refused: async (name) => void (await this.releaseRefusedPush(name)),
    });
    this.manifestBytes = new LruCache(opts.manifestCacheBytes ?? 64 << 20, (b) => b.length);
  }

  async open(): Promise<void> {
    await this.blobs.open();
    await this.meta.open();
    // Fix: temp files of ingests cut off by a crash were never removed. With LevelDB's lock held,
    // no other process writes into tmp/, so all go; a folder shared by replicas (PostgreSQL
    // metadata) keeps what another replica may still be writing: only day-old files go.
    try {
      // tmp/ holds local temp files whatever the driver (a mirror downloads there before storing).
      await mkdir(this.layout.tmpDir, { recursive: true });
      if (this.blobs instanceof FsBlobDriver) await this.blobs.store.removeStaleTempFiles(this.meta.shared ? 24 * 3600 * 1000 : 0);
    } catch (e) {
      await this.meta.close().catch(() => undefined);
      throw e;
    }
  }

  async hasBlob(digest: string): Promise<boolean> {
    return (await this.blobs.stat(digest)) !== undefined;
  }

  /** Stores small content held in memory (manifests, configs); `guardHeld` as PutExpectation's. */
  putBytes(bytes: Buffer, algorithm: DigestAlgorithm = 'sha256', opts: { guardHeld?: boolean } = {}): Promise<{ digest: string; size: number }> {
    return this.blobs.put([bytes], { digest: digestOf(bytes, algorithm), size: bytes.length, ...(opts.guardHeld ? { guardHeld: true } : {}) });
  }

  /**
   * Makes a verified, fsync'd local file (a mirror's download in `<data>/tmp`) the blob `digest`
   * linked into `name`: renamed into place on fs, uploaded (and the file removed) on other
   * drivers. Readers holding the file open keep reading it either way.
   */
  async commitLocalFile(name: string, path: string, digest: string, size: number): Promise<void> {
    const afterCommit = (stored: number): Promise<void> => this.meta.linkBlob(name, digest, stored);
    if (this.blobs instanceof FsBlobDriver) {
      await this.blobs.store.commitFile(path, digest, size, { afterCommit });
      return;
    }
    try {
      await this.blobs.put(createReadStream(path, { highWaterMark: 1 << 20 }), { digest, size, afterCommit });
    } finally {
      await unlinkQuietly(path);
    }
  }

  /**
   * Stores a blob pushed whole and links it into `name`, the link made inside the commit guard.
   * With a quota and a declared size, a blob that cannot fit is refused before a byte is stored.
   */
  async putBlob(name: string, source: ByteSource, expect: { digest: string; size?: number; limit?: number }): Promise<{ digest: string; size: number }> {
    return this.releasingRefused(name, async () => {
      if (expect.size !== undefined) await this.admit(name, expect.digest, expect.size);
      return this.blobs.put(source, { ...expect, afterCommit: (size) => this.meta.linkBlob(name, expect.digest, size, this.quotaOf(name)) });
    });
  }

  // ---- quotas --------------------------------------------------------------------------------

  private quotaOf(name: string): { quota?: number } {
    const quota = this.quotas.limitFor(name);
    return quota === undefined ? {} : { quota };
  }

  /**
   * Refuses (QuotaExceededError: DENIED) content of `size` bytes that `name`'s namespace does not
   * hold yet and cannot take, before it is stored. A check ahead of the write, so a refused push
   * leaves no content behind; the write itself checks again, atomically with the link.
   */
  async admit(name: string, digest: string, size: number): Promise<void> {
    const limit = this.quotas.limitFor(name);
    if (limit === undefined) return;
    const ns = this.quotas.namespaceOf(name);
    const { usedBytes, holds } = await this.meta.namespaceUsage(ns, digest);
    if (!holds) assertWithinQuota(ns, usedBytes, size, limit);
  }

  /**
   * A push refused for its quota leaves nothing behind (docs/server.md#quotas). A client pushes
   * the layers of an image first, each its own upload, then the manifest; the registry cannot tell
   * which earlier uploads belong to the push refused now, so the refusal releases what no manifest
   * of `name` holds: open upload sessions of `name` are ended, sessions opened before the refusal
   * and completing later are refused (in this process), and blob links of `name` that no manifest
   * of `name` references are removed (their content is left to GC). A concurrent push into the
   * same repository, while its namespace is at its quota, is refused with it.
   */
  async releaseRefusedPush(name: string): Promise<{ sessions: number; unlinked: number }> {
    this.refusedAt.set(name, Date.now());
    const sessions = await this.uploads.abandon(name);
    const referenced = new Set<string>();
    for await (const m of this.meta.manifestEntries(name)) {
      referenced.add(m.digest);
      for (const r of m.link.refs) referenced.add(r);
    }
    const orphans: string[] = [];
    for await (const b of this.meta.blobLinks(name)) if (!referenced.has(b.digest)) orphans.push(b.digest);
    let unlinked = 0;
    for (const digest of orphans) {
      // Under the digest's guard: a manifest PUT that references it either landed (kept) or will
      // find it unlinked (MANIFEST_BLOB_UNKNOWN).
      const removed = await this.meta.exclusive(digest, async () => (await this.meta.referencedBy(name, digest)) === undefined && this.meta.unlinkBlob(name, digest));
      if (removed) unlinked++;
    }
    return { sessions, unlinked };
  }

  /** Runs a push step of `name`; a quota refusal releases the rest of the push before it is rethrown. */
  private async releasingRefused<T>(name: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof QuotaExceededError) await this.releaseRefusedPush(name);
      throw e;
    }
  }

  /** A session of a push refused after it started is refused too (its other layers were released). */
  private async assertNotRefused(name: string, started: string): Promise<void> {
    const refused = this.refusedAt.get(name);
    if (refused === undefined || Date.parse(started) > refused) return;
    const ns = this.quotas.namespaceOf(name);
    throw new RegistryError('DENIED', `quota exceeded for namespace "${ns}": ${this.quotas.limitOf(ns) ?? 0} bytes (a push into ${name} was refused meanwhile: this upload was part of it, push again)`, {
      detail: { namespace: ns },
    });
  }

  /**
   * Usage of every namespace with content or a configured quota, in byte order, with its limit
   * (the web UI and the metrics show it). One read of the counters: never a walk of the store.
   */
  async quotaUsage(): Promise<NamespaceUsage[]> {
    const counted = new Map((await this.meta.listNamespaceUsage()).map((c) => [c.namespace, c.usedBytes]));
    for (const ns of this.quotas.configured()) if (!counted.has(ns)) counted.set(ns, 0);
    return [...counted.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([namespace, usedBytes]) => {
        const limit = this.quotas.limitOf(namespace);
        return limit === undefined ? { namespace, usedBytes } : { namespace, usedBytes, limitBytes: limit };
      });
  }

  /** The usage of the namespace `name` belongs to. */
  async namespaceUsageOf(name: string): Promise<NamespaceUsage> {
    const namespace = this.quotas.namespaceOf(name);
    const { usedBytes } = await this.meta.namespaceUsage(namespace);
    const limit = this.quotas.limitOf(namespace);
    return limit === undefined ? { namespace, usedBytes } : { namespace, usedBytes, limitBytes: limit };
  }

  /** A small blob (a manifest) whole. */
  async readAll(digest: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of await this.blobs.read(digest)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  async close(): Promise<void> {
    await this.meta.close();
    await this.blobs.close();
  }

  // ---- repositories ------------------------------------------------------------------------

  repositoryExists(name: string): Promise<boolean> {
    return this.meta.repositoryExists(name);
  }

  async listRepositories(n: number, last?: string): Promise<Page<string>> {
    return paginate(await this.meta.listRepositories(n + 1, last || undefined), n);
  }

  // ---- tags ----------------------------------------------------------------------------------

  async listTags(name: string, n: number, last?: string): Promise<Page<string>> {
    if (!(await this.repositoryExists(name))) throw new RegistryError('NAME_UNKNOWN', `repository ${name} is not known to this registry`);
    return paginate(await this.meta.listTags(name, n + 1, last || undefined), n);
  }

  async resolveTag(name: string, tag: string): Promise<string | undefined> {
    const k = ck(name, tag);
    const cached = this.tagCache?.get(k);
    if (cached) return cached;
    const digest = await this.meta.getTag(name, tag);
    if (digest) this.tagCache?.set(k, digest);
    return digest;
  }

  async deleteTag(name: string, tag: string): Promise<void> {
    if (!(await this.meta.deleteTag(name, tag))) throw new RegistryError('MANIFEST_UNKNOWN', `tag ${tag} is not in repository ${name}`);
    this.tagCache?.delete(ck(name, tag));
  }

  /** Compare-and-delete (retention): false when the tag is gone or no longer `expect` (pushed again since). */
  async deleteTagIf(name: string, tag: string, expect: { digest: string; pushed?: number }): Promise<boolean> {
    const removed = await this.meta.deleteTag(name, tag, expect);
    this.tagCache?.delete(ck(name, tag));
    return removed;
  }

  // ---- manifests -----------------------------------------------------------------------------

  /** Resolves a tag or digest to the manifest's digest in `name`, or undefined. */
  async resolve(name: string, reference: string): Promise<string | undefined> {
    if (looksLikeDigest(reference)) {
      parseDigest(reference);
      return (await this.manifestLink(name, reference)) ? reference : undefined;
    }
    if (!isValidTag(reference)) throw new RegistryError('TAG_INVALID', `invalid tag ${JSON.stringify(reference.slice(0, 200))}: must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`, { status: 400 });
    return this.resolveTag(name, reference);
  }

  async manifestLink(name: string, digest: string): Promise<ManifestLink | undefined> {
    const k = ck(name, digest);
    const cached = this.linkCache?.get(k);
    if (cached) return cached;
    const link = await this.meta.getManifest(name, digest);
    if (link) this.linkCache?.set(k, link);
    return link;
  }

  /** The manifest `reference` (tag or digest) of `name`, exact bytes as pushed; else MANIFEST_UNKNOWN. */
  async getManifest(name: string, reference: string, opts: { withBytes?: boolean } = {}): Promise<StoredManifest & { size: number }> {
    const digest = await this.resolve(name, reference);
    const link = digest ? await this.manifestLink(name, digest) : undefined;
    if (!digest || !link) throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${reference} is not in repository ${name}`, { detail: { name, reference } });
    let bytes = this.manifestBytes.get(digest);
    if (!bytes && opts.withBytes !== false) {
      bytes = await this.readAll(digest);
      this.manifestBytes.set(digest, bytes);
    }
    return { digest, mediaType: link.mediaType, size: link.size, bytes: bytes ?? Buffer.alloc(0) };
  }

  /**
   * Stores a manifest under a tag or digest, after checking it parses and that everything it
   * references is in the repository. Returns its digest and, for the OCI-Subject header, its subject.
   * `requireReferences: false` is for a pull-through cache, which stores a manifest before the blobs it names.
   */
  async putManifest(
    name: string,
    reference: string,
    bytes: Buffer,
    contentType: string | undefined,
    extraTags: string[] = [],
    opts: {
      requireReferences?: boolean;
      /** Webhook events of this push (server/notifications/), queued in the manifest's own write. */
      notifications?: (m: { digest: string; mediaType: string; size: number; tags: string[]; references: Descriptor[] }) => NotificationWrite[];
    } = {},
  ): Promise<{ digest: string; subject?: string; mediaType: string }> {
    assertRepositoryName(name);
    let digest: string;
    const tags: string[] = [];
    if (looksLikeDigest(reference)) {
      const { algorithm } = parseDigest(reference);
      digest = digestOf(bytes, algorithm);
      if (digest !== reference) throw new RegistryError('DIGEST_INVALID', `manifest digest is ${digest}, not ${reference}`);
    } else {
      if (!isValidTag(reference)) throw new RegistryError('TAG_INVALID', `invalid tag ${JSON.stringify(reference.slice(0, 200))}: must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`, { status: 400 });
      digest = digestOf(bytes);
      tags.push(reference);
    }
    for (const t of extraTags) {
      if (!isValidTag(t)) throw new RegistryError('TAG_INVALID', `invalid tag ${JSON.stringify(t.slice(0, 200))}`, { status: 400 });
      tags.push(t);
    }
    const parsed = parseManifest(bytes, contentType);

    const link: ManifestLink = {
      mediaType: parsed.mediaType,
      size: bytes.length,
      refs: [...parsed.blobs, ...parsed.manifests].map((d) => d.digest),
    };
    const checkRefs = opts.requireReferences !== false;
    // The references are checked, the bytes stored and the link written under the guards of the
    // manifest's digest and of every digest it references, the batch touching each: GC either
    // deleted a referenced blob before (then it is missing here) or sees the touch and keeps it
    // (storage/content-records.ts). A pull-through cache stores a manifest before its blobs.
    await this.releasingRefused(name, () => this.exclusiveAll(checkRefs ? [digest, ...link.refs] : [digest], async () => {
      // distribution-spec/spec.md#push: references must exist, the subject need not.
      const missing: Array<{ digest: string; mediaType: string }> = [];
      const touched = [{ digest, size: bytes.length }];
      if (checkRefs) await Promise.all([
        ...parsed.blobs.map(async (d) => {
          const l = await this.blobLink(name, d.digest);
          if (!l || !(await this.hasBlob(d.digest))) missing.push({ digest: d.digest, mediaType: d.mediaType });
          else touched.push({ digest: d.digest, size: l.size });
        }),
        ...parsed.manifests.map(async (d) => {
          const l = await this.manifestLink(name, d.digest);
          if (!l || !(await this.hasBlob(d.digest))) missing.push({ digest: d.digest, mediaType: d.mediaType });
          else touched.push({ digest: d.digest, size: l.size });
        }),
      ]);
      if (checkRefs) {
        // A quota is checked before the bytes are stored; the write checks again, atomically.
        const known = await this.meta.getManifest(name, digest);
        if (!known) await this.admit(name, digest, bytes.length);
      }
      if (missing.length > 0) {
        throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `manifest references ${missing.length === 1 ? 'a blob' : `${missing.length} blobs`} not in repository ${name}: ${missing.map((m) => m.digest).join(', ')}`, {
          detail: missing,
        });
      }
      await this.putBytes(bytes, parseDigest(digest).algorithm, { guardHeld: true });
      let referrer: Descriptor | undefined;
      if (parsed.subject) {
        link.subject = parsed.subject.digest;
        referrer = { mediaType: parsed.mediaType, digest, size: bytes.length };
        if (parsed.artifactType) referrer.artifactType = parsed.artifactType;
        if (parsed.annotations) referrer.annotations = parsed.annotations;
      }
      const notifications = opts.notifications?.({ digest, mediaType: parsed.mediaType, size: bytes.length, tags, references: [...parsed.blobs, ...parsed.manifests] });
      // A pull-through cache is not held to quotas: it stores what its clients pull.
      await this.meta.putManifest({ name, digest, link, tags, touched, ...(referrer ? { referrer } : {}), ...(checkRefs ? this.quotaOf(name) : {}), ...(notifications?.length ? { notifications } : {}) });
    }));
    this.linkCache?.set(ck(name, digest), link);
    for (const t of tags) this.tagCache?.set(ck(name, t), digest);
    this.manifestBytes.set(digest, bytes);
    return parsed.subject ? { digest, subject: parsed.subject.digest, mediaType: parsed.mediaType } : { digest, mediaType: parsed.mediaType };
  }

  /** Deletes a manifest and every tag that points at it (distribution-spec/spec.md#deleting-manifests): the tags removed. */
  async deleteManifest(name: string, digest: string): Promise<string[]> {
    parseDigest(digest);
    const dropped = await this.meta.deleteManifest(name, digest);
    if (!dropped) throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${digest} is not in repository ${name}`);
    this.linkCache?.delete(ck(name, digest));
    for (const t of dropped) this.tagCache?.delete(ck(name, t));
    return dropped;
  }

  /** Manifests in `name` whose subject is `digest`, as the referrers API lists them. */
  async referrers(name: string, digest: string, artifactType?: string): Promise<Descriptor[]> {
    parseDigest(digest);
    const all = await this.meta.referrers(name, digest);
    return artifactType ? all.filter((d) => d.artifactType === artifactType) : all;
  }

  // ---- blobs ---------------------------------------------------------------------------------

  async blobLink(name: string, digest: string): Promise<BlobLink | undefined> {
    return this.meta.getBlobLink(name, digest);
  }

  /** Size of a blob readable in `name`; else BLOB_UNKNOWN. */
  async statBlob(name: string, digest: string): Promise<number> {
    parseDigest(digest);
    const link = await this.blobLink(name, digest);
    if (!link) throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} is not in repository ${name}`, { detail: { digest } });
    return link.size;
  }

  /**
   * Makes a blob already in the store readable in `name`; BLOB_UNKNOWN when its content is gone
   * (GC collected it before this link was made).
   */
  async linkBlob(name: string, digest: string, size: number): Promise<void> {
    if (!(await this.linkIfStored(name, digest, size))) throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} is no longer stored: upload it again`, { detail: { digest } });
  }

  /**
   * The link and its touch are written under the digest's guard after checking the content is
   * there: GC either deleted it before (then false) or sees the touch and keeps it.
   */
  private linkIfStored(name: string, digest: string, size: number): Promise<boolean> {
    return this.meta.exclusive(digest, async () => {
      if (!(await this.hasBlob(digest))) return false;
      await this.meta.linkBlob(name, digest, size, this.quotaOf(name));
      return true;
    });
  }

  /** Cross-repository mount: true when `from` holds the blob and it is now linked into `name`. */
  async mountBlob(name: string, from: string | undefined, digest: string): Promise<number | undefined> {
    parseDigest(digest);
    if (from === undefined) return undefined;
    const link = await this.blobLink(from, digest);
    if (!link || !(await this.releasingRefused(name, () => this.linkIfStored(name, digest, link.size)))) return undefined;
    return link.size;
  }

  async unlinkBlob(name: string, digest: string): Promise<void> {
    parseDigest(digest);
    if (!(await this.meta.unlinkBlob(name, digest))) throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} is not in repository ${name}`, { detail: { digest } });
  }

  /** Every digest some repository still links; content not in this set may be collected. */
  referencedDigests(): Promise<Set<string>> {
    return this.meta.referencedDigests();
  }

  /** `meta.exclusive` over several digests, taken in sorted order so two callers never deadlock. */
  exclusiveAll<T>(digests: Iterable<string>, fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(digests)].sort();
    const take = (i: number): Promise<T> => (i === sorted.length ? fn() : this.meta.exclusive(sorted[i]!, () => take(i + 1)));
    return take(0);
  }
}

function paginate(items: string[], n: number): Page<string> {
  if (items.length > n) {
    const page = items.slice(0, n);
    return { items: page, next: page[page.length - 1] };
  }
  return { items };
}

