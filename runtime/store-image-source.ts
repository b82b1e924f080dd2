// ImageSource over the client's local image store ($BERTH_ROOT, client/store/): images pulled or
// loaded by the client, layers read straight from its content-addressed blobs.
import { createReadStream } from 'node:fs';
import { ImageNotFoundError as StoreMiss, LocalImageStore } from '../client/store/image-store.js';
import { formatPlatform, hostPlatform, platformMatches } from '../client/platform.js';
import type { Platform } from '../oci/manifest.js';
import { DataLayout } from '../storage/layout.js';
import { ImageNotFoundError, PlatformMismatchError, type ImageConfig, type ImageSource, type ResolvedImage } from './image-source.js';

export class LocalStoreSource implements ImageSource {
  constructor(private readonly store: LocalImageStore) {}

  static async open(): Promise<LocalStoreSource> {
    return new LocalStoreSource(await LocalImageStore.open());
  }

  /**
   * `platform`: what `--platform` asked for. An index gives its child for it (else for this host);
   * a single image must be of it, else PlatformMismatchError, a miss that `run` answers by pulling.
   */
  async resolve(input: string, platform?: Platform): Promise<ResolvedImage> {
    const doc = await this.store.index.read(); // read once: resolve and platformImage share it
    let resolved;
    try {
      resolved = await this.store.resolve(input, doc);
    } catch (err) {
      if (err instanceof StoreMiss) throw new ImageNotFoundError(input, 'not in the local store');
      throw err;
    }
    const wanted = platform ?? hostPlatform();
    const record = this.store.platformImage(resolved.record, doc, wanted);
    if (!record?.config || !record.layers) throw new ImageNotFoundError(input, `no image for ${formatPlatform(wanted)} in the local store`);
    if (platform && record === resolved.record && !(record.platform && platformMatches(record.platform, platform))) {
      throw new PlatformMismatchError(input, platform, record.platform ?? { os: '', architecture: '' });
    }
    const config = await this.store.readJson<ImageConfig>(record.config.digest);
    const layout = new DataLayout(this.store.root);
    return {
      id: record.digest,
      config,
      layers: record.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size, open: () => createReadStream(layout.blobPath(l.digest)) })),
    };
  }
}

/** docker run's implicit pull: fetches `input` (for `platform`, else this host) into the local store, progress on stderr. */
export async function pullIntoStore(input: string, platform?: Platform): Promise<void> {
  const [{ openRegistryContext }, { pull }, { Progress }, { parseReference }] = await Promise.all([
    import('../client/cli/context.js'),
    import('../client/pull.js'),
    import('../client/progress.js'),
    import('../oci/reference.js'),
  ]);
  const ref = parseReference(input);
  const { transport, store } = await openRegistryContext();
  try {
    await pull(transport, store, ref, { progress: new Progress(process.stderr, {}), ...(platform ? { platform } : {}) });
  } finally {
    await transport.close();
  }
}
