// The local store ($BERTH_ROOT, client/store/) as a source and a sink of the image model.
// Source: a record's manifest bytes as pulled, blobs read from the content-addressed files.
// Sink: blobs committed (verified, fsync'd, renamed) before anything names them; `commit`
// registers the records and tags in one index update; `rollback` drops what this copy added.
// berth build writes the images it builds through this sink: `new StoreSink(store)`, then
// `copy(image, sink)` and `sink.commit(…)` (docs/architecture.md "The image model").
import { RegistryError } from '../../oci/errors.js';
import type { Blob, ImageOrIndex } from '../../oci/image.js';
import type { Descriptor } from '../../oci/manifest.js';
import type { ImageReference } from '../../oci/reference.js';
import type { LocalImageStore } from '../store/image-store.js';
import type { ImageRecord } from '../store/image-index.js';
import type { BlobReader } from './manifest-image.js';
import { blobOf, manifestOf } from './manifest-image.js';
import type { Readable } from 'node:stream';
import type { BlobOutcome, ImageSink } from './copy.js';

export function storeReader(store: LocalImageStore): BlobReader {
  return {
    open: async (d) => store.blobs.read(d.digest),
    openRange: async (d, start, end) => store.blobs.read(d.digest, { start, end }),
    readAll: (d) => store.blobs.readAll(d.digest),
    manifest: async (d: Descriptor) => ((await store.blobs.has(d.digest)) ? store.blobs.readAll(d.digest) : undefined),
  };
}

/** The stored manifest `digest` (an image or an index) as the model sees it. */
export async function storeImage(store: LocalImageStore, digest: string, mediaType?: string): Promise<ImageOrIndex> {
  const raw = await store.blobs.readAll(digest);
  return manifestOf(raw, storeReader(store), { digest, ...(mediaType ? { mediaType } : {}) });
}

/** A blob source that can write itself into an ingest faster than open() (a registry download with Range resume). */
export interface IngestCapable {
  ingestInto(store: LocalImageStore, onBytes: (n: number) => void): Promise<void>;
}

function canIngest(b: Blob): b is Blob & IngestCapable {
  return typeof (b as Partial<IngestCapable>).ingestInto === 'function';
}

export class StoreSink implements ImageSink {
  /** Blobs and manifests this sink stored: dropped by rollback() unless another image uses them. */
  readonly added: string[] = [];
  readonly concurrency: number;

  constructor(readonly store: LocalImageStore, opts: { concurrency?: number; onBytes?: (b: Blob, n: number) => void } = {}) {
    this.concurrency = opts.concurrency ?? 3;
    this.onBytes = opts.onBytes ?? (() => undefined);
  }

  private readonly onBytes: (b: Blob, n: number) => void;

  has(digest: string): Promise<boolean> {
    return this.store.blobs.has(digest);
  }

  async putBlob(blob: Blob, role: 'config' | 'layer'): Promise<BlobOutcome> {
    try {
      if (canIngest(blob)) await blob.ingestInto(this.store, (n) => this.onBytes(blob, n));
      else await this.store.blobs.ingest(await blob.open(), { digest: blob.digest, size: blob.size });
    } catch (e) {
      if (e instanceof RegistryError && (e.code === 'DIGEST_INVALID' || e.code === 'SIZE_INVALID')) {
        throw new RegistryError(e.code, `${role} ${blob.digest} failed verification (${e.message}); nothing was stored`);
      }
      if ((e as NodeJS.ErrnoException).code === 'ENOSPC') throw new Error(`no space left on device while storing ${blob.digest} under ${this.store.root}; nothing was stored`);
      throw e;
    }
    this.added.push(blob.digest);
    return 'written';
  }

  async putManifest(m: ImageOrIndex): Promise<void> {
    if (await this.store.blobs.has(m.digest)) return;
    await this.store.blobs.ingest([m.raw], { digest: m.digest });
    this.added.push(m.digest);
  }

  /**
   * Names what was copied: a record per image (children first), `tags` pointing at `target`,
   * `repoDigests` on each record and `sources` (blob → registry/repo) for later mounts.
   */
  async commit(manifests: ImageOrIndex[], tags: ImageReference[], target: string, opts: { repoDigests?: string[]; sources?: Record<string, string> } = {}): Promise<ImageRecord[]> {
    const records: ImageRecord[] = [];
    for (const m of manifests) records.push(await this.store.recordFor(m.digest, opts.repoDigests ?? []));
    await this.store.register(records, tags, target, opts.sources ?? {});
    return records;
  }

  /** Stores new content (a layer being built) and names it as a Blob read back from the store. */
  async ingestNew(source: Readable, mediaType: string): Promise<Blob> {
    const { digest, size } = await this.store.blobs.ingest(source);
    this.added.push(digest);
    return blobOf({ digest, size, mediaType }, storeReader(this.store), `blob ${digest}`);
  }

  async rollback(): Promise<void> {
    if (this.added.length > 0) await this.store.index.update((doc) => this.store.dropUnreferencedBlobs(doc, this.added)).catch(() => undefined);
  }
}
