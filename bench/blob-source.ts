// Deterministic blob content produced chunk by chunk, so a benchmark can push gigabytes without
// holding them: chunk i of blob `seed` is a shared random MiB stamped with (seed, i). The same
// (seed, size) always yields the same bytes, so the digest is computed by a first pass.
import { createHash, randomFillSync } from 'node:crypto';

export const CHUNK = 1 << 20;
const base = randomFillSync(Buffer.alloc(CHUNK));

/**
 * Buffers handed out in turn. A consumer that takes the next chunk only after the socket accepted
 * the previous one (undici waits for 'drain', a hash consumes synchronously) never sees one reused
 * while still queued; a corrupted push would fail its digest check anyway. Allocating a fresh MiB
 * per chunk cost the client more CPU than the servers spent receiving (measured).
 */
const RING = Array.from({ length: 4 }, () => Buffer.from(base));
let turn = 0;

/** Bytes [from, to) of blob `seed` in pieces of at most 1 MiB (from must be MiB-aligned). */
export function* blobChunks(seed: number, from: number, to: number): Generator<Buffer> {
  if (from % CHUNK !== 0) throw new Error('blobChunks: from must be a multiple of 1 MiB');
  for (let at = from; at < to; at += CHUNK) {
    const len = Math.min(CHUNK, to - at);
    const buf = RING[turn++ % RING.length]!;
    buf.writeUInt32LE(seed, 0);
    buf.writeUInt32LE(at / CHUNK, 4);
    // A short last chunk is a prefix of the ring buffer (needs len >= 8 to carry the stamp).
    yield len === CHUNK ? buf : buf.subarray(0, len);
  }
}

export function blobDigest(seed: number, size: number): string {
  const h = createHash('sha256');
  for (const c of blobChunks(seed, 0, size)) h.update(c);
  return `sha256:${h.digest('hex')}`;
}
