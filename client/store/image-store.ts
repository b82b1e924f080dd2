// The local image store under $BERTH_ROOT: blobs in storage/'s content-addressed BlobStore (one
// implementation for registry and client; manifests, configs and layers stored once per digest),
// metadata in the JSON index of image-index.ts. Blobs are committed before the index names them,
// so a crash mid-pull leaves at worst unreferenced blobs, which `berth image prune` removes.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobStore } from '../../storage/blob-store.js';
import { DataLayout } from '../../storage/layout.js';
import { parseManifest, type ImageIndex as OciIndex, type ImageManifest, type Platform } from '../../oci/manifest.js';
import type { ImageConfig } from '../../oci/image.js';
import { isValidDigest } from '../../oci/digest.js';
import { formatReference, parseReference, repositoryName, type ImageReference } from '../../oci/reference.js';
import { berthRoot } from '../paths.js';
import { ImageIndex, type ImageRecord, type IndexDocument } from './image-index.js';
import { choosePlatform, hostPlatform } from '../platform.js';

/** What a user's IMAGE argument names in the store. */
export interface StoreMatch {
  record: ImageRecord;
  /** The tag reference the input named, when it named one. */
  ref?: ImageReference;
}

export class ImageNotFoundError extends Error {
  constructor(input: string) {
    super(`No such image: ${input}`);
    this.name = 'ImageNotFoundError';
  }
}

export class LocalImageStore {
  readonly root: string;
  readonly blobs: BlobStore;
  readonly index: ImageIndex;

  private constructor(root: string) {
    this.root = root;
    this.blobs = new BlobStore(new DataLayout(root));
    this.index = new ImageIndex(join(root, 'images'));
  }

  static async open(root = berthRoot()): Promise<LocalImageStore> {
    const s = new LocalImageStore(root);
    await s.blobs.init();
    return s;
  }

