// The contract every metadata backend meets: LevelDB in the data folder (the default, one
// process) and PostgreSQL (shared by many replicas). It is the single source of truth for what
// exists where; blob content is the blob driver's. Each write that changes what a repository
// contains is one atomic step (a LevelDB batch, a PostgreSQL transaction).
// storage/metadata-suite.ts is the one suite every backend passes.
import type { Descriptor } from '../oci/manifest.js';
import type { UploadState } from './blob-driver.js';
import type { NamespaceScheme } from './quota.js';

export interface ManifestLink {
  mediaType: string;
  size: number;
  subject?: string;
  /** Digests this manifest references (blobs and child manifests), for GC and deletes. */
  refs: string[];
  /** ms since the epoch of its last PUT (retention's age of an untagged manifest); absent for manifests stored before berth recorded it. */
  pushed?: number;
}

export interface BlobLink {
  size: number;
}

/** When a blob was last committed or linked: GC's grace period is read from here, never from file times. */
export interface ContentRecord {
  size: number;
  /** ms since the epoch */
  touched: number;
  /** With `getContent(digest, since)`: the record was written after that mark point (or while it was taken). */
  afterMark?: boolean;
}

/**
 * A point in the metadata's write order, taken before GC's mark: a record written after it is
 * told apart exactly (a timestamp is not enough: a touch stamped before GC started may become
 * visible after the mark read its snapshot). Opaque to callers.
 */
export interface MarkPoint {
  readonly mark: true;
}

export interface UploadRecord {
  name: string;
  algorithm: 'sha256' | 'sha512';
  /** Bytes durably received; the store may hold more after a crash, they are discarded. */
  offset: number;
  started: string;
  updated: string;
  /** The blob driver's state of the session's bytes (storage/blob-driver.ts). */
  driver?: UploadState;
  /** The running digest's saved state at `offset` (base64), where the driver cannot read bytes back. */
  hash?: string;
}

/** What a pull-through mirror remembers of a cached manifest or blob: when it was last served. */
export interface MirrorAccess {
  name: string;
  digest: string;
  kind: 'manifest' | 'blob';
}

export interface ManifestWrite {
  name: string;
  digest: string;
  link: ManifestLink;
  tags: string[];
  /** The referrers API's entry, when the manifest has a subject. */
  referrer?: Descriptor;
  /** Content records to touch in the same step: the manifest's own bytes and what it references. */
  touched: Array<{ digest: string; size: number }>;
  /** The namespace's quota in bytes: a manifest new to the namespace that would exceed it is refused (QuotaExceededError), nothing written. */
  quota?: number;
  /** Notifications of this push, queued in the same step (a crash leaves both or neither). */
  notifications?: NotificationWrite[];
}

/** An event to queue for one webhook endpoint (server/notifications/): opaque JSON text here. */
export interface NotificationWrite {
  endpoint: string;
  event: string;
}

/** A queued event not yet delivered to its endpoint. */
export interface QueuedNotification extends NotificationWrite {
  /** Its place in the endpoint's queue (delivery order); opaque to callers. */
  id: string;
  /** Failed deliveries so far. */
  attempts: number;
  /** ms since the epoch: not to be tried again before. */
  notBefore: number;
}

/** One tag with the manifest digest it points at (fsck's listings). */
export interface TagEntry {
  tag: string;
  digest: string;
  /** ms since the epoch of the tag's last PUT; absent for tags stored before berth recorded it. */
  pushed?: number;
}

/** A namespace's counter as the metadata holds it (storage/quota.ts). */
export interface NamespaceCount {
  namespace: string;
  usedBytes: number;
}

/** What a recount of the namespace counters found different from the stored ones (fsck). */
export interface UsageDrift {
  namespace: string;
  /** What the counter says. */
  storedBytes: number;
  /** What the links add up to. */
  countedBytes: number;
  /** (namespace, digest) reference counts that differ. */
  digests: number;
}

export interface ManifestEntry {
  digest: string;
  link: ManifestLink;
}

export interface BlobLinkEntry {
  digest: string;
  size: number;
}

/** A tag, the manifest it points at, and when a manifest PUT last set it (ms; 0: before push times were recorded). */
export interface TagPush {
  tag: string;
  digest: string;
  pushed: number;
}

