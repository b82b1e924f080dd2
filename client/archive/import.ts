// berth import: a rootfs tarball (plain, gzip or zstd) becomes a one-layer image, as `docker
// import`. The file is stored as the layer unchanged (StoreSink.ingestNew); its diff_id is the
// digest of the uncompressed tar; the image is then built and copied into the store like any other.
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { decompressor, sniffCompression } from '../../oci/compression.js';
import { Digester, digestOf } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import type { ImageManifest } from '../../oci/manifest.js';
import type { ImageReference } from '../../oci/reference.js';
import { copy } from '../image/copy.js';
import { builtImage } from '../image/manifest-image.js';
import { StoreSink } from '../image/store-image.js';
import type { LocalImageStore } from '../store/image-store.js';
import { hostPlatform } from '../platform.js';

export interface ImportOptions {
  ref?: ImageReference;
  message?: string;
  platform?: { os: string; architecture: string; variant?: string };
}

const LAYER_TYPE = { none: MediaType.OciLayer, gzip: MediaType.OciLayerGzip, zstd: MediaType.OciLayerZstd } as const;

/** Returns the new image's ID (config digest). */
export async function importRootfs(store: LocalImageStore, source: Readable, opts: ImportOptions): Promise<string> {
  const sink = new StoreSink(store);
  try {
    const stored = await sink.ingestNew(source, MediaType.OciLayer);
    const head = await firstBytes(await stored.open());
    const compression = sniffCompression(head);
    const d = new Digester('sha256');
    await pipeline(await stored.open(), decompressor(compression), async (src: AsyncIterable<Buffer>) => {
      for await (const c of src) d.update(c);
    });
    const layer = { ...stored, mediaType: LAYER_TYPE[compression], open: () => stored.open() };
    const now = new Date().toISOString();
    const platform = opts.platform ?? hostPlatform();
    const config = Buffer.from(JSON.stringify({
      created: now,
      architecture: platform.architecture,
      ...(platform.variant ? { variant: platform.variant } : {}),
      os: platform.os,
      config: {},
      rootfs: { type: 'layers', diff_ids: [d.digest()] },
      history: [{ created: now, created_by: 'berth import', ...(opts.message ? { comment: opts.message } : {}) }],
    }));
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: digestOf(config), size: config.length },
      layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
    };
    const image = builtImage(manifest, config, [layer]);
    await copy(image, sink);
    await sink.commit([image], opts.ref ? [opts.ref] : [], image.digest);
    return image.config.digest;
  } catch (e) {
    await sink.rollback();
    if (e instanceof Error && /incorrect header check|unexpected end of file|Unknown frame descriptor/i.test(e.message)) throw new Error(`not a valid gzip rootfs tarball: ${e.message}`);
    throw e;
  }
}

async function firstBytes(s: Readable): Promise<Buffer> {
  for await (const c of s) {
    s.destroy();
    return c as Buffer;
  }
  return Buffer.alloc(0);
}
