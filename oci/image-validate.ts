// One validation suite for every source of the image model (go-containerregistry's
// pkg/v1/validate): the manifest's digest is that of its raw bytes, descriptors agree with what
// the source serves, every blob reads back with its digest and size, config.rootfs.diff_ids match
// the uncompressed layers, and an index's children are what its entries say.
import { pipeline } from 'node:stream/promises';
import { Digester, digestOf, parseDigest } from './digest.js';
import { compressionOf, decompressor, zstdAvailable } from './compression.js';
import { parseImageConfig, type Image, type ImageIndex, type ImageOrIndex } from './image.js';
import { parseManifest, type Descriptor } from './manifest.js';
import { INDEX_TYPES, IMAGE_MANIFEST_TYPES } from './media-types.js';

export interface ValidateOptions {
  /** Read every layer (digest, size, diff_id); false checks manifests and config only. */
  layers?: boolean;
}

function fail(what: string, message: string): never {
  throw new Error(`${what}: ${message}`);
}

function checkManifestBase(m: ImageOrIndex, what: string): void {
  const actual = digestOf(m.raw, parseDigest(m.digest).algorithm);
  if (actual !== m.digest) fail(what, `raw manifest has digest ${actual}, not ${m.digest}`);
  const parsed = parseManifest(m.raw, m.mediaType);
  if (parsed.mediaType !== m.mediaType) fail(what, `media type ${m.mediaType} but the manifest says ${parsed.mediaType}`);
  if (parsed.kind !== m.kind) fail(what, `a ${parsed.kind} served as ${m.kind === 'image' ? 'an image' : 'an index'}`);
}

function sameDescriptor(a: Descriptor, b: { digest: string; size: number; mediaType: string }, what: string): void {
  if (a.digest !== b.digest || a.size !== b.size || a.mediaType !== b.mediaType) {
    fail(what, `manifest says ${a.mediaType} ${a.digest} (${a.size} bytes), the source serves ${b.mediaType} ${b.digest} (${b.size} bytes)`);
  }
}

/** Reads a layer through its verified open(); returns the digest of its uncompressed tar when it can be computed. */
async function readLayer(l: Image['layers'][number]): Promise<string | undefined> {
  const c = compressionOf(l.mediaType);
  const canInflate = c !== 'zstd' || zstdAvailable();
  const diff = new Digester('sha256');
  const source = await l.open();
  if (!canInflate) {
    await pipeline(source, async (src: AsyncIterable<Buffer>) => {
      for await (const _ of src);
    });
    return undefined;
  }
  await pipeline(source, decompressor(c), async (src: AsyncIterable<Buffer>) => {
    for await (const chunk of src) diff.update(chunk);
  });
  return diff.digest();
}

export async function validateImage(img: Image, opts: ValidateOptions = {}): Promise<void> {
  const what = `image ${img.digest}`;
  if (img.kind !== 'image') fail(what, 'not an image');
  if (!IMAGE_MANIFEST_TYPES.has(img.mediaType)) fail(what, `unexpected media type ${img.mediaType}`);
  checkManifestBase(img, what);
  const m = img.manifest;
  sameDescriptor(m.config, img.config, `${what} config`);
  const rawConfig = await img.rawConfig();
  if (rawConfig.length !== m.config.size || digestOf(rawConfig, parseDigest(m.config.digest).algorithm) !== m.config.digest) fail(what, 'config bytes do not match the config descriptor');
  const config = parseImageConfig(rawConfig, `${what} config`);
  if (m.layers.length !== img.layers.length) fail(what, `manifest lists ${m.layers.length} layers, the source serves ${img.layers.length}`);
  m.layers.forEach((d, i) => sameDescriptor(d, img.layers[i]!, `${what} layer ${i}`));
  const diffIds = config.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || diffIds.length !== img.layers.length) fail(what, `config has ${Array.isArray(diffIds) ? diffIds.length : 'no'} diff_ids for ${img.layers.length} layers`);
  for (const [i, l] of img.layers.entries()) {
    if (l.diffId !== undefined && l.diffId !== diffIds[i]) fail(what, `layer ${i} has diff_id ${l.diffId}, the config says ${diffIds[i]}`);
    if (opts.layers === false || (l.urls && l.urls.length > 0)) continue;
    const diffId = await readLayer(l);
    if (diffId !== undefined && diffId !== diffIds[i]) fail(what, `layer ${i} (${l.digest}) uncompresses to ${diffId}, the config's diff_id is ${diffIds[i]}`);
  }
}

export async function validateIndex(index: ImageIndex, opts: ValidateOptions = {}): Promise<void> {
  const what = `index ${index.digest}`;
  if (!INDEX_TYPES.has(index.mediaType)) fail(what, `unexpected media type ${index.mediaType}`);
  checkManifestBase(index, what);
  for (const d of index.manifest.manifests) {
    const child = await index.child(d);
    if (!child) continue; // a source may hold only some platforms (pull without --all-platforms)
    if (child.digest !== d.digest || child.mediaType !== d.mediaType || child.raw.length !== d.size) {
      fail(what, `entry ${d.digest} (${d.mediaType}, ${d.size} bytes) resolves to ${child.digest} (${child.mediaType}, ${child.raw.length} bytes)`);
    }
    await validate(child, opts);
  }
}

export async function validate(m: ImageOrIndex, opts: ValidateOptions = {}): Promise<void> {
  return m.kind === 'index' ? validateIndex(m, opts) : validateImage(m, opts);
}