/** Where a newest-first tag listing goes on: the last entry of the previous page. */
export interface TagPushCursor {
  pushed: number;
  tag: string;
}

/** An entry of the referrers API's index: manifest `digest` of the repository has subject `subject`. */
export interface ReferrerEntry {
  subject: string;
  digest: string;
  descriptor: Descriptor;
}

/** A page of the search index: `limit` names after `after` (or from the `offset`-th); with `prefixes`, only names starting with one of them. */
export interface SearchPage {
  limit: number;
  after?: string;
  offset?: number;
  /** The caller's rules reach only names with these prefixes (server/repository-search.ts): the rest is not read. */
  prefixes?: string[];
}

export interface RegistryMetadata {
  readonly kind: 'leveldb' | 'postgres';
  /**
   * Other processes write it too (PostgreSQL behind many replicas): no in-process cache may then
   * answer a request from it, since a tag moved on another replica must be seen at once.
   */
  readonly shared: boolean;

  open(): Promise<void>;
  close(): Promise<void>;

  repositoryExists(name: string): Promise<boolean>;
  /** Up to `limit` names after `after`, in byte order. */
  listRepositories(limit: number, after?: string): Promise<string[]>;

  /**
   * The search index (/v1/search, the web UI): names containing `term` (every name when empty),
   * in byte order, `limit` of them after `after` or past the first `offset`. Both backends answer
   * without reading every repository record per call (LevelDB: a name index in memory; PostgreSQL:
   * a trigram index).
   */
  searchRepositories(term: string, page: SearchPage): Promise<string[]>;
  /** How many names contain `term`. */
  countRepositories(term: string): Promise<number>;

  /** The most recently pushed tag of each of `names` that has one (a page of the UI's list: one query, not one per name). */
  newestTags(names: string[]): Promise<Map<string, TagPush>>;
  /** Up to `limit` tags of `name`, most recently pushed first (ties in byte order), after `after`. */
  recentTags(name: string, limit: number, after?: TagPushCursor): Promise<TagPush[]>;

  /** Up to `limit` tags of `name` after `after`, in byte order. */
  listTags(name: string, limit: number, after?: string): Promise<string[]>;
  getTag(name: string, tag: string): Promise<string | undefined>;
  /**
   * False when the tag did not exist, or with `expect`, when it no longer points at that digest
   * (or was pushed again since `expect.pushed`): retention's compare-and-delete.
   */
  deleteTag(name: string, tag: string, expect?: { digest: string; pushed?: number }): Promise<boolean>;

  getManifest(name: string, digest: string): Promise<ManifestLink | undefined>;
  /** The manifest link, its tags, referrer entry, repository and content touches: one atomic step. */
  putManifest(write: ManifestWrite): Promise<void>;
  /** Removes the manifest, every tag of `name` pointing at it and its referrer entry: the tags removed, or undefined when absent. */
  deleteManifest(name: string, digest: string): Promise<string[] | undefined>;
  /** Manifests of `name` whose subject is `subject`. */
  referrers(name: string, subject: string): Promise<Descriptor[]>;
  /** A manifest of `name` whose references (`refs`) include `digest`, or undefined (retention's re-check under the digest's guard). */
  referencedBy(name: string, digest: string): Promise<string | undefined>;

  getBlobLink(name: string, digest: string): Promise<BlobLink | undefined>;
  /**
   * Links the blob into `name` (creating the repository) and touches its content record: one step.
   * With `quota`, a blob new to the namespace that would take it over is refused (QuotaExceededError), nothing written.
   */
  linkBlob(name: string, digest: string, size: number, opts?: { quota?: number }): Promise<void>;
  /** False when the link did not exist. */
  unlinkBlob(name: string, digest: string): Promise<boolean>;
  /** Every digest a repository links or a manifest is or references (GC's mark). */
  referencedDigests(): Promise<Set<string>>;

  // Full listings of one repository, for `berth fsck`: in byte order, read from the backend a page
  // at a time (never the whole repository in memory), so a repository of 100 000 tags streams.
  /** Every tag of `name` with the digest it points at. */
  tagEntries(name: string): AsyncIterable<TagEntry>;
  /** Every manifest link of `name`. */
  manifestEntries(name: string): AsyncIterable<ManifestEntry>;
  /** Every blob link of `name`. */
  blobLinks(name: string): AsyncIterable<BlobLinkEntry>;
  /** Every referrers-API entry of `name`, by subject then digest. */
  referrerEntries(name: string): AsyncIterable<ReferrerEntry>;
  /** Removes one referrers-API entry (fsck's repair of an entry whose manifest is gone); false when absent. */
  deleteReferrer(name: string, subject: string, digest: string): Promise<boolean>;

