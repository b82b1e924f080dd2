// What the UI shows of a manifest: its kind, platforms, sizes, layers and config, read from the
// stored bytes (manifest, then the config blob). Summaries are cached by digest: content is
// immutable, so a cached summary is never stale, even with metadata shared by replicas.
import { LruCache } from '../../../storage/lru-cache.js';
import type { RegistryStore } from '../../../storage/registry-store.js';
import type { Descriptor } from '../../../oci/manifest.js';

/** Configs larger than this are not read whole (an image config is a few KiB). */
const MAX_CONFIG_BYTES = 4 << 20;

const IMAGE_CONFIG_TYPES = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);

export interface ManifestDoc {
  mediaType?: string;
  artifactType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Array<Descriptor & { platform?: { os?: string; architecture?: string; variant?: string } }>;
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageConfig {
  os?: string;
  architecture?: string;
  variant?: string;
  created?: string;
  config?: {
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Env?: string[] | null;
    Labels?: Record<string, string> | null;
    ExposedPorts?: Record<string, unknown> | null;
    WorkingDir?: string;
    User?: string;
  };
  history?: Array<{ created?: string; created_by?: string; comment?: string; empty_layer?: boolean }>;
}

export interface ImageSummary {
  kind: 'index' | 'image' | 'artifact';
  /** Bytes a pull moves: manifest, config and layers (an index: the sum of its images). */
  size: number;
  platforms: string[];
}

export function platformName(p: { os?: string; architecture?: string; variant?: string } | undefined): string | undefined {
  if (!p?.os || !p.architecture) return undefined;
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function parseManifestDoc(bytes: Buffer): ManifestDoc {
  const doc = JSON.parse(bytes.toString('utf8')) as unknown;
  if (!isObject(doc)) throw new Error('manifest is not a JSON object');
  return doc as ManifestDoc;
}

export function isImageConfig(d: Descriptor | undefined): boolean {
  return d !== undefined && IMAGE_CONFIG_TYPES.has(d.mediaType);
}

/** The image config of a manifest in `name`, or undefined when it is no image config, too large or not stored (a mirror that has not fetched it). */
export async function readConfig(store: RegistryStore, name: string, doc: ManifestDoc): Promise<ImageConfig | undefined> {
  const d = doc.config;
  if (!isImageConfig(d) || !d || typeof d.size !== 'number' || d.size > MAX_CONFIG_BYTES) return undefined;
  if (!(await store.blobLink(name, d.digest))) return undefined;
  try {
    const c = JSON.parse((await store.readAll(d.digest)).toString('utf8')) as unknown;
    return isObject(c) ? (c as ImageConfig) : undefined;
  } catch {
    return undefined;
  }
}

function descriptorSize(d: Descriptor | undefined): number {
  return d && typeof d.size === 'number' && d.size >= 0 ? d.size : 0;
}

export class ImageSummaries {
  private readonly cache = new LruCache<string, ImageSummary>(20_000);

  constructor(private readonly store: RegistryStore) {}

  /** The summary of manifest `digest` of `name` (which the caller may read). */
  async get(name: string, digest: string, depth = 0): Promise<ImageSummary | undefined> {
    const hit = this.cache.get(digest);
    if (hit) return hit;
    let m;
    try {
      m = await this.store.getManifest(name, digest);
    } catch {
      return undefined;
    }
    let doc: ManifestDoc;
    try {
      doc = parseManifestDoc(m.bytes);
    } catch {
      return undefined;
    }
    let summary: ImageSummary;
    if (Array.isArray(doc.manifests)) {
      const platforms = doc.manifests.map((d) => platformName(d.platform)).filter((p): p is string => p !== undefined && !p.startsWith('unknown/'));
      let size = m.size;
      if (depth === 0) {
        // The index's images, for their sizes (an attestation manifest counts as what it moves too).
        const children = await Promise.all(doc.manifests.slice(0, 64).map((d) => this.get(name, d.digest, depth + 1)));
        for (let i = 0; i < children.length; i++) size += children[i]?.size ?? descriptorSize(doc.manifests[i]);
      }
      summary = { kind: 'index', size, platforms: [...new Set(platforms)] };
    } else {
      const size = m.size + descriptorSize(doc.config) + (doc.layers ?? []).reduce((a, l) => a + descriptorSize(l), 0);
      if (isImageConfig(doc.config) && !doc.artifactType) {
        const config = await readConfig(this.store, name, doc);
        const p = platformName(config);
        summary = { kind: 'image', size, platforms: p ? [p] : [] };
        if (!config) return summary; // not cached: the config may arrive later (a mirror)
      } else {
        summary = { kind: 'artifact', size, platforms: [] };
      }
    }
    this.cache.set(digest, summary);
    return summary;
  }
}
