// Deterministic blob content produced chunk by chunk, so a benchmark can push gigabytes without
// holding them: chunk i of blob `seed` is a shared random MiB stamped with (seed, i). The same
// (seed, size) always yields the same bytes, so the digest is computed by a first pass.
import { createHash, randomFillSync } from 'node:crypto';

export const CHUNK = 1 << 20;
const base = randomFillSync(Buffer.alloc(CHUNK));

/** Bytes [from, to) of blob `seed` in pieces of at most 1 MiB (from must be MiB-aligned). */
export function* blobChunks(seed: number, from: number, to: number): Generator<Buffer> {
  if (from % CHUNK !== 0) throw new Error('blobChunks: from must be a multiple of 1 MiB');
  for (let at = from; at < to; at += CHUNK) {
    const len = Math.min(CHUNK, to - at);
    // A fresh buffer per chunk: the HTTP client may still hold the previous one in its socket queue.
    const buf = Buffer.allocUnsafe(len);
    base.copy(buf, 0, 0, len);
    if (len >= 8) {
      buf.writeUInt32LE(seed, 0);
      buf.writeUInt32LE(at / CHUNK, 4);
    }
    yield buf;
  }
}

export function blobDigest(seed: number, size: number): string {
  const h = createHash('sha256');
  for (const c of blobChunks(seed, 0, size)) h.update(c);
  return `sha256:${h.digest('hex')}`;
}
