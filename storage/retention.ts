// Tag retention (docs/server.md#retention): rules per repository glob keep the newest N tags, the
// tags matching patterns, and untagged manifests younger than an age; the rest goes, and with it
// the blob links only the removed manifests held, so GC's next mark frees their content.
//
// What is kept, per repository, from one scan of its tags and manifests:
//  - a tag the rule keeps (among the newest `keepNewest` by push time, or matching a `keepTags`
//    regular expression; every tag when the rule names neither);
//  - the manifest of a kept tag; a manifest no tag points at, no manifest of the repository
//    references and whose subject is not in it, unless the rule ages untagged manifests out and
//    it was pushed longer ago than that (one pushed before berth recorded push times is kept);
//  - everything a kept manifest references (an index's children, whatever their tags), and the
//    referrers (signatures, SBOMs) of a kept manifest: a referrer follows its subject.
// Everything else is removed: the other tags, then the manifests (an index before its children,
// referrers last), each by compare-and-delete, so a tag or manifest pushed again meanwhile stays.
import type { RegistryStore } from './registry-store.js';
import type { ManifestLink } from './registry-metadata.js';
import { repositoryGlob } from '../oci/names.js';

export interface RetentionRule {
  /** Repositories the rule applies to: a glob (oci/names.ts repositoryGlob). The first matching rule applies. */
  repositories: string;
  /** Keep the newest N tags by push time. */
  keepNewest?: number;
  /** Keep tags matching any of these regular expressions, anchored at both ends (the whole tag). */
  keepTags?: string[];
  /** Remove untagged manifests pushed longer ago than this (ms). */
  untaggedOlderThanMs?: number;
}

export interface RetentionOptions {
  /** Plan only: nothing is removed. */
  dryRun?: boolean;
  /** Blob links whose content was linked or committed this recently stay (GC's grace: a push may be about to use them). */
  graceMs?: number;
  now?: number;
  /** Each removal (or, dry, each planned removal), as it happens. */
  onRemoved?: (r: RetentionRemoval) => void;
  /** Stops between two repositories (the registry is closing). */
  signal?: AbortSignal;
}

export type RetentionRemoval =
  | { what: 'tag'; repository: string; tag: string; digest: string; pushed?: number }
  | { what: 'manifest'; repository: string; digest: string; mediaType: string; pushed?: number; reason: RemovalReason };

/** Why a manifest goes: its tags were removed, it is untagged and old, or it hung on removed manifests only. */
export type RemovalReason = 'tags-removed' | 'untagged' | 'unreferenced' | 'subject-removed';

export interface RetentionResult {
  repositories: number;
  removedTags: number;
  removedManifests: number;
  /** Blob links removed with the manifests that held them (their content goes at GC's next sweep). */
  unlinkedBlobs: number;
  /** Planned removals skipped because the tag or manifest changed since the scan (pushed again, referenced by a new index). */
  skipped: number;
  dryRun: boolean;
}

interface CompiledRule {
  rule: RetentionRule;
  repositories: RegExp;
  keepTags: RegExp[];
}

export class RetentionPolicy {
  private readonly rules: CompiledRule[];

  constructor(rules: readonly RetentionRule[]) {
    this.rules = rules.map((rule) => ({ rule, repositories: repositoryGlob(rule.repositories), keepTags: (rule.keepTags ?? []).map((p) => new RegExp(`^(?:${p})$`)) }));
  }

  get empty(): boolean {
    return this.rules.length === 0;
  }

  ruleFor(repository: string): CompiledRule | undefined {
    return this.rules.find((r) => r.repositories.test(repository));
  }
}

export interface RepositoryPlan {
  repository: string;
  tags: Array<{ tag: string; digest: string; pushed?: number }>;
  /** In removal order: parents before children, referrers last. */
  manifests: Array<{ digest: string; link: ManifestLink; reason: RemovalReason }>;
  /** Blob digests that only removed manifests referenced. */
  blobs: string[];
}

