// The one image model (after go-containerregistry's v1.Image / v1.Layer / v1.ImageIndex): small
// read-only views that every source implements (a registry, the local store, an OCI layout folder,
// OCI and docker archives, an image being built) and every sink consumes. The raw manifest bytes
// are authoritative: the digest is computed from them and they are passed on unchanged, never
// re-serialized (image-spec/descriptor.md#digests).
import type { Readable } from 'node:stream';
import type { Descriptor, ImageIndex as IndexJson, ImageManifest, Platform } from './manifest.js';

/** A blob named by its descriptor. `open()` streams it, checked against digest and size as it is read. */
export interface Blob {
  readonly digest: string;
  readonly size: number;
  readonly mediaType: string;
  open(): Promise<Readable>;
}

/** A layer: a blob with the digest of its uncompressed tar when the source knows it (rootfs.diff_ids). */
export interface Layer extends Blob {
  readonly diffId?: string;
  readonly urls?: string[];
}

interface ManifestBase {
  /** Digest of `raw`. */
  readonly digest: string;
  readonly mediaType: string;
  /** The manifest's bytes exactly as stored or served. */
  readonly raw: Buffer;
}

export interface Image extends ManifestBase {
  readonly kind: 'image';
  readonly manifest: ImageManifest;
  readonly config: Blob;
  /** Bottom layer first, as in the manifest. */
  readonly layers: readonly Layer[];
  /** The config blob's bytes (small: read whole, verified). */
  rawConfig(): Promise<Buffer>;
}

export interface ImageIndex extends ManifestBase {
  readonly kind: 'index';
  readonly manifest: IndexJson;
  /** The child an index entry names; undefined when the source does not hold it. */
  child(desc: Descriptor): Promise<Image | ImageIndex | undefined>;
}

export type ImageOrIndex = Image | ImageIndex;

/** The `config` object of an image config (image-spec/config.md "Properties"). */
export interface ImageRunConfig {
  User?: string;
  Env?: string[] | null;
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  StopSignal?: string;
  Labels?: Record<string, string> | null;
  ExposedPorts?: Record<string, object> | null;
  Volumes?: Record<string, object> | null;
  [k: string]: unknown;
}

/** An image config blob (image-spec/config.md). */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  created?: string;
  author?: string;
  config?: ImageRunConfig;
  rootfs?: { type: string; diff_ids: string[] };
  history?: Array<{ created?: string; created_by?: string; empty_layer?: boolean; comment?: string; author?: string }>;
  [k: string]: unknown;
}

/** Parses a config blob; refuses anything but a JSON object. */
export function parseImageConfig(bytes: Buffer, what: string): ImageConfig {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new Error(`${what} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what} is not a JSON object`);
  return v as ImageConfig;
}

/** The platform a config declares (os/architecture/variant), 'unknown' where it declares none. */
export function configPlatform(c: ImageConfig): Platform {
  const p: Platform = { os: typeof c.os === 'string' && c.os ? c.os : 'unknown', architecture: typeof c.architecture === 'string' && c.architecture ? c.architecture : 'unknown' };
  if (typeof c.variant === 'string' && c.variant) p.variant = c.variant;
  return p;
}
