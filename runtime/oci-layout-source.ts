// ImageSource over an OCI image layout directory (image-spec/image-layout.md): index.json names
// manifests by the `org.opencontainers.image.ref.name` annotation; blobs live in blobs/<alg>/<hex>.
import { createReadStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { digestOf, isValidDigest, parseDigest } from '../oci/digest.js';
import type { Descriptor, ImageIndex, ImageManifest, Platform } from '../oci/manifest.js';
import { INDEX_TYPES } from '../oci/media-types.js';
import { formatPlatform, hostPlatform, platformMatches } from '../client/platform.js';
import { ImageNotFoundError, PlatformMismatchError, type ImageConfig, type ImageSource, type ResolvedImage } from './image-source.js';

const REF_NAME = 'org.opencontainers.image.ref.name';

export class OciLayoutSource implements ImageSource {
  /** `platform`: what `--platform` asked for; without it an index resolves to this host's entry. */
  constructor(readonly dir: string, private readonly platform?: Platform) {}

  blobPath(digest: string): string {
    if (!isValidDigest(digest)) throw new Error(`invalid digest ${JSON.stringify(digest)}`);
    const { algorithm, encoded } = parseDigest(digest);
    return join(this.dir, 'blobs', algorithm, encoded);
  }

  /**
   * Reads a small JSON blob (manifest, index, config) and checks its digest. Synchronously, as the
   * index below: a few KiB each, on `berth run`'s start path, where a thread-pool round trip per
   * open/stat/read/close costs more than the reads.
   */
  private async readJsonBlob<T>(desc: Descriptor): Promise<T> {
    const bytes = readFileSync(this.blobPath(desc.digest));
    if (digestOf(bytes, parseDigest(desc.digest).algorithm) !== desc.digest) throw new Error(`blob ${desc.digest} does not match its digest`);
    return JSON.parse(bytes.toString('utf8')) as T;
  }

  /** `ref` is a tag (the ref.name annotation), a manifest digest, or empty for the only image. */
  async resolve(ref: string): Promise<ResolvedImage> {
    let index: ImageIndex;
    try {
      index = JSON.parse(readFileSync(join(this.dir, 'index.json'), 'utf8')) as ImageIndex;
    } catch (err) {
      throw new ImageNotFoundError(ref, `no OCI layout at ${this.dir} (${(err as Error).message})`);
    }
    const candidates = index.manifests ?? [];
    let desc: Descriptor | undefined;
    if (ref === '') desc = candidates.length === 1 ? candidates[0] : candidates.find((d) => d.annotations?.[REF_NAME] === 'latest');
    else desc = candidates.find((d) => d.annotations?.[REF_NAME] === ref || d.digest === ref);
    if (!desc) throw new ImageNotFoundError(ref || 'latest', `not in ${this.dir}`);
    // An index: pick the manifest for the requested platform, else this host's (image-spec/image-index.md).
    const wanted = this.platform ?? hostPlatform();
    let fromIndex = false;
    for (let depth = 0; INDEX_TYPES.has(desc.mediaType) && depth < 4; depth++) {
      const child: ImageIndex = await this.readJsonBlob<ImageIndex>(desc);
      const match = (child.manifests ?? []).find((m) => m.platform && platformMatches(m.platform, wanted));
      if (!match) throw new ImageNotFoundError(ref || 'latest', `no matching manifest for ${formatPlatform(wanted)} in the image index of ${this.dir}`);
      desc = match;
      fromIndex = true;
    }
    const manifest = await this.readJsonBlob<ImageManifest>(desc);
    const config = await this.readJsonBlob<ImageConfig>(manifest.config);
    // A lone manifest asked for by --platform must be that platform (docker's GetImage check).
    if (this.platform && !fromIndex) {
      const actual = { os: config.os ?? '', architecture: config.architecture ?? '', ...(config.variant ? { variant: config.variant } : {}) };
      if (!platformMatches(actual, this.platform)) throw new PlatformMismatchError(`oci:${this.dir}${ref ? `:${ref}` : ''}`, this.platform, actual);
    }
    return {
      id: desc.digest,
      config,
      layers: manifest.layers.map((l) => ({
        digest: l.digest,
        mediaType: l.mediaType,
        size: l.size,
        open: () => createReadStream(this.blobPath(l.digest)),
      })),
    };
  }
}
