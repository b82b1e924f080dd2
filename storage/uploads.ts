// Upload sessions (distribution-spec/spec.md#pushing-a-blob-in-chunks). A session's bytes are the
// blob driver's (a file under uploads/, or S3 multipart parts); its durable offset, the driver's
// state and, where the driver cannot read bytes back, the running digest's saved state are the
// metadata's record (storage/registry-metadata.ts). Each append is durable before the record's
// offset moves, by a compare-and-set on the offset, so after kill -9 or on another replica the
// session resumes at the last acknowledged byte; anything past it is replaced by the next chunk.
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { parseDigest, type DigestAlgorithm } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { isUploadId } from './layout.js';
import { KeyedLock } from './keyed-lock.js';
import type { BlobDriver, ByteSource } from './blob-driver.js';
import type { RegistryMetadata, UploadRecord } from './registry-metadata.js';
import { SizeLimitError } from './durable-file.js';
import { nodeRunningHash, resumableRunningHash, type RunningHash } from './running-hash.js';

export interface UploadSession extends UploadRecord {
  id: string;
}

/** An inclusive byte range as sent in Content-Range. */
export interface ChunkRange {
  start: number;
  end: number;
}

/** What the store does when a session completes: checks a quota before the bytes are committed, links after. */
export interface UploadCompletion {
  /**
   * Throws (QuotaExceededError, or DENIED for a session of a push refused meanwhile) when the blob
   * may not be added to the repository; nothing is stored then. `started`: the session's start.
   */
  admit(name: string, digest: string, size: number, started: string): Promise<void>;
  /** Links the committed blob into the repository, inside the commit guard. */
  link(name: string, digest: string, size: number, started: string): Promise<void>;
  /** A completion was refused (DENIED): called once the session's lock is released. */
  refused?(name: string): Promise<void>;
}

export class UploadSessions {
  /** Running hashes of sessions this process appended to last, valid at `offset`. */
  private readonly running = new Map<string, { hash: RunningHash; offset: number }>();
  private readonly locks = new KeyedLock();

  constructor(
    private readonly meta: RegistryMetadata,
    private readonly driver: BlobDriver,
    private readonly completion: UploadCompletion = { admit: async () => undefined, link: (name, digest, size) => meta.linkBlob(name, digest, size) },
  ) {}

  /** Whether the running digest travels in the record (the driver cannot read bytes back). */
  private get savesHash(): boolean {
    return this.driver.readUpload === undefined;
  }

  async create(name: string, algorithm: DigestAlgorithm = 'sha256'): Promise<UploadSession> {
    const id = randomUUID();
    const state = await this.driver.startUpload(id);
    const hash = this.savesHash ? await resumableRunningHash(algorithm) : nodeRunningHash(algorithm);
    const now = new Date().toISOString();
    const record: UploadRecord = { name, algorithm, offset: 0, started: now, updated: now, driver: state };
    const saved = hash.save();
    if (saved !== undefined) record.hash = saved;
    await this.meta.createUpload(id, record);
    this.running.set(id, { hash, offset: 0 });
    return { id, ...record };
  }

