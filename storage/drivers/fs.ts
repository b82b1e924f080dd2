// The `fs` blob driver: blobs and upload sessions as files in the data folder, in the layout of
// storage/layout.ts (blobs/<alg>/<2 hex>/<hex>, uploads/<uuid>, tmp/). Blob writes are the
// BlobStore's (temp file, hashed while streaming, fsync, verified, renamed through the commit
// guard); session bytes are appended in place and fsync'd before an append returns.
import { mkdir, open, readdir, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { isValidDigest } from '../../oci/digest.js';
import { RegistryError } from '../../oci/errors.js';
import type { AppendOptions, BlobDriver, ByteRange, ByteSource, CommitGuard, CommitHook, PutExpectation, UploadState } from '../blob-driver.js';
import { BlobStore } from '../blob-store.js';
import { SizeLimitError, streamIntoFile, unlinkQuietly } from '../durable-file.js';
import { DataLayout, isUploadId } from '../layout.js';

/** Read buffer of blob and session streams, as the BlobStore's. */
const READ_CHUNK = 1 << 20;

export class FsBlobDriver implements BlobDriver {
  readonly kind = 'fs' as const;
  readonly store: BlobStore;

  constructor(
    readonly layout: DataLayout,
    guard?: CommitGuard,
  ) {
    this.store = new BlobStore(layout, guard);
  }

  async open(): Promise<void> {
    await this.store.init();
    await mkdir(this.layout.uploadsDir, { recursive: true });
  }

  async close(): Promise<void> {}

  stat(digest: string): Promise<number | undefined> {
    return this.store.size(digest);
  }

  /** Opens the file first, so an absent blob rejects (ENOENT) instead of failing the stream later. */
  async read(digest: string, range?: ByteRange): Promise<Readable> {
    const fh = await open(this.layout.blobPath(digest), 'r');
    return fh.createReadStream({ highWaterMark: READ_CHUNK, ...range });
  }

  localPath(digest: string): string {
    return this.layout.blobPath(digest);
  }

  put(source: ByteSource, expect: PutExpectation): Promise<{ digest: string; size: number }> {
    return this.store.ingest(source, expect);
  }

  delete(digest: string): Promise<void> {
    return this.store.delete(digest);
  }

  async *list(): AsyncIterable<string> {
    for (const algorithm of await readdirOrEmpty(this.layout.blobsDir)) {
      for (const prefix of await readdirOrEmpty(`${this.layout.blobsDir}/${algorithm}`)) {
        for (const encoded of await readdirOrEmpty(`${this.layout.blobsDir}/${algorithm}/${prefix}`)) {
          const digest = `${algorithm}:${encoded}`;
          if (encoded.startsWith(prefix) && isValidDigest(digest)) yield digest;
        }
      }
    }
  }

  async startUpload(id: string): Promise<UploadState> {
    const fh = await open(this.layout.uploadPath(id), 'w');
    await fh.close();
    return {};
  }

  /** Writes at `opts.offset`: bytes of an earlier append that was cut off are cut away first. */
  async appendUpload(id: string, _state: UploadState, source: ByteSource, opts: AppendOptions): Promise<{ state: UploadState; received: number }> {
    const fh = await open(this.layout.uploadPath(id), 'r+');
    try {
      await fh.truncate(opts.offset);
      const received = await streamIntoFile(source, fh, opts.offset, opts.onChunk, opts.limit - opts.offset);
      await fh.sync();
      return { state: {}, received };
    } catch (e) {
      if (e instanceof SizeLimitError) throw new RegistryError('SIZE_INVALID', `blob exceeds the upload limit of ${opts.limit} bytes`, { status: 413 });
      throw e;
    } finally {
      await fh.close();
    }
  }

  async finishUpload(id: string, _state: UploadState, size: number, digest: string, hook: CommitHook = {}): Promise<void> {
    const path = this.layout.uploadPath(id);
    const fh = await open(path, 'r+');
    try {
      // Bytes past the acknowledged offset may remain from an append that failed.
      await fh.truncate(size);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await this.store.commitFile(path, digest, size, hook.afterCommit ? { afterCommit: hook.afterCommit } : {});
  }

  async abortUpload(id: string): Promise<void> {
    await unlinkQuietly(this.layout.uploadPath(id));
  }

  async readUpload(id: string, length: number): Promise<Readable> {
    if (length === 0) return Readable.from([]);
    const fh = await open(this.layout.uploadPath(id), 'r');
    return fh.createReadStream({ start: 0, end: length - 1, highWaterMark: READ_CHUNK });
  }

  async *listUploads(): AsyncIterable<{ id: string; modified: number }> {
    for (const name of await readdirOrEmpty(this.layout.uploadsDir)) {
      if (!isUploadId(name)) continue;
      const st = await stat(this.layout.uploadPath(name)).catch(() => undefined);
      if (st) yield { id: name, modified: st.mtimeMs };
    }
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw e;
  }
}
