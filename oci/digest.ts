// Content digests: image-spec/descriptor.md#digests. sha256 and sha512 are the registered
// algorithms Berth computes; their hashing uses node:crypto (OpenSSL, SHA-NI), measured against
// @noble/hashes in bench/hashing.ts (docs/performance.md), except a small one-shot sha256 in a
// process that has not loaded node:crypto (below).
import { createRequire } from 'node:module';
import type { Hash } from 'node:crypto';
import { sha256 as jsSha256 } from '@noble/hashes/sha2.js';
import { RegistryError } from './errors.js';

/**
 * node:crypto, loaded on the first hash: loading it costs ~7 ms, and much that imports this module
 * (digest syntax checks on `berth run`'s start path) never hashes.
 */
let crypto: typeof import('node:crypto') | undefined;
function createHash(algorithm: DigestAlgorithm): Hash {
  crypto ??= createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto');
  return crypto.createHash(algorithm);
}

export type DigestAlgorithm = 'sha256' | 'sha512';

const ENCODED_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const GRAMMAR_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  encoded: string;
  digest: string;
}

export function isDigestAlgorithm(a: string): a is DigestAlgorithm {
  return a === 'sha256' || a === 'sha512';
}

/** True when `s` has the shape of a digest (algorithm:encoded), registered algorithm or not. */
export function looksLikeDigest(s: string): boolean {
  return GRAMMAR_RE.test(s);
}

/** Parses a digest of a registered algorithm; anything else throws DIGEST_INVALID (400). */
export function parseDigest(s: string): ParsedDigest {
  const m = GRAMMAR_RE.test(s) ? s.split(':') : null;
  if (!m || m.length !== 2) throw new RegistryError('DIGEST_INVALID', `invalid digest ${JSON.stringify(s.slice(0, 200))}`);
  const [algorithm, encoded] = m as [string, string];
  if (!isDigestAlgorithm(algorithm)) {
    throw new RegistryError('DIGEST_INVALID', `unsupported digest algorithm ${JSON.stringify(algorithm.slice(0, 40))}: use sha256 or sha512`);
  }
  if (encoded.length !== ENCODED_LENGTH[algorithm] || !/^[a-f0-9]+$/.test(encoded)) {
    throw new RegistryError('DIGEST_INVALID', `invalid ${algorithm} digest: expected ${ENCODED_LENGTH[algorithm]} lowercase hex characters`);
  }
  return { algorithm, encoded, digest: s };
}

export function isValidDigest(s: string): boolean {
  try {
    parseDigest(s);
    return true;
  } catch {
    return false;
  }
}

/** Incremental digester; `digest()` may be called once. */
export class Digester {
  readonly algorithm: DigestAlgorithm;
  private readonly hash: Hash;
  private bytes = 0;
  constructor(algorithm: DigestAlgorithm = 'sha256') {
    this.algorithm = algorithm;
    this.hash = createHash(algorithm);
  }
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
  }
  get size(): number {
    return this.bytes;
  }
  digest(): string {
    return `${this.algorithm}:${this.hash.digest('hex')}`;
  }
}

/**
 * Below this many bytes a process without node:crypto hashes in JavaScript: loading node:crypto
 * costs 2.7 ms on Node 20 and 3.5-4.4 ms on Node 24, and a warm push hashes only its manifest
 * (~1 KB, checked as it is read from the store); @noble/hashes run cold takes ~0.05 ms a KB
 * (docs/performance.md, "Warm push without node:http").
 */
const JS_HASH_MAX = 16 << 10;

export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): string {
  if (crypto === undefined && algorithm === 'sha256' && data.length <= JS_HASH_MAX) {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (bytes.length <= JS_HASH_MAX) return `sha256:${Buffer.from(jsSha256(bytes)).toString('hex')}`;
  }
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}
