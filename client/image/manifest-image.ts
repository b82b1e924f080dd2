// Builds the model's Image / ImageIndex from raw manifest bytes and a way to read blobs: every
// source (store, layout folder, archives, registry, an image being built) goes through here, so
// each blob read is verified the same way (oci/verify.ts) and no manifest is ever re-serialized.
import type { Readable } from 'node:stream';
import { digestOf, parseDigest } from '../../oci/digest.js';
import { RegistryError } from '../../oci/errors.js';
import type { Blob, Image, ImageIndex, ImageOrIndex, Layer } from '../../oci/image.js';
import { parseManifest, type Descriptor, type ImageIndex as IndexJson, type ImageManifest } from '../../oci/manifest.js';
import { checkBytes, verified } from '../../oci/verify.js';

/** Largest manifest or config read whole (the distribution spec's floor for manifests is 4 MiB). */
export const MAX_JSON_BLOB = 4 << 20;

/** How a source reads its blobs: raw bytes, verified by the caller (this module). */
export interface BlobReader {
  open(desc: Descriptor): Promise<Readable>;
  /** Raw bytes `start`..`end` (inclusive) of a blob, for resumable uploads (the receiver verifies the whole). */
  openRange?(desc: Descriptor, start: number, end: number): Promise<Readable>;
  /** A small blob whole; defaults to reading open(). */
  readAll?(desc: Descriptor): Promise<Buffer>;
  /** The child manifest an index entry names, raw; undefined when the source lacks it. */
  manifest?(desc: Descriptor): Promise<Buffer | undefined>;
}

async function collect(stream: Readable, desc: Descriptor): Promise<Buffer> {
  if (desc.size > MAX_JSON_BLOB) throw new RegistryError('MANIFEST_INVALID', `${desc.digest} is ${desc.size} bytes, more than the ${MAX_JSON_BLOB} read whole`);
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export function blobOf(desc: Descriptor, reader: BlobReader, what: string): Blob & Layer {
  const b: Blob & Layer = {
    digest: desc.digest,
    size: desc.size,
    mediaType: desc.mediaType,
    ...(desc.urls ? { urls: desc.urls } : {}),
    open: async () => verified(await reader.open(desc), desc, what),
  };
  if (reader.openRange) {
    const range = reader.openRange.bind(reader);
    (b as unknown as RangeReadable).openRange = (start, end) => range(desc, start, end);
  }
  return b;
}

/** A blob whose raw ranges can be read (files): the remote sink's chunked upload resumes with it. */
export interface RangeReadable {
  openRange(start: number, end: number): Promise<Readable>;
}

export function canReadRange(b: Blob): b is Blob & RangeReadable {
  return typeof (b as Partial<RangeReadable>).openRange === 'function';
}

/** A small blob read whole through the verified path. */
export async function readBlob(desc: Descriptor, reader: BlobReader, what: string): Promise<Buffer> {
  if (reader.readAll) return checkBytes(await reader.readAll(desc), desc, what);
  return collect(verified(await reader.open(desc), desc, what), desc);
}

/**
 * The Image or ImageIndex of `raw`. `expected`: the descriptor (or bare digest) that named it,
 * checked against the bytes; `mediaType`: the type the source declares (Content-Type, descriptor).
 */
export function manifestOf(raw: Buffer, reader: BlobReader, opts: { mediaType?: string; digest?: string; expected?: Descriptor } = {}): ImageOrIndex {
  const expected = opts.expected;
  const algorithm = expected ? parseDigest(expected.digest).algorithm : opts.digest ? parseDigest(opts.digest).algorithm : 'sha256';
  const digest = digestOf(raw, algorithm);
  if (expected) checkBytes(raw, expected, `manifest ${expected.digest}`);
  if (opts.digest && opts.digest !== digest) throw new RegistryError('DIGEST_INVALID', `manifest has digest ${digest}, not the requested ${opts.digest}`);
  const parsed = parseManifest(raw, opts.mediaType ?? expected?.mediaType);
  if (parsed.kind === 'index') {
    const json = parsed.json as IndexJson;
    const index: ImageIndex = {
      kind: 'index',
      digest,
      mediaType: parsed.mediaType,
      raw,
      manifest: json,
      child: async (d) => {
        const bytes = reader.manifest ? await reader.manifest(d) : await readBlob(d, reader, `manifest ${d.digest}`).catch(() => undefined);
        return bytes === undefined ? undefined : manifestOf(bytes, reader, { expected: d });
      },
    };
    return index;
  }
  const json = parsed.json as ImageManifest;
  let config: Promise<Buffer> | undefined;
  const image: Image = {
    kind: 'image',
    digest,
    mediaType: parsed.mediaType,
    raw,
    manifest: json,
    config: blobOf(json.config, reader, `config ${json.config.digest}`),
    layers: json.layers.map((l) => blobOf(l, reader, `layer ${l.digest}`)),
    rawConfig: () => (config ??= readBlob(json.config, reader, `config ${json.config.digest}`)),
  };
  return image;
}

/** An image from bytes held in memory (one being built): manifest, config and the layers named. */
export function builtImage(manifest: ImageManifest, configBytes: Buffer, layers: readonly Layer[]): Image {
  const raw = Buffer.from(JSON.stringify(manifest));
  const byDigest = new Map(layers.map((l) => [l.digest, l]));
  const reader: BlobReader = {
    async open(d) {
      if (d.digest === manifest.config.digest) return (await import('node:stream')).Readable.from([configBytes]);
      const l = byDigest.get(d.digest);
      if (!l) throw new Error(`blob ${d.digest} is not part of the image being built`);
      return l.open();
    },
    readAll: async (d) => (d.digest === manifest.config.digest ? configBytes : Promise.reject(new Error(`${d.digest} is not small`))),
  };
  const img = manifestOf(raw, reader, { mediaType: manifest.mediaType }) as Image;
  // The layers keep their own identity (diff_id, ranged reads) rather than the generic wrapper.
  return { ...img, layers: manifest.layers.map((d) => byDigest.get(d.digest)!) };
}
