// Crash-safe file primitives: stream to a file while hashing in bounded memory, fsync, rename.
import { open, rename, mkdir, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';

/** Bytes gathered before one writev: large writes keep syscalls few while memory stays bounded. */
const WRITE_BATCH = 1 << 20;

export class SizeLimitError extends Error {
  constructor(readonly limit: number) {
    super(`content exceeds the limit of ${limit} bytes`);
  }
}

/**
 * Writes `source` at `position` of an open file, calling `onChunk` for each chunk in order.
 * Resolves to the number of bytes written. Memory stays under ~WRITE_BATCH whatever the size.
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
  let written = 0;
  const flush = async (): Promise<void> => {
    if (pendingBytes === 0) return;
    const bufs = pending;
    let want = pendingBytes;
    pending = [];
    pendingBytes = 0;
    let at = position + written;
    // writev may write less than asked; continue from where it stopped.
    let rest: Uint8Array[] = bufs;
    while (want > 0) {
      const { bytesWritten } = await fh.writev(rest, at);
      at += bytesWritten;
      written += bytesWritten;
      want -= bytesWritten;
      if (want > 0) rest = dropBytes(rest, bytesWritten);
    }
  };
  for await (const raw of source as AsyncIterable<Uint8Array | string> | Iterable<Uint8Array>) {
    const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
    if (written + pendingBytes + chunk.length > limit) throw new SizeLimitError(limit);
    onChunk(chunk);
    pending.push(chunk);
    pendingBytes += chunk.length;
    if (pendingBytes >= WRITE_BATCH) await flush();
  }
  await flush();
  return written;
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
