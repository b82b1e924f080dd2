// ImageSource over the client's local image store ($BERTH_ROOT, client/store/): images pulled or
// loaded by the client, layers read straight from its content-addressed blobs.
import { createReadStream } from 'node:fs';
import { ImageNotFoundError as StoreMiss, LocalImageStore } from '../client/store/image-store.js';
import { DataLayout } from '../storage/layout.js';
import { ImageNotFoundError, type ImageConfig, type ImageSource, type ResolvedImage } from './image-source.js';

export class LocalStoreSource implements ImageSource {
  constructor(private readonly store: LocalImageStore) {}

  static async open(): Promise<LocalStoreSource> {
    return new LocalStoreSource(await LocalImageStore.open());
  }

  async resolve(input: string): Promise<ResolvedImage> {
    let resolved;
    try {
      resolved = await this.store.resolve(input);
    } catch (err) {
      if (err instanceof StoreMiss) throw new ImageNotFoundError(input, 'not in the local store');
      throw err;
    }
    const record = this.store.platformImage(resolved.record, await this.store.index.read());
    if (!record?.config || !record.layers) throw new ImageNotFoundError(input, 'no image for this platform in the local store');
    const config = await this.store.readJson<ImageConfig>(record.config.digest);
    const layout = new DataLayout(this.store.root);
    return {
      id: record.digest,
      config,
      layers: record.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size, open: () => createReadStream(layout.blobPath(l.digest)) })),
    };
  }
}

/** docker run's implicit pull: fetches `input` into the local store, progress on stderr. */
export async function pullIntoStore(input: string): Promise<void> {
  const [{ openRegistryContext }, { pull }, { Progress }, { parseReference }] = await Promise.all([
    import('../client/cli/context.js'),
    import('../client/pull.js'),
    import('../client/progress.js'),
    import('../oci/reference.js'),
  ]);
  const ref = parseReference(input);
  const { transport, store } = await openRegistryContext();
  try {
    await pull(transport, store, ref, { progress: new Progress(process.stderr, {}) });
  } finally {
    await transport.close();
  }
}