  // Namespace usage (storage/quota.ts): per (namespace, digest) the number of links of the
  // namespace's repositories to it (blob links and manifests), and per namespace the bytes of the
  // digests counted there, updated by every link write in its own atomic step.
  /** How repositories group into namespaces; set before open(). A store counted with another grouping is recounted at open. */
  useNamespaces(scheme: NamespaceScheme): void;
  /** The counter of one namespace, and whether it counts `digest` already. */
  namespaceUsage(namespace: string, digest?: string): Promise<{ usedBytes: number; holds: boolean }>;
  /** Every namespace with a counter, in byte order. */
  listNamespaceUsage(): Promise<NamespaceCount[]>;
  /**
   * Recounts the counters from the links (one pass over every blob link and manifest) and returns
   * how the stored ones differ; with `repair`, replaces them with the recount, atomically against
   * concurrent link writes.
   */
  recountUsage(repair: boolean): Promise<UsageDrift[]>;

  /**
   * Runs `fn` while no other `exclusive` call for `digest` runs, in any process sharing this
   * metadata. Calls nest (a caller holding one digest may take more, in sorted order).
   */
  exclusive<T>(digest: string, fn: () => Promise<T>): Promise<T>;
  touchContent(digest: string, size: number): Promise<void>;
  /** Taken before a mark (GC, mirror eviction): see MarkPoint. */
  markPoint(): Promise<MarkPoint>;
  /** With `since`, the record says whether it was written after that point (`afterMark`). */
  getContent(digest: string, since?: MarkPoint): Promise<ContentRecord | undefined>;
  forgetContent(digest: string): Promise<void>;

  createUpload(id: string, record: UploadRecord): Promise<void>;
  getUpload(id: string): Promise<UploadRecord | undefined>;
  /**
   * Replaces the session's record if its offset is still `expectedOffset` (another replica did not
   * append meanwhile); false otherwise.
   */
  updateUpload(id: string, record: UploadRecord, expectedOffset: number): Promise<boolean>;
  deleteUpload(id: string): Promise<void>;
  listUploads(): AsyncIterable<[string, UploadRecord]>;

  /**
   * Runs a background job (GC, upload purge, mirror eviction), or a mirror's fetch of one blob,
   * unless another process sharing this metadata runs the same job now: then resolves to
   * undefined without running it.
   */
  runJob<T>(job: string, fn: () => Promise<T>): Promise<T | undefined>;

  // Pull-through mirror records (server/proxy/): when a tag was last checked upstream, when a
  // cached manifest or blob was last served (eviction).
  getMirrorTagChecked(name: string, tag: string): Promise<number | undefined>;
  setMirrorTagChecked(name: string, tag: string, at: number): Promise<void>;
  touchMirrorAccess(access: MirrorAccess, at: number): Promise<void>;
  /** Cached content last served before `cutoff` (ms), in no particular order. */
  mirrorUnusedSince(cutoff: number): AsyncIterable<MirrorAccess>;
  forgetMirrorAccess(name: string, digest: string): Promise<void>;

  // Webhook queues (server/notifications/): one per endpoint, kept until delivered, so a restart
  // loses no event. Delivery to one endpoint runs in one process at a time (runJob), in order.
  /** Appends events to their endpoints' queues in the order given: one atomic step. */
  enqueueNotifications(events: NotificationWrite[]): Promise<void>;
  /** The first `limit` events of `endpoint`'s queue, oldest first. */
  pendingNotifications(endpoint: string, limit: number): Promise<QueuedNotification[]>;
  /** Removes a delivered event; false when it was not queued (any more). */
  removeNotification(endpoint: string, id: string): Promise<boolean>;
  /** Records a failed delivery: the attempts so far and when to try again. */
  deferNotification(endpoint: string, id: string, attempts: number, notBefore: number): Promise<void>;
  /** Events queued for `endpoint`. */
  countNotifications(endpoint: string): Promise<number>;
}
