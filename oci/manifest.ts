// Manifest parsing and validation: image-spec/manifest.md, image-spec/image-index.md,
// docker-registry-api/manifest-v2-2.md. The raw bytes stay authoritative; this only reads them.
import { RegistryError } from './errors.js';
import { isValidDigest, parseDigest } from './digest.js';
import { INDEX_TYPES, IMAGE_MANIFEST_TYPES, MediaType, bareMediaType } from './media-types.js';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  artifactType?: string;
  platform?: Platform;
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** What a registry needs to know of a pushed manifest. */
export interface ParsedManifest {
  mediaType: string;
  kind: 'image' | 'index';
  /** Blobs that must be in the repository (config and layers; foreign layers with `urls` excluded). */
  blobs: Descriptor[];
  /** Manifests that must be in the repository (an index's children). */
  manifests: Descriptor[];
  subject?: Descriptor;
  /** artifactType as the referrers API reports it (distribution-spec/spec.md#listing-referrers). */
  artifactType?: string;
  annotations?: Record<string, string>;
  json: ImageManifest | ImageIndex;
}

function invalid(message: string): RegistryError {
  return new RegistryError('MANIFEST_INVALID', message);
}

function checkDescriptor(d: unknown, where: string): Descriptor {
  if (typeof d !== 'object' || d === null || Array.isArray(d)) throw invalid(`${where}: descriptor must be an object`);
  const o = d as Record<string, unknown>;
  if (typeof o.mediaType !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$/.test(o.mediaType)) {
    throw invalid(`${where}: mediaType must be a media type string`);
  }
  if (typeof o.digest !== 'string' || !isValidDigest(o.digest)) throw invalid(`${where}: invalid digest ${JSON.stringify(String(o.digest).slice(0, 200))}`);
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0) throw invalid(`${where}: size must be a non-negative integer`);
  if (o.urls !== undefined && (!Array.isArray(o.urls) || o.urls.some((u) => typeof u !== 'string'))) throw invalid(`${where}: urls must be an array of strings`);
  if (o.annotations !== undefined && !isStringMap(o.annotations)) throw invalid(`${where}: annotations must map strings to strings`);
  return o as unknown as Descriptor;
}

function isStringMap(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}

/**
 * Parses a manifest pushed with `contentType`. The type is the body's `mediaType` when present
 * (which must then equal a specific Content-Type), else the Content-Type, else inferred from shape.
 */
export function parseManifest(bytes: Uint8Array, contentType?: string): ParsedManifest {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (e) {
    throw invalid(`manifest is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw invalid('manifest must be a JSON object');
  const m = json as Record<string, unknown>;

  const header = bareMediaType(contentType);
  const declared = m.mediaType;
  if (declared !== undefined && typeof declared !== 'string') throw invalid('mediaType must be a string');
  if (declared === MediaType.DockerSchema1Signed || declared === MediaType.DockerSchema1 || m.schemaVersion === 1 || header === MediaType.DockerSchema1Signed || header === MediaType.DockerSchema1) {
    throw invalid('Docker schema1 manifests are not supported: push schema2 or OCI (docker, podman and skopeo do by default)');
  }
  if (m.schemaVersion !== 2) throw invalid('schemaVersion must be 2');

  const headerIsSpecific = header !== '' && header !== 'application/json' && header !== 'application/octet-stream';
  // distribution-spec/spec.md#pulling-manifests: mediaType and Content-Type must agree.
  if (declared && headerIsSpecific && declared !== header) {
    throw invalid(`manifest mediaType ${declared} does not match Content-Type ${header}`);
  }
  let mediaType = (declared as string | undefined) ?? (headerIsSpecific ? header : '');
  if (!mediaType) {
    if (Array.isArray(m.manifests)) mediaType = MediaType.OciIndex;
    else if (m.config !== undefined) mediaType = MediaType.OciManifest;
    else throw invalid('cannot tell the manifest type: set mediaType or Content-Type');
  }

  const subject = m.subject === undefined ? undefined : checkDescriptor(m.subject, 'subject');
  if (m.annotations !== undefined && !isStringMap(m.annotations)) throw invalid('annotations must map strings to strings');
  const annotations = m.annotations as Record<string, string> | undefined;
  if (m.artifactType !== undefined && typeof m.artifactType !== 'string') throw invalid('artifactType must be a string');
  const declaredArtifactType = m.artifactType as string | undefined;

  if (IMAGE_MANIFEST_TYPES.has(mediaType)) {
    const config = checkDescriptor(m.config, 'config');
    if (!Array.isArray(m.layers)) throw invalid('layers must be an array');
    const layers = m.layers.map((l, i) => checkDescriptor(l, `layers[${i}]`));
    // Foreign / non-distributable layers live elsewhere (their `urls`); they need not be in the registry.
    const blobs = [config, ...layers.filter((l) => !(l.urls && l.urls.length > 0))];
    return {
      mediaType,
      kind: 'image',
      blobs,
      manifests: [],
      subject,
      artifactType: declaredArtifactType || config.mediaType,
      annotations,
      json: m as unknown as ImageManifest,
    };
  }
  if (INDEX_TYPES.has(mediaType)) {
    if (!Array.isArray(m.manifests)) throw invalid('manifests must be an array');
    const manifests = m.manifests.map((d, i) => checkDescriptor(d, `manifests[${i}]`));
    return {
      mediaType,
      kind: 'index',
      blobs: [],
      manifests,
      subject,
      artifactType: declaredArtifactType || undefined,
      annotations,
      json: m as unknown as ImageIndex,
    };
  }
  throw invalid(`unsupported manifest media type ${JSON.stringify(mediaType.slice(0, 200))}`);
}

/** The tag of the referrers tag schema (distribution-spec/spec.md#referrers-tag-schema). */
export function referrersTag(digest: string): string {
  const { algorithm, encoded } = parseDigest(digest);
  return `${algorithm.slice(0, 32)}-${encoded.slice(0, 64)}`.replace(/[^a-zA-Z0-9._-]/g, '-');
}
