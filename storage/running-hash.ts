// The running digest of an upload session. node:crypto is ~4x faster (1.5 GB/s against hash-wasm's
// 0.37 GB/s here, docs/scale-out.md) but cannot export its state; hash-wasm can (~120 bytes), so a
// session whose bytes a replica cannot read back (S3 multipart parts) keeps that state in its
// record and any replica continues it. Where the driver can read the bytes back (fs), node:crypto
// is used and a process that lacks the running hash rebuilds it from the bytes.
import { createHash, type Hash } from 'node:crypto';
import type { DigestAlgorithm } from '../oci/digest.js';

export interface RunningHash {
  update(chunk: Uint8Array): void;
  /** Hex digest of what was absorbed so far; the hash goes on. */
  peekHex(): string;
  /** Serialised state (base64) to continue elsewhere, or undefined for a hash that cannot be saved. */
  save(): string | undefined;
}

class NodeRunningHash implements RunningHash {
  constructor(private readonly hash: Hash) {}
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
  }
  peekHex(): string {
    return this.hash.copy().digest('hex');
  }
  save(): undefined {
    return undefined;
  }
}

export function nodeRunningHash(algorithm: DigestAlgorithm): RunningHash {
  return new NodeRunningHash(createHash(algorithm));
}

type Hasher = Awaited<ReturnType<typeof import('hash-wasm').createSHA256>>;

class WasmRunningHash implements RunningHash {
  constructor(private readonly h: Hasher) {}
  update(chunk: Uint8Array): void {
    this.h.update(chunk);
  }
  peekHex(): string {
    const state = this.h.save();
    const hex = this.h.digest('hex');
    this.h.load(state);
    return hex;
  }
  save(): string {
    return Buffer.from(this.h.save()).toString('base64');
  }
}

/** A hash whose state can be saved; continues from `saved` when given. hash-wasm loads only here. */
export async function resumableRunningHash(algorithm: DigestAlgorithm, saved?: string): Promise<RunningHash> {
  const wasm = await import('hash-wasm');
  const h = algorithm === 'sha512' ? await wasm.createSHA512() : await wasm.createSHA256();
  h.init();
  if (saved !== undefined) h.load(Buffer.from(saved, 'base64'));
  return new WasmRunningHash(h);
}
