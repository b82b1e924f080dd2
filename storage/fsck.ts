// Integrity check of a registry store (`berth fsck`), through the metadata and blob-driver
// interfaces only, so it runs on LevelDB or PostgreSQL metadata and fs or s3 blobs alike.
//
// Per repository (listings streamed a page at a time):
//   manifests  every link's bytes stored, hashing to the digest, of the recorded size, parsing;
//              every blob or child manifest it references stored, hashing to its digest, of the
//              descriptor's size
//   tags       every tag points at a manifest link of the repository
//   blob links content stored, hashing to the digest, of the recorded size
//   referrers  every referrers-API entry's manifest is linked in the repository
// then the namespace usage counters (quotas) against a recount from the links (--repair: recounted),
// then, over the whole store: stored blobs nothing links or references (orphans: GC's business,
// counted, not a problem) and upload sessions older than the purge age (counted).
//
// Each distinct digest is checked once however many manifests and repositories name it: its
// verdict is kept in a map, the one structure that grows with the store (one entry per distinct
// referenced digest, ~150 bytes each: 15 MB for 100 000 blobs; GC's mark holds the same set).
// Content is hashed streaming (the driver's 1 MiB reads through a Digester), never buffered
// whole; manifests (at most the manifest size limit) are read whole to be parsed.
//
// --repair removes dangling metadata only, never content: tags pointing at no manifest link,
// manifest links whose bytes or references are missing or corrupt (with their tags and referrer
// entry: the manifest cannot be pulled whole), blob links whose content is missing or corrupt,
// referrer entries whose manifest is gone. A removal of something found missing is re-checked
// under the digest's guard first, so content stored meanwhile by a replica keeps its link.
import { Digester, digestOf, parseDigest, isValidDigest } from '../oci/digest.js';
import { parseManifest, type Descriptor } from '../oci/manifest.js';
import type { RegistryStore } from './registry-store.js';

export type FsckProblemKind =
  | 'tag-dangling'
  | 'manifest-missing'
  | 'manifest-corrupt'
  | 'manifest-invalid'
  | 'reference-missing'
  | 'reference-corrupt'
  | 'blob-missing'
  | 'blob-corrupt'
  | 'referrer-dangling'
  | 'usage-drift';

export interface FsckProblem {
  kind: FsckProblemKind;
  repository: string;
  /** The tag, or the digest of the manifest, blob link or referrer entry. */
  reference: string;
  /** What is wrong, in words. */
  detail: string;
}

export interface FsckRemoval {
  /** `usage`: a namespace's counters replaced by the recount (`reference`: the namespace). */
  what: 'tag' | 'manifest' | 'blob-link' | 'referrer' | 'usage';
  repository: string;
  reference: string;
  /** Tags that went with a removed manifest. */
  tags?: string[];
}

export interface FsckReport {
  repositories: number;
  tags: number;
  manifests: number;
  blobLinks: number;
  referrers: number;
  /** Distinct digests checked (manifests, references, linked blobs). */
  blobsChecked: number;
  bytesHashed: number;
  /** Stored blobs no link or manifest references: garbage collection removes them. */
  orphans: { count: number; bytes: number };
  /** Upload sessions idle longer than the purge age (the registry's purge removes them). */
  staleUploads: number;
  /** Mirror mode: references of cached manifests whose blobs were never fetched (not a problem there). */
  uncachedReferences: number;
  contentVerified: boolean;
  problems: FsckProblem[];
  /** With `repair`: what was removed. */
  removed: FsckRemoval[];
  durationMs: number;
}

export interface FsckOptions {
  /** Hash every blob (default); false checks presence and size only. Manifests are always hashed (read anyway). */
  verifyContent?: boolean;
  /** Remove dangling metadata (never content). */
  repair?: boolean;
  /** Upload sessions idle longer are counted as stale (default 168 h, the registry's default purge). */
  uploadPurgeAgeMs?: number;
  /** The store is a pull-through cache: manifests stored before their blobs are normal there. */
  mirror?: boolean;
  /** Blobs checked at once (default 4). */
  concurrency?: number;
  /** Sees each problem as it is found (the CLI prints it at once). */
  onProblem?: (p: FsckProblem) => void;
}

/** Larger "manifest" content is not read into memory to be parsed: it cannot be one the registry accepted. */
const MAX_MANIFEST_READ = 64 << 20;
const REPO_PAGE = 1000;

type Verdict = { ok: true; size: number } | { ok: false; missing: true } | { ok: false; missing: false; why: string; size: number };