/** What retention would remove from `repository` under `rule`, from one scan of its tags and manifests. */
export async function planRepository(store: RegistryStore, repository: string, compiled: CompiledRule, now: number): Promise<RepositoryPlan> {
  const { rule } = compiled;
  const manifests = new Map<string, ManifestLink>();
  for await (const m of store.meta.manifestEntries(repository)) manifests.set(m.digest, m.link);
  const tags: Array<{ tag: string; digest: string; pushed?: number }> = [];
  for await (const t of store.meta.tagEntries(repository)) tags.push(t);
  // Newest first, as the tag listing of the UI: push time, then byte order.
  tags.sort((a, b) => (b.pushed ?? 0) - (a.pushed ?? 0) || (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));

  const judgesTags = rule.keepNewest !== undefined || compiled.keepTags.length > 0;
  const removedTags: typeof tags = [];
  const kept = new Set<string>();
  const tagged = new Set<string>();
  tags.forEach((t, i) => {
    tagged.add(t.digest);
    const keep = !judgesTags || i < (rule.keepNewest ?? 0) || compiled.keepTags.some((re) => re.test(t.tag));
    if (keep) kept.add(t.digest);
    else removedTags.push(t);
  });

  const children = new Set<string>();
  const referrersOf = new Map<string, string[]>();
  for (const [digest, link] of manifests) {
    for (const r of link.refs) if (manifests.has(r)) children.add(r);
    if (link.subject && manifests.has(link.subject)) {
      const list = referrersOf.get(link.subject) ?? [];
      list.push(digest);
      referrersOf.set(link.subject, list);
    }
  }
  const ageCutoff = rule.untaggedOlderThanMs === undefined ? undefined : now - rule.untaggedOlderThanMs;
  const reason = new Map<string, RemovalReason>();
  for (const [digest, link] of manifests) {
    if (tagged.has(digest)) {
      if (!kept.has(digest)) reason.set(digest, 'tags-removed');
      continue;
    }
    if (children.has(digest)) continue;
    if (link.subject && manifests.has(link.subject)) continue;
    if (ageCutoff !== undefined && link.pushed !== undefined && link.pushed < ageCutoff) reason.set(digest, 'untagged');
    else kept.add(digest);
  }
  // Everything a kept manifest references, and the referrers of kept manifests, are kept.
  const queue = [...kept];
  while (queue.length > 0) {
    const d = queue.pop()!;
    const next = [...(manifests.get(d)?.refs.filter((r) => manifests.has(r)) ?? []), ...(referrersOf.get(d) ?? [])];
    for (const n of next) {
      if (kept.has(n)) continue;
      kept.add(n);
      queue.push(n);
    }
  }

  // Removal order: a manifest after every removed manifest that references it; referrers last.
  const removed = [...manifests.keys()].filter((d) => !kept.has(d));
  const removedSet = new Set(removed);
  const parents = new Map<string, number>();
  for (const d of removed) for (const r of new Set(manifests.get(d)!.refs)) if (removedSet.has(r)) parents.set(r, (parents.get(r) ?? 0) + 1);
  const ordered: string[] = [];
  const ready = removed.filter((d) => !parents.has(d));
  while (ready.length > 0) {
    const d = ready.shift()!;
    ordered.push(d);
    for (const r of new Set(manifests.get(d)!.refs)) {
      if (!removedSet.has(r)) continue;
      const left = parents.get(r)! - 1;
      parents.set(r, left);
      if (left === 0) ready.push(r);
    }
  }
  const isReferrer = (d: string) => {
    const s = manifests.get(d)!.subject;
    return s !== undefined && manifests.has(s);
  };
  const order = [...ordered.filter((d) => !isReferrer(d)), ...ordered.filter(isReferrer)];

  const keptBlobs = new Set<string>();
  for (const d of kept) for (const r of manifests.get(d)?.refs ?? []) keptBlobs.add(r);
  const blobs = new Set<string>();
  for (const d of order) for (const r of manifests.get(d)!.refs) if (!manifests.has(r) && !keptBlobs.has(r)) blobs.add(r);

  return {
    repository,
    tags: removedTags,
    manifests: order.map((digest) => {
      const link = manifests.get(digest)!;
      const why = reason.get(digest) ?? (isReferrer(digest) ? 'subject-removed' : 'unreferenced');
      return { digest, link, reason: why };
    }),
    blobs: [...blobs].sort(),
  };
}

/** Applies `policy` to every repository a rule matches (or, dry, reports what would go). */
export async function applyRetention(store: RegistryStore, policy: RetentionPolicy, opts: RetentionOptions = {}): Promise<RetentionResult> {
  const now = opts.now ?? Date.now();
  const dryRun = opts.dryRun === true;
  const graceCutoff = now - (opts.graceMs ?? 0);
  const result: RetentionResult = { repositories: 0, removedTags: 0, removedManifests: 0, unlinkedBlobs: 0, skipped: 0, dryRun };
  if (policy.empty) return result;
  let after: string | undefined;
  for (;;) {
    const page = await store.meta.listRepositories(1000, after);
    if (page.length === 0) break;
    after = page[page.length - 1];
    for (const repository of page) {
      if (opts.signal?.aborted) return result;
      const rule = policy.ruleFor(repository);
      if (!rule) continue;
      result.repositories++;
      const plan = await planRepository(store, repository, rule, now);
      if (dryRun) {
        for (const t of plan.tags) opts.onRemoved?.({ what: 'tag', repository, ...t });
        for (const m of plan.manifests) opts.onRemoved?.(manifestRemoval(repository, m));
        result.removedTags += plan.tags.length;
        result.removedManifests += plan.manifests.length;
        result.unlinkedBlobs += plan.blobs.length;
        continue;
      }
      await applyPlan(store, plan, graceCutoff, result, opts.onRemoved);
    }
  }
  return result;
}

