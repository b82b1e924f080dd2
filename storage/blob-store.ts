// Content-addressed blob store on the filesystem. A file under blobs/ exists only once its bytes
// were fsync'd and verified against its digest, so anything found there is valid content.
import { createReadStream, type ReadStream } from 'node:fs';
import { mkdir, open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { randomHex } from './random-hex.js';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Digester, parseDigest, type DigestAlgorithm } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { DataLayout } from './layout.js';
import { BlobIngest } from './blob-ingest.js';
import { renameDurably, streamIntoFile, unlinkQuietly, SizeLimitError } from './durable-file.js';

export interface IngestExpectation {
  digest?: string;
  size?: number;
  algorithm?: DigestAlgorithm;
  limit?: number;
  /** The caller already holds the commit guard for this digest and records the commit itself. */
  guardHeld?: boolean;
  /** Runs inside the guard right after the blob became visible (storage/blob-driver.ts, CommitHook). */
  afterCommit?: (size: number) => Promise<void>;
}

/**
 * Wraps every commit of a blob: the registry records when the digest was committed (GC's grace
 * period) and keeps the commit atomic against GC deleting the same digest (storage/content-records.ts).
 */
export interface CommitGuard {
  committing(digest: string, size: number, place: () => Promise<void>): Promise<void>;
}

/** Read buffer of blob streams: large reads keep a pull at disk speed with few syscalls. */
const READ_CHUNK = 1 << 20;

export class BlobStore {
  readonly layout: DataLayout;
  private readonly guard: CommitGuard | undefined;
  constructor(layout: DataLayout, guard?: CommitGuard) {
    this.layout = layout;
    this.guard = guard;
  }

  async init(): Promise<void> {
    await mkdir(this.layout.blobsDir, { recursive: true });
    await mkdir(this.layout.tmpDir, { recursive: true });
  }

  /**
   * Removes temp files a crashed process left in tmp/ (an ingest cut off by kill -9) that are at
   * least `olderThanMs` old. With 0, only call while no other process can write into tmp/ (the
   * data folder's LevelDB lock is held): another live process's temp files look the same.
   */
  async removeStaleTempFiles(olderThanMs = 0): Promise<number> {
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    for (const n of await readdir(this.layout.tmpDir)) {
      const p = join(this.layout.tmpDir, n);
      if (olderThanMs > 0 && ((await stat(p).catch(() => undefined))?.mtimeMs ?? cutoff) >= cutoff) continue;
      await unlinkQuietly(p);
      removed++;
    }
    return removed;
  }

  /** Size of the stored blob, or undefined when absent. */
  async size(digest: string): Promise<number | undefined> {
    try {
      return (await stat(this.layout.blobPath(digest))).size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async has(digest: string): Promise<boolean> {
    return (await this.size(digest)) !== undefined;
  }

  /** Streams the blob, or the inclusive byte range [start, end]. */
  read(digest: string, range?: { start: number; end: number }): ReadStream {
    return createReadStream(this.layout.blobPath(digest), { highWaterMark: READ_CHUNK, ...range });
  }

  async readAll(digest: string): Promise<Buffer> {
    const fh = await open(this.layout.blobPath(digest), 'r');
    try {
      return await fh.readFile();
    } finally {
      await fh.close();
    }
  }

  /**
   * Stores `source`, hashing while it streams. With an expected digest or size, a mismatch
   * throws DIGEST_INVALID / SIZE_INVALID and leaves nothing behind. Returns the digest and size.
   */
  async ingest(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Readable, expect: IngestExpectation = {}): Promise<{ digest: string; size: number }> {
    const { fh, tmp, digester } = await this.openTemp(expect);
    let committed = false;
    try {
      let size: number;
      try {
        size = await streamIntoFile(source, fh, 0, (c) => digester.update(c), expect.limit);
      } catch (e) {
        if (e instanceof SizeLimitError) throw new RegistryError('SIZE_INVALID', e.message, { status: 413 });
        throw e;
      }
      const stored = await this.seal(fh, tmp, digester, size, expect);
      committed = true;
      return stored;
    } finally {
      if (!committed) {
        await fh.close().catch(() => undefined);
        await unlinkQuietly(tmp);
      }
    }
  }

  /**
   * Starts storing a blob whose producer fills the ingest's buffers (storage/blob-ingest.ts);
   * `finish()` verifies it as `ingest` does, `abort()` leaves nothing behind.
   */
  async openIngest(expect: { digest: string; size: number }): Promise<BlobIngest> {
    const { fh, tmp, digester } = await this.openTemp(expect);
    let closed = false;
    const abort = async (): Promise<void> => {
      if (closed) return;
      closed = true;
      await fh.close().catch(() => undefined);
      await unlinkQuietly(tmp);
    };
    const finish = async (size: number): Promise<{ digest: string; size: number }> => {
      try {
        const stored = await this.seal(fh, tmp, digester, size, expect);
        closed = true;
        return stored;
      } catch (e) {
        await abort();
        throw e;
      }
    };
    return new BlobIngest({ fh, digester, size: expect.size, finish, abort });
  }

  private async openTemp(expect: IngestExpectation): Promise<{ fh: FileHandle; tmp: string; digester: Digester }> {
    const algorithm = expect.digest ? parseDigest(expect.digest).algorithm : (expect.algorithm ?? 'sha256');
    const tmp = join(this.layout.tmpDir, `ingest-${randomHex(16)}`);
    const fh = await open(tmp, 'w');
    return { fh, tmp, digester: new Digester(algorithm) };
  }

  /** Checks the written content against `expect`, then fsyncs, closes and names it. */
  private async seal(fh: FileHandle, tmp: string, digester: Digester, size: number, expect: IngestExpectation): Promise<{ digest: string; size: number }> {
    const digest = digester.digest();
    if (expect.size !== undefined && expect.size !== size) {
      throw new RegistryError('SIZE_INVALID', `expected ${expect.size} bytes, received ${size}`);
    }
    if (expect.digest !== undefined && expect.digest !== digest) {
      throw new RegistryError('DIGEST_INVALID', `content digest ${digest} does not match ${expect.digest}`);
    }
    await fh.sync();
    await fh.close();
    await this.commitFile(tmp, digest, size, { guardHeld: expect.guardHeld === true, ...(expect.afterCommit ? { afterCommit: expect.afterCommit } : {}) });
    return { digest, size };
  }

  /** Stores small content held in memory (manifests, configs). */
  async putBytes(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256', opts: { guardHeld?: boolean } = {}): Promise<{ digest: string; size: number }> {
    return this.ingest([bytes], { algorithm, guardHeld: opts.guardHeld === true });
  }

  /**
   * Moves an fsync'd file whose content is known to hash to `digest` into the store. When the
   * blob already exists the file is dropped: content addressing makes both copies identical.
   */
  async commitFile(path: string, digest: string, size: number, opts: { guardHeld?: boolean; afterCommit?: (size: number) => Promise<void> } = {}): Promise<void> {
    const place = async (): Promise<void> => {
      if (await this.has(digest)) await unlinkQuietly(path);
      else await renameDurably(path, this.layout.blobPath(digest));
      await opts.afterCommit?.(size);
    };
    if (this.guard && !opts.guardHeld) await this.guard.committing(digest, size, place);
    else await place();
  }

  async delete(digest: string): Promise<void> {
    await unlinkQuietly(this.layout.blobPath(digest));
  }
}