export async function fsck(store: RegistryStore, opts: FsckOptions = {}): Promise<FsckReport> {
  const started = Date.now();
  const verify = opts.verifyContent !== false;
  const concurrency = Math.max(1, opts.concurrency ?? 4);
  const report: FsckReport = {
    repositories: 0,
    tags: 0,
    manifests: 0,
    blobLinks: 0,
    referrers: 0,
    blobsChecked: 0,
    bytesHashed: 0,
    orphans: { count: 0, bytes: 0 },
    staleUploads: 0,
    uncachedReferences: 0,
    contentVerified: verify,
    problems: [],
    removed: [],
    durationMs: 0,
  };
  const verdicts = new Map<string, Promise<Verdict>>();
  const problem = (p: FsckProblem) => {
    report.problems.push(p);
    opts.onProblem?.(p);
  };

  /** Presence, size and (when verifying) the hash of `digest`'s content, once per digest. */
  const check = (digest: string): Promise<Verdict> => {
    let v = verdicts.get(digest);
    if (!v) {
      v = checkContent(store, digest, verify, (n) => (report.bytesHashed += n));
      verdicts.set(digest, v);
      report.blobsChecked++;
    }
    return v;
  };

  /** A manifest's bytes: read whole (they are parsed), hashed, its verdict recorded for references to it. */
  const readManifest = async (digest: string, size: number): Promise<{ verdict: Verdict; bytes?: Buffer }> => {
    const stored = await store.blobs.stat(digest);
    if (stored === undefined) return { verdict: { ok: false, missing: true } };
    if (stored > MAX_MANIFEST_READ) return { verdict: await check(digest) };
    let bytes: Buffer;
    try {
      bytes = await store.readAll(digest);
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') return { verdict: { ok: false, missing: true } };
      throw e;
    }
    report.bytesHashed += bytes.length;
    const actual = digestOf(bytes, parseDigest(digest).algorithm);
    const verdict: Verdict = actual === digest ? { ok: true, size: bytes.length } : { ok: false, missing: false, why: `content hashes to ${actual}`, size: bytes.length };
    if (!verdicts.has(digest)) {
      verdicts.set(digest, Promise.resolve(verdict));
      report.blobsChecked++;
    }
    return verdict.ok && bytes.length !== size ? { verdict: { ok: false, missing: false, why: `content is ${bytes.length} bytes, the link records ${size}`, size: bytes.length } } : { verdict, bytes };
  };

  for await (const name of repositories(store)) {
    report.repositories++;
    // Manifest digests of this repository found broken: removed with --repair (their tags and
    // referrer entry go with them, so those are not reported again).
    const badManifests = new Map<string, { missing: boolean }>();
    const danglingTags: string[] = [];
    const badBlobLinks: Array<{ digest: string; missing: boolean }> = [];
    const danglingReferrers: Array<{ subject: string; digest: string }> = [];

    await forEachConcurrent(store.meta.manifestEntries(name), concurrency, async ({ digest, link }) => {
      report.manifests++;
      const fail = (kind: FsckProblemKind, detail: string) => {
        if (!badManifests.has(digest)) badManifests.set(digest, { missing: kind === 'manifest-missing' });
        problem({ kind, repository: name, reference: digest, detail });
      };
      const { verdict, bytes } = await readManifest(digest, link.size);
      if (!verdict.ok) return fail(verdict.missing ? 'manifest-missing' : 'manifest-corrupt', verdict.missing ? 'manifest content is not stored' : verdict.why);
      if (!bytes) return fail('manifest-invalid', `content of ${verdict.size} bytes is too large to be a manifest`);
      let refs: Descriptor[];
      try {
        const parsed = parseManifest(bytes, link.mediaType);
        refs = [...parsed.blobs, ...parsed.manifests];
      } catch (e) {
        return fail('manifest-invalid', `does not parse: ${(e as Error).message}`);
      }
      for (const d of refs) {
        const v = await check(d.digest);
        if (!v.ok && v.missing && opts.mirror) {
          report.uncachedReferences++;
          continue;
        }
        if (!v.ok) fail(v.missing ? 'reference-missing' : 'reference-corrupt', `references ${d.digest}: ${v.missing ? 'not stored' : v.why}`);
        else if (v.size !== d.size) fail('reference-corrupt', `references ${d.digest} as ${d.size} bytes, stored content is ${v.size}`);
      }
    });

    for await (const { tag, digest } of store.meta.tagEntries(name)) {
      report.tags++;
      if (badManifests.has(digest)) continue;
      if (!(await store.meta.getManifest(name, digest))) {
        danglingTags.push(tag);
        problem({ kind: 'tag-dangling', repository: name, reference: tag, detail: `points at ${digest}, not a manifest of the repository` });
      }
    }

    await forEachConcurrent(store.meta.blobLinks(name), concurrency, async ({ digest, size }) => {
      report.blobLinks++;
      const v = await check(digest);
      if (!v.ok) {
        badBlobLinks.push({ digest, missing: v.missing });
        problem({ kind: v.missing ? 'blob-missing' : 'blob-corrupt', repository: name, reference: digest, detail: v.missing ? 'linked blob is not stored' : v.why });
      } else if (v.size !== size) {
        badBlobLinks.push({ digest, missing: false });
        problem({ kind: 'blob-corrupt', repository: name, reference: digest, detail: `stored content is ${v.size} bytes, the link records ${size}` });
      }
    });

    for await (const { subject, digest } of store.meta.referrerEntries(name)) {
      report.referrers++;
      if (badManifests.has(digest)) continue;
      if (!(await store.meta.getManifest(name, digest))) {
        danglingReferrers.push({ subject, digest });
        problem({ kind: 'referrer-dangling', repository: name, reference: digest, detail: `referrer of ${subject}: the manifest is not in the repository` });
      }
    }

    if (opts.repair) {
      for (const [digest, { missing }] of badManifests) {
        const tags = await store.meta.exclusive(digest, async () => {
          // Found missing: a replica may have stored it since; then the link is whole again.
          if (missing && (await store.blobs.stat(digest)) !== undefined) return undefined;
          return store.meta.deleteManifest(name, digest);
        });
        if (tags) report.removed.push({ what: 'manifest', repository: name, reference: digest, tags });
      }
      for (const tag of danglingTags) {
        const digest = await store.meta.getTag(name, tag);
        if (digest === undefined || (await store.meta.getManifest(name, digest))) continue;
        if (await store.meta.deleteTag(name, tag)) report.removed.push({ what: 'tag', repository: name, reference: tag });
      }
      for (const { digest, missing } of badBlobLinks) {
        const gone = await store.meta.exclusive(digest, async () => {
          if (missing && (await store.blobs.stat(digest)) !== undefined) return false;
          return store.meta.unlinkBlob(name, digest);
        });
        if (gone) report.removed.push({ what: 'blob-link', repository: name, reference: digest });
      }
      for (const { subject, digest } of danglingReferrers) {
        if (await store.meta.getManifest(name, digest)) continue;
        if (await store.meta.deleteReferrer(name, subject, digest)) report.removed.push({ what: 'referrer', repository: name, reference: digest });
      }
    }
  }

  // Namespace usage (quotas): the counters against a recount from the links; --repair replaces
  // them, atomically against concurrent link writes (registry-metadata.ts recountUsage).
  for (const d of await store.meta.recountUsage(opts.repair === true)) {
    problem({
      kind: 'usage-drift',
      repository: d.namespace,
      reference: d.namespace,
      detail: `namespace usage counter says ${d.storedBytes} bytes, its links add up to ${d.countedBytes} (${d.digests} digest counts differ)`,
    });
    if (opts.repair) report.removed.push({ what: 'usage', repository: d.namespace, reference: d.namespace });
  }

  // Orphans: stored content no link or manifest of any repository named (every such digest has a
  // verdict by now). Content whose links --repair just removed counts here: GC collects it.
  for await (const digest of store.blobs.list()) {
    if (verdicts.has(digest)) continue;
    const size = await store.blobs.stat(digest);
    if (size === undefined) continue;
    report.orphans.count++;
    report.orphans.bytes += size;
  }

  const cutoff = Date.now() - (opts.uploadPurgeAgeMs ?? 168 * 3600 * 1000);
  for await (const [, record] of store.meta.listUploads()) {
    if (Date.parse(record.updated) < cutoff) report.staleUploads++;
  }

  report.durationMs = Date.now() - started;
  return report;
}

