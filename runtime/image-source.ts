// The runtime's narrow view of an image: its config and its layers as streams, implemented over
// an OCI image layout (oci-layout-source.ts) and over the client's local store (store-image-source.ts).
import type { Readable } from 'node:stream';
import type { Platform } from '../oci/manifest.js';
import { formatPlatform } from '../client/platform.js';

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
}

/** An image config blob (image-spec/config.md). */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  config?: ImageRunConfig;
  rootfs?: { type: string; diff_ids: string[] };
}

export interface LayerSource {
  digest: string;
  mediaType: string;
  /** The blob's size as its descriptor states it. */
  size: number;
  /** The layer blob as stored (compressed or not); the caller verifies `digest` while reading. */
  open(): Readable;
}

export interface ResolvedImage {
  /** Digest of the image manifest: the image's identity in `berth ps` and `inspect`. */
  id: string;
  config: ImageConfig;
  /** Bottom layer first, as in the manifest. */
  layers: LayerSource[];
}

export interface ImageSource {
  resolve(ref: string): Promise<ResolvedImage>;
}

/** The image is not in the source: `berth run` exits 125 as docker does. */
export class ImageNotFoundError extends Error {
  constructor(readonly ref: string, detail?: string) {
    super(`Unable to find image '${ref}'${detail ? `: ${detail}` : ''}`);
  }
}

/**
 * The image is there, but for another platform than `--platform` asked for. A "not found", as in
 * docker (daemon/images/image.go GetImage), so that `run` pulls the requested platform.
 */
export class PlatformMismatchError extends ImageNotFoundError {
  constructor(ref: string, wanted: Platform, actual: { os: string; architecture: string; variant?: string | undefined }) {
    super(ref);
    const a = actual.os && actual.architecture ? formatPlatform(actual) : 'unknown';
    this.message = `image with reference ${ref} was found but does not match the specified platform: wanted ${formatPlatform(wanted)}, actual: ${a}`;
  }
}

/** The os/arch[/variant] an image config declares, '' when it declares none. */
export function configPlatform(config: ImageConfig): string {
  if (!config.os || !config.architecture) return '';
  return formatPlatform({ os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) });
}