  /** The session, if it exists and belongs to repository `name`; else BLOB_UPLOAD_UNKNOWN. */
  async get(id: string, name: string): Promise<UploadSession> {
    const record = isUploadId(id) ? await this.meta.getUpload(id) : undefined;
    if (!record || record.name !== name) {
      throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `upload ${JSON.stringify(id.slice(0, 80))} is unknown to repository ${name}`);
    }
    return { id, ...record };
  }

  /**
   * Appends a chunk. With `range`, its start must equal the current offset (else 416) and its
   * length the bytes received. Returns the session with its new offset.
   */
  append(id: string, name: string, source: ByteSource, range?: ChunkRange, limit?: number): Promise<UploadSession> {
    return this.locked(id, async () => {
      const session = await this.get(id, name);
      return this.lostAsUnknown(session, () => this.appendLocked(session, source, range, limit));
    });
  }

  /**
   * Closes the session: appends a final chunk if given, verifies the whole content against
   * `digest`, and makes it a blob linked into the session's repository. On a digest mismatch the
   * session is removed and nothing is stored.
   */
  complete(id: string, name: string, digest: string, final?: { source: ByteSource; range?: ChunkRange; limit?: number }): Promise<{ digest: string; size: number }> {
    const expected = parseDigest(digest);
    const done = this.locked(id, async () => {
      let session = await this.get(id, name);
      return this.lostAsUnknown(session, async () => {
        if (final) session = await this.appendLocked(session, final.source, final.range, final.limit);
        let actual: string;
        if (expected.algorithm === session.algorithm) {
          actual = `${session.algorithm}:${(await this.hashFor(session)).peekHex()}`;
        } else if (this.driver.readUpload) {
          const other = nodeRunningHash(expected.algorithm);
          await this.rehash(session, other);
          actual = `${expected.algorithm}:${other.peekHex()}`;
        } else {
          throw new RegistryError('DIGEST_INVALID', `upload ${id} was hashed with ${session.algorithm}: to finish it with a ${expected.algorithm} digest, start the upload with ?digest-algorithm=${expected.algorithm}`);
        }
        if (actual !== digest) {
          await this.remove(session);
          throw new RegistryError('DIGEST_INVALID', `uploaded content has digest ${actual}, not ${digest}`);
        }
        // The blob first, then the record: if storing fails (S3 down), the session is still there
        // for the client's retry; a crash in between leaves a record whose bytes are gone, which
        // the next request finds cleanly unknown (lostAsUnknown). The blob is linked into the
        // repository inside the commit guard, so GC cannot take it between commit and link.
        // A refused blob (a quota) ends the session with nothing stored; one refused at the link
        // (another push took the room meanwhile) leaves unlinked content, which GC collects.
        try {
          await this.completion.admit(name, digest, session.offset, session.started);
          await this.driver.finishUpload(id, session.driver ?? {}, session.offset, digest, { afterCommit: (size) => this.completion.link(name, digest, size, session.started) });
        } catch (e) {
          if ((e as { code?: unknown }).code === 'DENIED') await this.remove(session);
          throw e;
        }
        await this.meta.deleteUpload(id);
        this.running.delete(id);
        return { digest, size: session.offset };
      });
    });
    if (!this.completion.refused) return done;
    // The rest of a refused push is released outside the session's lock (it cancels sessions).
    return done.catch(async (e: unknown) => {
      if ((e as { code?: unknown }).code === 'DENIED') await this.completion.refused!(name);
      throw e;
    });
  }

  /**
   * Ends every open session of repository `name` without waiting for requests on them (a push
   * refused for its quota): a PATCH or PUT still running then fails, finding its session gone.
   */
  async abandon(name: string): Promise<number> {
    const ids: Array<[string, UploadRecord]> = [];
    for await (const [id, record] of this.meta.listUploads()) if (record.name === name) ids.push([id, record]);
    for (const [id, record] of ids) {
      await this.meta.deleteUpload(id);
      this.running.delete(id);
      await this.driver.abortUpload(id, record.driver ?? {}).catch(() => undefined);
    }
    return ids.length;
  }

  cancel(id: string, name: string): Promise<void> {
    return this.locked(id, async () => {
      await this.remove(await this.get(id, name));
    });
  }

  /** Removes sessions not touched for `maxAgeMs`, and upload data no session owns. */
  async purge(maxAgeMs: number): Promise<number> {
    const cutoff = Date.now() - maxAgeMs;
    let removed = 0;
    for await (const [id, record] of this.meta.listUploads()) {
      if (Date.parse(record.updated) < cutoff && !this.locks.busy(id)) {
        await this.remove({ id, ...record });
        removed++;
      }
    }
    for await (const { id, modified } of this.driver.listUploads()) {
      if (modified >= cutoff || this.locks.busy(id) || (await this.meta.getUpload(id)) !== undefined) continue;
      await this.driver.abortUpload(id, {});
      removed++;
    }
    return removed;
  }

  private async appendLocked(session: UploadSession, source: ByteSource, range?: ChunkRange, limit = Number.POSITIVE_INFINITY): Promise<UploadSession> {
    if (range && range.start !== session.offset) {
      drain(source);
      throw new RegistryError('RANGE_INVALID', `chunk starts at byte ${range.start}, but the upload has ${session.offset} bytes: send the range starting at ${session.offset}`, {
        detail: { offset: session.offset },
      });
    }
    const hash = await this.hashFor(session);
    // Until the record moves, the hash has absorbed bytes that are not acknowledged.
    this.running.delete(session.id);
    let appended: Awaited<ReturnType<BlobDriver['appendUpload']>>;
    try {
      appended = await this.driver.appendUpload(session.id, session.driver ?? {}, source, { offset: session.offset, limit, onChunk: (c) => hash.update(c) });
    } catch (e) {
      if (e instanceof SizeLimitError) throw new RegistryError('SIZE_INVALID', `blob exceeds the upload limit of ${limit} bytes`, { status: 413 });
      throw e;
    }
    if (range && appended.received !== range.end - range.start + 1) {
      throw new RegistryError('RANGE_INVALID', `Content-Range ${range.start}-${range.end} announces ${range.end - range.start + 1} bytes, received ${appended.received}`);
    }
    const record: UploadRecord = {
      name: session.name,
      algorithm: session.algorithm,
      offset: session.offset + appended.received,
      started: session.started,
      updated: new Date().toISOString(),
      driver: appended.state,
    };
    const saved = hash.save();
    if (saved !== undefined) record.hash = saved;
    if (!(await this.meta.updateUpload(session.id, record, session.offset))) {
      throw new RegistryError('BLOB_UPLOAD_INVALID', `upload ${session.id} was changed by another request meanwhile: ask for its offset (GET) and continue from there`);
    }
    this.running.set(session.id, { hash, offset: record.offset });
    return { id: session.id, ...record };
  }

  /** The running hash at the session's offset: this process's, the record's saved state, or rebuilt from the bytes. */
  private async hashFor(session: UploadSession): Promise<RunningHash> {
    const mine = this.running.get(session.id);
    if (mine && mine.offset === session.offset) return mine.hash;
    if (this.savesHash) {
      if (session.hash === undefined) throw new RegistryError('BLOB_UPLOAD_INVALID', `upload ${session.id} has no saved digest state: start a new upload`);
      return resumableRunningHash(session.algorithm, session.hash);
    }
    const hash = nodeRunningHash(session.algorithm);
    await this.rehash(session, hash);
    return hash;
  }

  private async rehash(session: UploadSession, hash: RunningHash): Promise<void> {
    if (session.offset === 0) return;
    for await (const chunk of await this.driver.readUpload!(session.id, session.offset)) hash.update(chunk as Uint8Array);
  }

  /**
   * A session whose bytes are gone (a crash between storing the blob and deleting the record, a
   * hand-cleaned uploads/, an expired multipart upload) is over: forget it and say so, never 500.
   */
  private async lostAsUnknown<T>(session: UploadSession, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (code !== 'ENOENT' && code !== 'NoSuchUpload') throw e;
      await this.meta.deleteUpload(session.id);
      this.running.delete(session.id);
      throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `upload ${session.id} was lost (its data is gone): start a new upload`);
    }
  }

  private async remove(session: UploadSession): Promise<void> {
    await this.meta.deleteUpload(session.id);
    this.running.delete(session.id);
    await this.driver.abortUpload(session.id, session.driver ?? {});
  }

  /** Serialises operations on one session in this process: concurrent PATCHes never interleave. */
  private locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(id, fn);
  }
}

/** Consumes a rejected request body so the connection stays usable. */
function drain(source: ByteSource): void {
  if (typeof (source as Readable).resume === 'function') (source as Readable).resume();
}