function manifestRemoval(repository: string, m: RepositoryPlan['manifests'][number]): RetentionRemoval {
  const r: RetentionRemoval = { what: 'manifest', repository, digest: m.digest, mediaType: m.link.mediaType, reason: m.reason };
  if (m.link.pushed !== undefined) r.pushed = m.link.pushed;
  return r;
}

/** Applies one repository's plan (made by planRepository, maybe a while ago): what changed since is kept. */
export async function applyRepositoryPlan(store: RegistryStore, plan: RepositoryPlan, opts: { graceMs?: number; now?: number; onRemoved?: (r: RetentionRemoval) => void } = {}): Promise<RetentionResult> {
  const result: RetentionResult = { repositories: 1, removedTags: 0, removedManifests: 0, unlinkedBlobs: 0, skipped: 0, dryRun: false };
  await applyPlan(store, plan, (opts.now ?? Date.now()) - (opts.graceMs ?? 0), result, opts.onRemoved);
  return result;
}

async function applyPlan(store: RegistryStore, plan: RepositoryPlan, graceCutoff: number, result: RetentionResult, onRemoved?: (r: RetentionRemoval) => void): Promise<void> {
  const { repository } = plan;
  for (const t of plan.tags) {
    // Compare-and-delete: a tag pushed again since the scan (same or another manifest) stays.
    if (await store.deleteTagIf(repository, t.tag, { digest: t.digest, ...(t.pushed !== undefined ? { pushed: t.pushed } : {}) })) {
      result.removedTags++;
      onRemoved?.({ what: 'tag', repository, ...t });
    } else result.skipped++;
  }
  // Manifests, then blob links, a batch at a time under the guards of the whole batch (taken in
  // sorted order): every PUT of a manifest, and of one that references a digest, holds that
  // digest's guard, so one read of the repository's manifests under them sees every manifest that
  // could keep one of the batch, and nothing can start referencing one until the batch is done.
  // One read per batch, not one per removal: a repository of n manifests costs O(n · removed / batch).
  for (let i = 0; i < plan.manifests.length; i += GUARD_BATCH) {
    const batch = plan.manifests.slice(i, i + GUARD_BATCH);
    await store.exclusiveAll(
      batch.map((m) => m.digest),
      async () => {
        const { links, refCount } = await readManifests(store, repository);
        for (const m of batch) {
          const now = links.get(m.digest);
          // Pushed again since the scan (by tag or digest: a new push time), referenced by a
          // manifest that stays (an index pushed meanwhile, or one whose removal was skipped), or
          // a referrer whose subject stayed: kept.
          const keep = !now || now.pushed !== m.link.pushed || (refCount.get(m.digest) ?? 0) > 0 || (now.subject !== undefined && links.has(now.subject));
          if (keep) {
            result.skipped++;
            continue;
          }
          await store.deleteManifest(repository, m.digest);
          links.delete(m.digest);
          for (const r of new Set(now.refs)) refCount.set(r, (refCount.get(r) ?? 1) - 1);
          result.removedManifests++;
          onRemoved?.(manifestRemoval(repository, m));
        }
      },
    );
  }
  for (let i = 0; i < plan.blobs.length; i += GUARD_BATCH) {
    const batch = plan.blobs.slice(i, i + GUARD_BATCH);
    await store.exclusiveAll(batch, async () => {
      const { refCount } = await readManifests(store, repository);
      for (const digest of batch) {
        if ((refCount.get(digest) ?? 0) > 0) continue;
        // Linked or committed within the grace period: a push may be about to reference it.
        const content = await store.meta.getContent(digest);
        if (content && content.touched >= graceCutoff) continue;
        if (await store.meta.unlinkBlob(repository, digest)) result.unlinkedBlobs++;
      }
    });
  }
}

/** Digests guarded at once while one batch of removals is checked and applied. */
const GUARD_BATCH = 256;

/** The repository's manifest links now, and how many of them reference each digest. */
async function readManifests(store: RegistryStore, repository: string): Promise<{ links: Map<string, ManifestLink>; refCount: Map<string, number> }> {
  const links = new Map<string, ManifestLink>();
  const refCount = new Map<string, number>();
  for await (const e of store.meta.manifestEntries(repository)) {
    links.set(e.digest, e.link);
    for (const r of new Set(e.link.refs)) refCount.set(r, (refCount.get(r) ?? 0) + 1);
  }
  return { links, refCount };
}