  /** A stored JSON document; `what` names it in the error when it does not parse. */
  async readJson<T>(digest: string, what = `blob ${digest}`): Promise<T> {
    const text = (await this.blobs.readAll(digest)).toString('utf8');
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw new Error(`${what} is not valid JSON: ${(e as Error).message}`);
    }
  }

  async manifest(record: ImageRecord): Promise<ImageManifest | OciIndex> {
    return this.readJson(record.digest);
  }

  async config(record: ImageRecord): Promise<ImageConfig> {
    if (!record.config) throw new Error(`${record.digest} is an index, not an image`);
    return this.readJson(record.config.digest);
  }

  /** A record for a manifest already in the blob store (its config too, for image manifests). */
  async recordFor(digest: string, repoDigests: string[] = []): Promise<ImageRecord> {
    const bytes = await this.blobs.readAll(digest);
    const parsed = parseManifest(bytes);
    const added = new Date().toISOString();
    if (parsed.kind === 'index') {
      const children: string[] = [];
      for (const d of parsed.manifests) if (await this.blobs.has(d.digest)) children.push(d.digest);
      return { digest, mediaType: parsed.mediaType, kind: 'index', children, repoDigests, added };
    }
    const m = parsed.json as ImageManifest;
    const cfg = await this.readJson<ImageConfig>(m.config.digest, `image config ${m.config.digest}`);
    if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg)) throw new Error(`image config ${m.config.digest} is not a JSON object`);
    const platform: ImageRecord['platform'] = { os: cfg.os ?? 'unknown', architecture: cfg.architecture ?? 'unknown' };
    if (cfg.variant) platform.variant = cfg.variant;
    const record: ImageRecord = {
      digest,
      mediaType: parsed.mediaType,
      kind: 'image',
      config: { digest: m.config.digest, size: m.config.size, mediaType: m.config.mediaType },
      layers: m.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType })),
      platform,
      repoDigests,
      added,
    };
    if (cfg.created) record.created = cfg.created;
    return record;
  }

  /**
   * Registers stored manifests: records (children first), then points `tags` at `target`, and
   * notes `sources` (blob → registry/repo). Everything named must already be in the blob store.
   * Returns the digest a tag pointed at before, if it moved.
   */
  async register(records: ImageRecord[], tags: ImageReference[], target: string, sources: Record<string, string> = {}): Promise<void> {
    const apply = (doc: IndexDocument) => {
      for (const r of records) {
        const old = doc.images[r.digest];
        doc.images[r.digest] = old ? { ...r, repoDigests: [...new Set([...old.repoDigests, ...r.repoDigests])], added: old.added } : r;
      }
      for (const t of tags) doc.tags[formatReference({ ...t, digest: undefined } as ImageReference)] = target;
      for (const [blob, repo] of Object.entries(sources)) {
        const list = doc.sources[blob] ?? [];
        if (!list.includes(repo)) doc.sources[blob] = [...list, repo].slice(-8);
      }
    };
    // Registered as it is already (a warm push, a pull of what is stored): nothing to write.
    if (await this.index.unchangedBy(apply)) return;
    await this.index.update(async (doc) => {
      // An rmi or prune running alongside may have deleted a blob this command found already
      // stored; naming a missing blob would leave a broken image, so refuse instead.
      for (const r of records) {
        for (const b of [r.digest, r.config?.digest, ...(r.layers ?? []).map((l) => l.digest)]) {
          if (b && !(await this.blobs.has(b))) throw new Error(`blob ${b} was removed while this command ran (berth rmi or image prune?); run it again`);
        }
      }
      apply(doc);
    });
  }

  async noteSources(sources: Record<string, string>): Promise<void> {
    if (Object.keys(sources).length > 0) await this.register([], [], '', sources);
  }

  /** Resolves a user's IMAGE argument: a tag reference, `repo@digest`, or an image ID (prefix). */
  async resolve(input: string, doc?: IndexDocument): Promise<StoreMatch> {
    const d = doc ?? (await this.index.read());
    let ref: ImageReference | undefined;
    try {
      ref = parseReference(input);
    } catch {
      ref = undefined;
    }
    if (ref?.digest) {
      const r = d.images[ref.digest];
      if (r) return { record: r };
    } else if (ref?.tag) {
      const target = d.tags[formatReference(ref)];
      const r = target ? d.images[target] : undefined;
      if (r) return { record: r, ref };
    }
    const id = input.startsWith('sha256:') ? input.slice(7) : input;
    if (/^[0-9a-f]{4,64}$/.test(id)) {
      const matches = Object.values(d.images).filter((r) => imageId(r).slice(7).startsWith(id) || r.digest.slice(7).startsWith(id));
      const unique = [...new Map(matches.map((m) => [m.digest, m])).values()];
      if (unique.length === 1) return { record: unique[0]! };
      if (unique.length > 1) throw new Error(`image ID ${input} is ambiguous: ${unique.length} images match`);
    }
    throw new ImageNotFoundError(input);
  }

  /** For an index, its locally stored child for `platform` (host by default); an image is itself. */
  platformImage(record: ImageRecord, doc: IndexDocument, platform: Platform = hostPlatform()): ImageRecord | undefined {
    if (record.kind === 'image') return record;
    return choosePlatform((record.children ?? []).flatMap((c) => (doc.images[c] ? [doc.images[c]] : [])), platform);
  }

  /** Points `dst` at the image `src` names. */
  async tag(src: string, dst: ImageReference): Promise<void> {
    await this.index.update(async (doc) => {
      const { record } = await this.resolve(src, doc);
      doc.tags[formatReference({ registry: dst.registry, repository: dst.repository, tag: dst.tag ?? 'latest' })] = record.digest;
    });
  }

  /**
   * docker rmi: a tag reference is untagged, and the image deleted once no tag names it; an ID
   * deletes the image (with `force` even when several tags name it). Blobs still used by another
   * image stay. Returns docker's Untagged/Deleted lines.
   */
  async remove(inputs: string[], force: boolean): Promise<{ lines: string[]; errors: string[] }> {
    const lines: string[] = [];
    const errors: string[] = [];
    const candidates = new Set<string>();
    await this.index.update(async (doc) => {
      for (const input of inputs) {
        let resolved: StoreMatch;
        try {
          resolved = await this.resolve(input, doc);
        } catch (e) {
          errors.push((e as Error).message);
          continue;
        }
        const { record, ref } = resolved;
        const tagsOf = (digest: string) => Object.entries(doc.tags).filter(([, v]) => v === digest).map(([k]) => k);
        if (ref) {
          delete doc.tags[formatReference(ref)];
          lines.push(`Untagged: ${familiarTag(ref)}`);
        } else {
          const tags = tagsOf(record.digest);
          const repos = new Set(tags.map((t) => t.slice(0, t.lastIndexOf(':'))));
          if (repos.size > 1 && !force) {
            errors.push(`conflict: unable to delete ${shortId(imageId(record))} (must be forced) - image is referenced in multiple repositories`);
            continue;
          }
          for (const t of tags) {
            delete doc.tags[t];
            lines.push(`Untagged: ${familiarTag(parseReference(t))}`);
          }
        }
        if (tagsOf(record.digest).length > 0) continue;
        for (const removed of deleteUnreachable(doc, record.digest)) {
          lines.push(`Deleted: ${imageId(doc.images[removed]!)}`);
          for (const b of blobsOf(removed, doc, true)) candidates.add(b);
          delete doc.images[removed];
        }
      }
      await this.dropUnreferencedBlobs(doc, candidates);
    });
    return { lines, errors };
  }

  /** Every blob digest in the store (walks blobs/<alg>/<2 hex>/). */
  async allBlobs(): Promise<string[]> {
    const out: string[] = [];
    const dir = this.blobs.layout.blobsDir;
    for (const alg of await readdir(dir).catch(() => [] as string[])) {
      for (const prefix of await readdir(join(dir, alg)).catch(() => [] as string[])) {
        for (const name of await readdir(join(dir, alg, prefix)).catch(() => [] as string[])) {
          const d = `${alg}:${name}`;
          if (isValidDigest(d)) out.push(d);
        }
      }
    }
    return out;
  }

  /**
   * Blobs no image names that are older than `graceMs`: leftovers of a crashed command. Younger
   * ones may belong to a pull or load still running, which names them when it finishes.
   */
  async orphanBlobs(doc: IndexDocument, graceMs: number): Promise<string[]> {
    const used = new Set<string>();
    for (const r of Object.values(doc.images)) for (const b of blobsOf(r.digest, doc)) used.add(b);
    const out: string[] = [];
    const cutoff = Date.now() - graceMs;
    for (const b of await this.allBlobs()) {
      if (used.has(b)) continue;
      const st = await stat(this.blobs.layout.blobPath(b)).catch(() => undefined);
      if (st && st.mtimeMs < cutoff) out.push(b);
    }
    return out;
  }

  /** Deletes the blobs among `candidates` no remaining record uses. Call under the index lock. */
  async dropUnreferencedBlobs(doc: IndexDocument, candidates: Iterable<string>): Promise<number> {
    const used = new Set<string>();
    for (const r of Object.values(doc.images)) for (const b of blobsOf(r.digest, doc)) used.add(b);
    let freed = 0;
    for (const b of candidates) {
      if (used.has(b) || !isValidDigest(b)) continue;
      freed += (await this.blobs.size(b)) ?? 0;
      await this.blobs.delete(b);
      delete doc.sources[b];
    }
    return freed;
  }
}

