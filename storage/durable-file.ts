// Crash-safe file primitives: stream to a file while hashing in bounded memory, fsync, rename.
import { open, rename, mkdir, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';

/**
 * Bytes gathered before one writev: large writes keep syscalls few while memory stays bounded.
 * 4 MiB measured faster than 1 MiB on the push path (bench/registry.ts, docs/performance.md).
 */
const WRITE_BATCH = 4 << 20;

/**
 * After this many bytes, an fdatasync starts in the background while the stream goes on, so the
 * disk writes back during the upload instead of all at the final fsync (Linux holds up to
 * dirty_background_ratio of RAM before writing back by itself). Measured: the final fsync of a
 * 512 MiB blob otherwise costs as long as receiving it (docs/performance.md).
 */
const SYNC_EVERY = 32 << 20;

export class SizeLimitError extends Error {
  constructor(readonly limit: number) {
    super(`content exceeds the limit of ${limit} bytes`);
  }
}

/**
 * Writes `source` at `position` of an open file, calling `onChunk` for each chunk in order.
 * Resolves to the number of bytes written. One batch is written while the next is gathered, so
 * memory stays under ~2 × WRITE_BATCH whatever the size. Durability is still the caller's fsync.
 */
export async function streamIntoFile(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Readable,
  fh: FileHandle,
  position: number,
  onChunk: (chunk: Uint8Array) => void,
  limit = Number.POSITIVE_INFINITY,
): Promise<number> {
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  /** Bytes handed to writes so far; the next batch goes at position + queued. */
  let queued = 0;
  let writing: Promise<void> = Promise.resolve();
  let syncing: Promise<void> | undefined;
  let syncFailure: unknown;
  let unsynced = 0;
  const writeAll = async (bufs: Uint8Array[], at: number, want: number): Promise<void> => {
    // writev may write less than asked; continue from where it stopped.
    let rest = bufs;
    while (want > 0) {
      const { bytesWritten } = await fh.writev(rest, at);
      at += bytesWritten;
      want -= bytesWritten;
      if (want > 0) rest = dropBytes(rest, bytesWritten);
    }
  };
  const flush = async (): Promise<void> => {
    if (pendingBytes === 0) return;
    const bufs = pending;
    const want = pendingBytes;
    const at = position + queued;
    pending = [];
    pendingBytes = 0;
    queued += want;
    await writing; // at most one batch in flight; rethrows its failure
    writing = writeAll(bufs, at, want);
    writing.catch(() => undefined); // observed by the next await
    unsynced += want;
    if (unsynced >= SYNC_EVERY && !syncing) {
      unsynced = 0;
      syncing = writing
        .then(() => fh.datasync())
        .catch((e: unknown) => {
          syncFailure ??= e;
        })
        .finally(() => {
          syncing = undefined;
        });
    }
  };
  try {
    for await (const raw of source as AsyncIterable<Uint8Array | string> | Iterable<Uint8Array>) {
      const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
      if (queued + pendingBytes + chunk.length > limit) throw new SizeLimitError(limit);
      onChunk(chunk);
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= WRITE_BATCH) await flush();
    }
    await flush();
    await writing;
    await syncing;
    if (syncFailure) throw syncFailure;
    return queued;
  } finally {
    // Never leave an operation running on a handle the caller is about to close.
    await writing.catch(() => undefined);
    await syncing;
  }
}

function dropBytes(bufs: Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const b of bufs) {
    if (n >= b.length) {
      n -= b.length;
      continue;
    }
    out.push(n > 0 ? b.subarray(n) : b);
    n = 0;
  }
  return out;
}

/** fsyncs a directory so a rename or unlink inside it survives a power cut. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Moves a fully written, fsync'd file into its final place, creating parent folders. */
export async function renameDurably(from: string, to: string): Promise<void> {
  const dir = dirname(to);
  await mkdir(dir, { recursive: true });
  await rename(from, to);
  await fsyncDir(dir);
}

export async function unlinkQuietly(path: string): Promise<void> {
  await unlink(path).catch(() => undefined);
}
