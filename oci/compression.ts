// Layer compression by media type (image-spec/layer.md, media-types.md): gzip always, zstd where
// the running Node has it (node:zlib gained zstd in 22.15 / 23.8). Detected by feature, never by
// version string, so a backport works too.
import { PassThrough, type Transform } from 'node:stream';
import * as zlib from 'node:zlib';

export type Compression = 'none' | 'gzip' | 'zstd';

type ZstdFactory = (opts?: object) => Transform;
const z = zlib as unknown as { createZstdDecompress?: ZstdFactory; createZstdCompress?: ZstdFactory };

/** Whether this Node can read and write zstd layers. */
export function zstdAvailable(): boolean {
  return typeof z.createZstdDecompress === 'function' && typeof z.createZstdCompress === 'function';
}

export class ZstdUnavailableError extends Error {
  constructor() {
    super(`zstd layers need Node ≥ 22.15 (this is Node ${process.versions.node})`);
  }
}

/** The compression a layer media type names; `+zstd` and docker's `.tar.gzip` included. */
export function compressionOf(mediaType: string): Compression {
  if (/[+.]zstd$/.test(mediaType)) return 'zstd';
  if (/[+.]gzip$/.test(mediaType)) return 'gzip';
  return 'none';
}

/** Compression told by a blob's first bytes (gzip 1f 8b, zstd frame 28 b5 2f fd). */
export function sniffCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/** The stage that turns a layer blob of `c` into its tar. */
export function decompressor(c: Compression): Transform {
  if (c === 'gzip') return zlib.createGunzip();
  if (c === 'zstd') {
    if (!z.createZstdDecompress) throw new ZstdUnavailableError();
    return z.createZstdDecompress();
  }
  return new PassThrough();
}

export function compressor(c: Compression): Transform {
  if (c === 'gzip') return zlib.createGzip();
  if (c === 'zstd') {
    if (!z.createZstdCompress) throw new ZstdUnavailableError();
    return z.createZstdCompress();
  }
  return new PassThrough();
}
