// The contract every blob storage backend meets (the `fs` driver: files in the data folder; the
// `s3` driver: any S3-compatible object store). It is content-addressed and narrow on purpose
// (distribution's storagedriver is the model, minus paths): keys are verified digests, written
// once; upload sessions are bytes only. Hashing, offsets, session records and the GC protocol live
// above it (storage/uploads.ts, storage/registry-store.ts, storage/gc.ts), so every driver gets
// them unchanged. storage/drivers/driver-suite.ts is the one suite every driver passes.
import type { Readable } from 'node:stream';

export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Readable;

/** An inclusive byte range, as HTTP Range and Content-Range count. */
export interface ByteRange {
  start: number;
  end: number;
}

/** Bad storage configuration found at start (bucket missing, wrong credentials): one clear line. */
export class StorageConfigError extends Error {
  override name = 'StorageConfigError';
}

/** The storage backend could not be reached or failed (S3 down): the registry answers 503, retryable. */
export class StorageUnavailableError extends Error {
  override name = 'StorageUnavailableError';
}

/**
 * The data folder's file system is full (ENOSPC) or the quota is used up (EDQUOT): an error of a
 * blob or upload write, or of LevelDB (classic-level reports it as an IO error whose message ends
 * with the system's text, e.g. "IO error: …/000012.log: No space left on device"), found on the
 * error or its causes.
 */
export function isStorageFull(e: unknown): boolean {
  for (let err = e, depth = 0; err && depth < 5; err = (err as { cause?: unknown }).cause, depth++) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return true;
    if (/No space left on device|Disk quota exceeded/.test(String((err as Error).message))) return true;
  }
  return false;
}

/**
 * Wraps the moment a blob becomes visible under its digest: the registry records the commit (GC's
 * grace period comes from that record) and keeps it atomic against GC deleting the same digest.
 * `place` makes the blob visible, or drops the new copy when the digest is already stored.
 */
export interface CommitGuard {
  committing(digest: string, size: number, place: () => Promise<void>): Promise<void>;
}

/**
 * What a driver keeps about an upload session in progress, stored by the caller with the session
 * record (LevelDB or PostgreSQL) after each acknowledged append, so any replica can continue it.
 * JSON-serialisable; its shape is the driver's own (fs: nothing; s3: multipart upload id, parts).
 */
export type UploadState = Record<string, unknown>;

export interface AppendOptions {
  /** Bytes the session holds before this append (the acknowledged offset). */
  offset: number;
  /** The session may not grow past this many bytes: SizeLimitError (storage/durable-file.ts). */
  limit: number;
  /** Sees every byte in order, before it is acknowledged (the running digest). */
  onChunk: (chunk: Uint8Array) => void;
}

export interface PutExpectation {
  digest: string;
  size?: number;
  limit?: number;
  /** The caller already holds the CommitGuard for this digest and records the commit itself. */
  guardHeld?: boolean;
  /** See CommitHook. */
  afterCommit?: (size: number) => Promise<void>;
}

export interface CommitHook {
  /**
   * Runs inside the commit guard right after the blob became visible (or was found already
   * stored): the registry links the blob to its repository there, so GC cannot collect it
   * between the commit and the link.
   */
  afterCommit?: (size: number) => Promise<void>;
}

export interface BlobDriver {
  readonly kind: 'fs' | 's3';

  /** Prepares and checks the store (folders; bucket reachable with these credentials). StorageConfigError when misconfigured. */
  open(): Promise<void>;
  close(): Promise<void>;

  /** Size of the stored blob, or undefined when absent. */
  stat(digest: string): Promise<number | undefined>;
  /** The blob's bytes, or the inclusive range. Rejects with an ENOENT-coded error when absent. */
  read(digest: string, range?: ByteRange): Promise<Readable>;
  /** The blob's path when it is a local file (the fs driver), for the zero-copy send path. */
  localPath?(digest: string): string;
  /** A short-lived URL a client may GET the blob from itself (S3 pre-signed), or undefined. */
  redirectUrl?(digest: string, expiresInSeconds: number): Promise<string | undefined>;
  /**
   * Stores `source` as `expect.digest`. The blob becomes visible only after its bytes hashed to
   * that digest (and `expect.size`, when given): DIGEST_INVALID / SIZE_INVALID otherwise, with
   * nothing left behind. Over `expect.limit` bytes: SIZE_INVALID 413.
   */
  put(source: ByteSource, expect: PutExpectation): Promise<{ digest: string; size: number }>;
  delete(digest: string): Promise<void>;
  /** Every stored digest, in no particular order (GC's sweep). */
  list(): AsyncIterable<string>;

  /** Begins storing the bytes of upload session `id` (a UUID). */
  startUpload(id: string): Promise<UploadState>;
  /**
   * Appends `source` at `opts.offset`. Returns once the bytes are durable, with the state to record.
   * Bytes of an append that failed or was cut off are never counted: the next append at the same
   * offset replaces them.
   */
  appendUpload(id: string, state: UploadState, source: ByteSource, opts: AppendOptions): Promise<{ state: UploadState; received: number }>;
  /**
   * Makes the session's first `size` bytes, already verified by the caller to hash to `digest`,
   * the blob `digest` (through the CommitGuard), then removes the session's bytes.
   */
  finishUpload(id: string, state: UploadState, size: number, digest: string, hook?: CommitHook): Promise<void>;
  /** Removes the session's bytes. Safe to call for a session with none, and with `{}` for data no session owns. */
  abortUpload(id: string, state: UploadState): Promise<void>;
  /** Reads back the session's first `length` bytes, where the driver can (fs): lets a replica rebuild a running hash. */
  readUpload?(id: string, length: number): Promise<Readable>;
  /** Upload data present in the store, with when it was last written: purge removes what no session owns. */
  listUploads(): AsyncIterable<{ id: string; modified: number }>;
}
