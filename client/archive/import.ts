// berth import: a rootfs tarball (plain or gzip) becomes a one-layer image, as `docker import`.
// The file is stored as the layer unchanged; its diff_id is the digest of the uncompressed tar.
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { Digester } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import type { ImageManifest } from '../../oci/manifest.js';
import type { ImageReference } from '../../oci/reference.js';
import type { LocalImageStore } from '../store/image-store.js';
import { hostPlatform } from '../platform.js';
import { isGzip } from './save.js';

export interface ImportOptions {
  ref?: ImageReference;
  message?: string;
  platform?: { os: string; architecture: string; variant?: string };
}

/** Returns the new image's ID (config digest). */
export async function importRootfs(store: LocalImageStore, source: Readable, opts: ImportOptions): Promise<string> {
  const layer = await store.blobs.ingest(source);
  try {
    const gz = await isGzip(store, layer.digest);
    let diffId = layer.digest;
    if (gz) {
      const d = new Digester('sha256');
      await pipeline(store.blobs.read(layer.digest), createGunzip(), async (src: AsyncIterable<Buffer>) => {
        for await (const c of src) d.update(c);
      });
      diffId = d.digest();
    }
    const now = new Date().toISOString();
    const platform = opts.platform ?? hostPlatform();
    const config = {
      created: now,
      architecture: platform.architecture,
      ...(platform.variant ? { variant: platform.variant } : {}),
      os: platform.os,
      config: {},
      rootfs: { type: 'layers', diff_ids: [diffId] },
      history: [{ created: now, created_by: 'berth import', ...(opts.message ? { comment: opts.message } : {}) }],
    };
    const cfg = await store.blobs.putBytes(Buffer.from(JSON.stringify(config)));
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: cfg.digest, size: cfg.size },
      layers: [{ mediaType: gz ? MediaType.OciLayerGzip : MediaType.OciLayer, digest: layer.digest, size: layer.size }],
    };
    const m = await store.blobs.putBytes(Buffer.from(JSON.stringify(manifest)));
    await store.register([await store.recordFor(m.digest)], opts.ref ? [opts.ref] : [], m.digest);
    return cfg.digest;
  } catch (e) {
    await store.index.update((doc) => store.dropUnreferencedBlobs(doc, [layer.digest])).catch(() => undefined);
    if (e instanceof Error && /incorrect header check|unexpected end of file/.test(e.message)) throw new Error(`not a valid gzip rootfs tarball: ${e.message}`);
    throw e;
  }
}
