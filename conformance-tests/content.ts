// Test content for the conformance suite: blobs, image manifests and indexes built from bytes the
// suite controls, hashed with node:crypto (not Berth's own digest code, so the suite stays independent).
import { createHash, randomBytes } from 'node:crypto';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
export const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

export interface Content {
  bytes: Buffer;
  digest: string;
  size: number;
}

export interface Manifest extends Content {
  mediaType: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string };
}

export function digestOf(bytes: Uint8Array, algorithm: 'sha256' | 'sha512' = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

export function content(data: Uint8Array | string, algorithm: 'sha256' | 'sha512' = 'sha256'): Content {
  const bytes = Buffer.from(data);
  return { bytes, digest: digestOf(bytes, algorithm), size: bytes.length };
}

export function randomContent(size: number): Content {
  return content(randomBytes(size));
}

export function descriptor(c: Content, mediaType: string, extra: Partial<Descriptor> = {}): Descriptor {
  return { mediaType, digest: c.digest, size: c.size, ...extra };
}

/** An image manifest; `json` is serialised once and those exact bytes are what gets pushed. */
export function imageManifest(opts: {
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
  mediaType?: string;
}): Manifest {
  const mediaType = opts.mediaType ?? OCI_MANIFEST;
  const json: Record<string, unknown> = { schemaVersion: 2, mediaType };
  if (opts.artifactType) json.artifactType = opts.artifactType;
  json.config = opts.config;
  json.layers = opts.layers;
  if (opts.subject) json.subject = opts.subject;
  if (opts.annotations) json.annotations = opts.annotations;
  // Indented on purpose: a registry that re-serialises would change these bytes and the digest.
  return { ...content(JSON.stringify(json, null, 3)), mediaType };
}

export function imageIndex(opts: { manifests: Descriptor[]; subject?: Descriptor; artifactType?: string; annotations?: Record<string, string> }): Manifest {
  const json: Record<string, unknown> = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: opts.manifests };
  if (opts.artifactType) json.artifactType = opts.artifactType;
  if (opts.subject) json.subject = opts.subject;
  if (opts.annotations) json.annotations = opts.annotations;
  return { ...content(JSON.stringify(json, null, 3)), mediaType: OCI_INDEX };
}

/** The empty descriptor of image-spec/manifest.md#guidance-for-an-empty-descriptor. */
export const EMPTY_CONFIG = content('{}');