/** Every repository name, a page of the metadata at a time. */
async function* repositories(store: RegistryStore): AsyncIterable<string> {
  let after: string | undefined;
  for (;;) {
    const page = await store.meta.listRepositories(REPO_PAGE, after);
    yield* page;
    if (page.length < REPO_PAGE) return;
    after = page[page.length - 1];
  }
}

async function checkContent(store: RegistryStore, digest: string, verify: boolean, hashed: (n: number) => void): Promise<Verdict> {
  if (!isValidDigest(digest)) return { ok: false, missing: false, why: `not a digest berth can verify`, size: 0 };
  const size = await store.blobs.stat(digest);
  if (size === undefined) return { ok: false, missing: true };
  if (!verify) return { ok: true, size };
  const hash = new Digester(parseDigest(digest).algorithm);
  try {
    for await (const chunk of await store.blobs.read(digest)) {
      hash.update(chunk as Uint8Array);
      hashed((chunk as Uint8Array).length);
    }
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return { ok: false, missing: true };
    throw e;
  }
  const actual = hash.digest();
  if (actual !== digest) return { ok: false, missing: false, why: `content hashes to ${actual}`, size: hash.size };
  return { ok: true, size: hash.size };
}

/** Runs `fn` over `items` with at most `n` calls in flight, pulling items only as slots free up. */
async function forEachConcurrent<T>(items: AsyncIterable<T>, n: number, fn: (item: T) => Promise<void>): Promise<void> {
  const running = new Set<Promise<void>>();
  let failure: unknown;
  for await (const item of items) {
    if (failure !== undefined) break;
    const p: Promise<void> = fn(item)
      .catch((e: unknown) => {
        failure ??= e;
      })
      .finally(() => running.delete(p));
    running.add(p);
    if (running.size >= n) await Promise.race(running);
  }
  await Promise.all(running);
  if (failure !== undefined) throw failure;
}
