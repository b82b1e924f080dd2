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
 * Appends buffers to a file in order, one write at a time, without making the producer wait for
 * each: `append` queues the write and returns when it is done. After every SYNC_EVERY bytes an
 * fdatasync is queued behind the writes, so the disk writes back during the stream and the final
 * fsync finds little left (docs/performance.md). The first failure is kept and thrown by `drain`.
 */
export class FileAppender {
  private tail: Promise<void> = Promise.resolve();
  private failure: unknown;
  private unsynced = 0;
  private syncing: Promise<void> | undefined;
  /** File offset of the next append. */
  position: number;

  constructor(
    private readonly fh: FileHandle,
    position: number,
  ) {
    this.position = position;
  }

  /** Queues `bufs` (`bytes` in all) after every earlier append; settles when they are written. */
  append(bufs: Uint8Array[], bytes: number): Promise<void> {
    const at = this.position;
    this.position += bytes;
    const written = this.tail.then(() => {
      if (this.failure !== undefined) throw this.failure;
      return writeFully(this.fh, bufs, at, bytes);
    });
    this.tail = written.catch((e: unknown) => {
      this.failure ??= e;
    });
    this.unsynced += bytes;
    if (this.unsynced >= SYNC_EVERY && !this.syncing) {
      this.unsynced = 0;
      // Not on `tail`: the next writes need not wait for the disk.
      this.syncing = written
        .then(() => this.fh.datasync())
        .catch((e: unknown) => {
          this.failure ??= e;
        })
        .finally(() => {
          this.syncing = undefined;
        });
    }
    return written;
  }

  /** The first write or sync failure so far (ENOSPC, EIO…), for producers that can stop early. */
  get failed(): unknown {
    return this.failure;
  }

  /** Waits for every queued write and background sync; throws the first failure. */
  async drain(): Promise<void> {
    await this.tail;
    await this.syncing;
    if (this.failure !== undefined) throw this.failure;
  }
}

/** writev may write less than asked; continues from where it stopped. */
async function writeFully(fh: FileHandle, bufs: Uint8Array[], at: number, want: number): Promise<void> {
  let rest = bufs;
  while (want > 0) {
    const { bytesWritten } = await fh.writev(rest, at);
    at += bytesWritten;
    want -= bytesWritten;
    if (want > 0) rest = dropBytes(rest, bytesWritten);
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
  const appender = new FileAppender(fh, position);
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let writing: Promise<void> = Promise.resolve();
  const flush = async (): Promise<void> => {
    if (pendingBytes === 0) return;
    await writing; // at most one batch in flight; rethrows its failure
    writing = appender.append(pending, pendingBytes);
    writing.catch(() => undefined); // observed by the next await or by drain
    pending = [];
    pendingBytes = 0;
  };
  try {
    for await (const raw of source as AsyncIterable<Uint8Array | string> | Iterable<Uint8Array>) {
      const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
      if (appender.position - position + pendingBytes + chunk.length > limit) throw new SizeLimitError(limit);
      onChunk(chunk);
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= WRITE_BATCH) await flush();
    }
    await flush();
    await appender.drain();
    return appender.position - position;
  } finally {
    // Never leave an operation running on a handle the caller is about to close.
    await appender.drain().catch(() => undefined);
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
