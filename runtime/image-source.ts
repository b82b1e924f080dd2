// The runtime's narrow view of an image: its config and its layers as streams. The OCI layout
// source (oci-layout-source.ts) implements it now; the client's local store will implement it too.
import type { Readable } from 'node:stream';

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
