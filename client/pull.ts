// berth pull: copy(registry → local store). The manifest is resolved first (mirrors, then the
// registry), the index entry for the platform chosen by copy(), config and layers downloaded
// concurrently into the blob store (hashed while streaming, resumed with Range after a broken
// connection), then the image registered. Nothing is named in the index until every blob is
// stored and verified; on failure the blobs this pull added go.
import { RegistryError } from '../oci/errors.js';
import type { Platform } from '../oci/manifest.js';
import { familiarReference, formatReference, repositoryName, type ImageReference } from '../oci/reference.js';
import { copy } from './image/copy.js';
import { RemoteSource, withDownloads } from './image/remote.js';
import { StoreSink } from './image/store-image.js';
import { shortDigest, type Progress } from './progress.js';
import type { LocalImageStore } from './store/image-store.js';
import type { Transport } from './transport/registry-client.js';

export interface PullOptions {
  platform?: Platform;
  allPlatforms?: boolean;
  progress: Progress;
}

export interface PullResult {
  digest: string;
  upToDate: boolean;
}

export async function pull(transport: Transport, store: LocalImageStore, ref: ImageReference, opts: PullOptions): Promise<PullResult> {
  const { progress } = opts;
  const reference = ref.digest ?? ref.tag ?? 'latest';
  progress.print(`${ref.digest ? ref.digest : reference}: Pulling from ${ref.repository}`);
  const source = new RemoteSource(transport, ref);
  let top;
  try {
    top = withDownloads(source, await source.image());
  } catch (e) {
    if (e instanceof RegistryError && e.status === 404) {
      throw new RegistryError(e.code, `manifest for ${familiarReference(ref)} not found: manifest unknown (${e.message})`, { status: 404 });
    }
    throw e;
  }
  const layers = new Set<string>();
  let upToDate = true;
  const sink = new StoreSink(store, {
    concurrency: transport.config.maxConcurrentDownloads,
    onBytes: (b, n) => layers.has(b.digest) && progress.bytes(shortDigest(b.digest), 'Downloading', n, b.size),
  });
  try {
    const result = await copy(top, sink, {
      ...(opts.platform ? { platform: opts.platform } : {}),
      allPlatforms: Boolean(opts.allPlatforms),
      planned: (blobs) => {
        for (const b of blobs) {
          if (!b.present) upToDate = false;
          if (b.role !== 'layer') continue;
          layers.add(b.blob.digest);
          progress.status(shortDigest(b.blob.digest), b.present ? 'Already exists' : 'Pulling fs layer');
        }
      },
      written: (b, role) => {
        if (role !== 'layer') return;
        progress.status(shortDigest(b.digest), 'Verifying Checksum');
        progress.status(shortDigest(b.digest), 'Download complete');
      },
    });
    // The index is kept beside the chosen entry even when only one platform is pulled: repoDigests name it.
    await sink.putManifest(top);
    for (const d of layers) if (sink.added.includes(d)) progress.status(shortDigest(d), 'Pull complete');
    const sources: Record<string, string> = {};
    for (const img of result.images) for (const b of [img.config, ...img.layers]) sources[b.digest] = repositoryName(ref);
    const before = (await store.index.read()).tags[formatReference({ ...ref, digest: undefined } as ImageReference)];
    const manifests = result.target === top && top.kind === 'index' ? [...result.images, top] : result.images;
    await sink.commit(manifests, ref.tag && !ref.digest ? [ref] : [], result.target.digest, { repoDigests: [`${repositoryName(ref)}@${top.digest}`], sources });
    if (before !== result.target.digest) upToDate = false;
  } catch (e) {
    // Leave nothing half-stored: the blobs this pull added go unless another image uses them.
    await sink.rollback();
    throw e;
  }
  progress.print(`Digest: ${top.digest}`);
  const shown = familiarReference(ref.digest ? { ...ref, tag: undefined } : ref);
  progress.print(upToDate ? `Status: Image is up to date for ${shown}` : `Status: Downloaded newer image for ${shown}`);
  return { digest: top.digest, upToDate };
}