/** The blobs an image record uses; the records themselves are read from the document. */
function blobsOf(digest: string, doc: IndexDocument, includeRemoved = false): string[] {
  const r = doc.images[digest];
  if (!r && !includeRemoved) return [];
  if (!r) return [digest];
  const out = [r.digest];
  if (r.config) out.push(r.config.digest);
  for (const l of r.layers ?? []) out.push(l.digest);
  return out;
}

/** Removes nothing itself: returns `root` and its children that no tag or other index still reaches. */
function deleteUnreachable(doc: IndexDocument, root: string): string[] {
  const reachable = new Set<string>();
  const visit = (d: string) => {
    if (reachable.has(d)) return;
    reachable.add(d);
    for (const c of doc.images[d]?.children ?? []) visit(c);
  };
  for (const [, target] of Object.entries(doc.tags)) visit(target);
  for (const r of Object.values(doc.images)) {
    if (r.digest !== root && r.kind === 'index' && !isUnder(doc, root, r.digest)) for (const c of r.children ?? []) reachable.add(c);
  }
  const out: string[] = [];
  const collect = (d: string) => {
    if (reachable.has(d) || out.includes(d) || !doc.images[d]) return;
    out.push(d);
    for (const c of doc.images[d]!.children ?? []) collect(c);
  };
  collect(root);
  return out;
}

function isUnder(doc: IndexDocument, root: string, d: string): boolean {
  return (doc.images[root]?.children ?? []).includes(d);
}

/** Records no tag reaches, directly or through an index: docker's dangling `<none>` images. */
export function danglingImages(doc: IndexDocument): ImageRecord[] {
  const reachable = new Set<string>();
  const visit = (d: string) => {
    if (reachable.has(d)) return;
    reachable.add(d);
    for (const c of doc.images[d]?.children ?? []) visit(c);
  };
  for (const target of Object.values(doc.tags)) visit(target);
  const childOfSomething = new Set(Object.values(doc.images).flatMap((r) => r.children ?? []));
  return Object.values(doc.images).filter((r) => !reachable.has(r.digest) && !childOfSomething.has(r.digest));
}

/** docker's IMAGE ID: the config digest of an image, the digest of an index. */
export function imageId(r: ImageRecord): string {
  return r.config?.digest ?? r.digest;
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

function familiarTag(ref: ImageReference): string {
  return `${familiarRepo(ref)}:${ref.tag ?? 'latest'}`;
}

function familiarRepo(ref: ImageReference): string {
  const full = repositoryName(ref);
  if (ref.registry !== 'docker.io') return full;
  return ref.repository.startsWith('library/') ? ref.repository.slice(8) : ref.repository;
}

/** Size of an image as `docker images` shows it: config + layers (compressed, as stored). */
export function imageSize(r: ImageRecord, doc: IndexDocument): number {
  if (r.kind === 'index') return (r.children ?? []).reduce((n, c) => n + (doc.images[c] ? imageSize(doc.images[c]!, doc) : 0), 0);
  return (r.config?.size ?? 0) + (r.layers ?? []).reduce((n, l) => n + l.size, 0);
}
