// Digest and size verification of a blob being read: the one place every source's Blob.open()
// goes through (go-containerregistry's internal/verify). The stream fails with DIGEST_INVALID or
// SIZE_INVALID instead of ending, so no consumer ever takes unverified bytes for complete ones.
import { Transform, type Readable } from 'node:stream';
import { Digester, parseDigest } from './digest.js';
import { RegistryError } from './errors.js';

export interface Expected {
  digest: string;
  size: number;
}

/** A transform passing bytes through while checking them against `expected`; `what` names the blob in errors. */
export function verifier(expected: Expected, what = `blob ${expected.digest}`): Transform {
  const digester = new Digester(parseDigest(expected.digest).algorithm);
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      if (n > expected.size) return cb(new RegistryError('SIZE_INVALID', `${what} is larger than its stated ${expected.size} bytes`));
      digester.update(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      if (n !== expected.size) return cb(new RegistryError('SIZE_INVALID', `${what} has ${n} bytes, not the stated ${expected.size}`));
      const actual = digester.digest();
      if (actual !== expected.digest) return cb(new RegistryError('DIGEST_INVALID', `${what} has digest ${actual}`));
      cb();
    },
  });
}

/** `source` piped through a verifier; an error of `source` reaches the result. */
export function verified(source: Readable, expected: Expected, what?: string): Readable {
  const v = verifier(expected, what);
  source.on('error', (e) => v.destroy(e));
  v.on('close', () => {
    if (!source.destroyed) source.destroy();
  });
  return source.pipe(v);
}

/** Checks bytes held whole (manifests, configs). */
export function checkBytes(bytes: Buffer, expected: Expected, what = `blob ${expected.digest}`): Buffer {
  if (bytes.length !== expected.size) throw new RegistryError('SIZE_INVALID', `${what} has ${bytes.length} bytes, not the stated ${expected.size}`);
  const d = new Digester(parseDigest(expected.digest).algorithm);
  d.update(bytes);
  const actual = d.digest();
  if (actual !== expected.digest) throw new RegistryError('DIGEST_INVALID', `${what} has digest ${actual}`);
  return bytes;
}
