// Upload sessions (distribution-spec/spec.md#pushing-a-blob-in-chunks). A session's bytes are a
// file under uploads/, its durable offset a LevelDB record. Each append is fsync'd before the
// offset moves, so after kill -9 the session resumes at the last acknowledged byte; anything past
// it is overwritten by the next chunk. The running hash lives in memory and is rebuilt from the
// file when missing (after a restart or a failed append).
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, stat } from 'node:fs/promises';
import { randomUUID, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { parseDigest, type DigestAlgorithm } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { DataLayout, isUploadId } from './layout.js';
import { BlobStore } from './blob-store.js';
import type { RegistryMetadata, UploadRecord } from './registry-metadata.js';
import { SizeLimitError, streamIntoFile, unlinkQuietly } from './durable-file.js';

export interface UploadSession extends UploadRecord {
  id: string;
}

/** An inclusive byte range as sent in Content-Range. */
export interface ChunkRange {
  start: number;
  end: number;
}

export class UploadSessions {
  private readonly hashes = new Map<string, Hash>();
  private readonly locks = new Map<string, Promise<void>>();

  constructor(
    private readonly layout: DataLayout,
    private readonly meta: RegistryMetadata,
    private readonly blobs: BlobStore,
  ) {}

  async init(): Promise<void> {
    await mkdir(this.layout.uploadsDir, { recursive: true });
  }

  async create(name: string, algorithm: DigestAlgorithm = 'sha256'): Promise<UploadSession> {
    const id = randomUUID();
    const fh = await open(this.layout.uploadPath(id), 'w');
    await fh.close();
    const now = new Date().toISOString();
    const record: UploadRecord = { name, algorithm, offset: 0, started: now, updated: now };
    await this.meta.createUpload(id, record);
    this.hashes.set(id, createHash(algorithm));
    return { id, ...record };
  }

  /** The session, if it exists and belongs to repository `name`; else BLOB_UPLOAD_UNKNOWN. */
  async get(id: string, name: string): Promise<UploadSession> {
    const record = isUploadId(id) ? await this.meta.getUpload(id) : undefined;
    if (!record || record.name !== name) {
      throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `upload ${JSON.stringify(id.slice(0, 80))} is unknown to repository ${name}`);
    }
    // Fix: a record whose file is gone (a crash between the commit rename and the record delete
    // of an older berth, or a hand-cleaned uploads/) made every later PATCH/PUT a 500 while GET
    // claimed the upload alive. Such a session is over: forget it and say so.
    if ((await stat(this.layout.uploadPath(id)).catch(() => undefined)) === undefined) {
      await this.meta.deleteUpload(id);
      this.hashes.delete(id);
      throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `upload ${id} was lost (its data is gone): start a new upload`);
    }
    return { id, ...record };
  }

  /**
   * Appends a chunk. With `range`, its start must equal the current offset (else 416) and its
   * length the bytes received. Returns the session with its new offset.
   */
  append(id: string, name: string, source: AsyncIterable<Uint8Array> | Readable, range?: ChunkRange, limit?: number): Promise<UploadSession> {
    return this.locked(id, async () => {
      const session = await this.get(id, name);
      return this.appendLocked(session, source, range, limit);
    });
  }

  /**
   * Closes the session: appends a final chunk if given, verifies the whole content against
   * `digest`, and moves it into the blob store. On a digest mismatch the session is removed and
   * nothing is stored.
   */
  complete(
    id: string,
    name: string,
    digest: string,
    final?: { source: AsyncIterable<Uint8Array> | Readable; range?: ChunkRange; limit?: number },
  ): Promise<{ digest: string; size: number }> {
    const expected = parseDigest(digest);
    return this.locked(id, async () => {
      let session = await this.get(id, name);
      if (final) session = await this.appendLocked(session, final.source, final.range, final.limit);
      let actual: string;
      if (expected.algorithm === session.algorithm) {
        const hash = await this.hashFor(session);
        actual = `${session.algorithm}:${hash.copy().digest('hex')}`;
      } else {
        actual = `${expected.algorithm}:${(await this.hashFile(id, session.offset, expected.algorithm)).digest('hex')}`;
      }
      if (actual !== digest) {
        await this.remove(id);
        throw new RegistryError('DIGEST_INVALID', `uploaded content has digest ${actual}, not ${digest}`);
      }
      const path = this.layout.uploadPath(id);
      const fh = await open(path, 'r+');
      try {
        // Bytes past the acknowledged offset may remain from an append that failed.
        await fh.truncate(session.offset);
        await fh.sync();
      } finally {
        await fh.close();
      }
      // Fix: the record goes first. A crash between the two steps now leaves an orphan upload file
      // (removed by purge) and a cleanly unknown upload, never a record without its file.
      await this.meta.deleteUpload(id);
      this.hashes.delete(id);
      await this.blobs.commitFile(path, digest, session.offset);
      return { digest, size: session.offset };
    });
  }

  cancel(id: string, name: string): Promise<void> {
    return this.locked(id, async () => {
      await this.get(id, name);
      await this.remove(id);
    });
  }

  /** Removes sessions not touched for `maxAgeMs`, and upload files no session owns. */
  async purge(maxAgeMs: number): Promise<number> {
    const cutoff = Date.now() - maxAgeMs;
    let removed = 0;
    for await (const [id, record] of this.meta.listUploads()) {
      if (Date.parse(record.updated) < cutoff && !this.locks.has(id)) {
        await this.remove(id);
        removed++;
      }
    }
    for (const file of await readdir(this.layout.uploadsDir)) {
      if (!isUploadId(file) || (await this.meta.getUpload(file)) !== undefined || this.locks.has(file)) continue;
      const st = await stat(this.layout.uploadPath(file)).catch(() => undefined);
      if (st && st.mtimeMs < cutoff) {
        await unlinkQuietly(this.layout.uploadPath(file));
        removed++;
      }
    }
    return removed;
  }

  private async appendLocked(session: UploadSession, source: AsyncIterable<Uint8Array> | Readable, range?: ChunkRange, limit = Number.POSITIVE_INFINITY): Promise<UploadSession> {
    if (range && range.start !== session.offset) {
      drain(source);
      throw new RegistryError('RANGE_INVALID', `chunk starts at byte ${range.start}, but the upload has ${session.offset} bytes: send the range starting at ${session.offset}`, {
        detail: { offset: session.offset },
      });
    }
    const hash = await this.hashFor(session);
    const fh = await open(this.layout.uploadPath(session.id), 'r+');
    let received: number;
    try {
      received = await streamIntoFile(source, fh, session.offset, (c) => hash.update(c), limit - session.offset);
      if (range && received !== range.end - range.start + 1) {
        throw new RegistryError('RANGE_INVALID', `Content-Range ${range.start}-${range.end} announces ${range.end - range.start + 1} bytes, received ${received}`);
      }
      await fh.sync();
    } catch (e) {
      // The in-memory hash has absorbed bytes that are not acknowledged: rebuild it next time.
      this.hashes.delete(session.id);
      if (e instanceof SizeLimitError) throw new RegistryError('SIZE_INVALID', `blob exceeds the upload limit of ${limit} bytes`, { status: 413 });
      throw e;
    } finally {
      await fh.close();
    }
    const record: UploadRecord = { name: session.name, algorithm: session.algorithm, offset: session.offset + received, started: session.started, updated: new Date().toISOString() };
    if (!(await this.meta.updateUpload(session.id, record, session.offset))) {
      throw new RegistryError('BLOB_UPLOAD_INVALID', `upload ${session.id} was changed by another request meanwhile: ask for its offset (GET) and continue from there`);
    }
    return { id: session.id, ...record };
  }

  private async hashFor(session: UploadSession): Promise<Hash> {
    let hash = this.hashes.get(session.id);
    if (!hash) {
      hash = await this.hashFile(session.id, session.offset, session.algorithm);
      this.hashes.set(session.id, hash);
    }
    return hash;
  }

  private async hashFile(id: string, length: number, algorithm: DigestAlgorithm): Promise<Hash> {
    const hash = createHash(algorithm);
    if (length === 0) return hash;
    for await (const chunk of createReadStream(this.layout.uploadPath(id), { start: 0, end: length - 1, highWaterMark: 1 << 20 })) {
      hash.update(chunk as Buffer);
    }
    return hash;
  }

  private async remove(id: string): Promise<void> {
    await this.meta.deleteUpload(id);
    this.hashes.delete(id);
    await unlinkQuietly(this.layout.uploadPath(id));
  }

  /** Serialises operations on one session: concurrent PATCHes of one upload never interleave. */
  private async locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chain = prev.then(() => mine);
    this.locks.set(id, chain);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(id) === chain) this.locks.delete(id);
    }
  }
}

/** Consumes a rejected request body so the connection stays usable. */
function drain(source: AsyncIterable<Uint8Array> | Readable): void {
  if (typeof (source as Readable).resume === 'function') (source as Readable).resume();
}
