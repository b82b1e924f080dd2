// berth push: copy(local store → registry). Config and layers are uploaded concurrently (skipped
// when the registry has them, mounted from another repository of the same registry when one is
// known to hold them, monolithic when small, chunked and resumable when large: image/remote.ts),
// then the manifest(s), an index's children before the index.
import { familiarRepository, repositoryName, type ImageReference } from '../oci/reference.js';
import { copy } from './image/copy.js';
import { RemoteSink } from './image/remote.js';
import { storeImage } from './image/store-image.js';
import { shortDigest, type Progress } from './progress.js';
import type { LocalImageStore } from './store/image-store.js';
import type { Transport } from './transport/registry-client.js';

export { CHUNK, MONOLITHIC_MAX } from './image/remote.js';

export interface PushOptions {
  /** Largest blob sent in one PUT (default MONOLITHIC_MAX). */
  monolithicMax?: number;
  /** PATCH size of a chunked upload (default CHUNK). */
  chunkSize?: number;
}

export interface PushResult {
  digest: string;
  size: number;
}

export async function push(transport: Transport, store: LocalImageStore, ref: ImageReference, progress: Progress, opts: PushOptions = {}): Promise<PushResult> {
  const doc = await store.index.read();
  const { record } = await store.resolve(familiarOrFull(ref), doc);
  progress.print(`The push refers to repository [${familiarRepository(ref)}]`);
  const here = repositoryName(ref);
  const layers = new Set<string>();
  const sink = new RemoteSink(transport, ref, {
    ...opts,
    mountFrom: (digest) => (doc.sources[digest] ?? []).filter((s) => s !== here && s.startsWith(`${ref.registry}/`)).map((s) => s.slice(ref.registry.length + 1)),
    onBytes: (b, sent) => layers.has(b.digest) && progress.bytes(shortDigest(b.digest), 'Pushing', sent, b.size),
  });
  const top = await storeImage(store, record.digest, record.mediaType);
  sink.tagAs(top.digest, ref.tag ?? top.digest);
  const all: string[] = [];
  await copy(top, sink, {
    allPlatforms: true,
    planned: (blobs) => {
      for (const b of blobs) {
        all.push(b.blob.digest);
        if (b.role !== 'layer') continue;
        layers.add(b.blob.digest);
        progress.status(shortDigest(b.blob.digest), 'Preparing');
      }
      for (const b of blobs) if (b.role === 'layer' && b.present) progress.status(shortDigest(b.blob.digest), 'Layer already exists');
    },
    written: (b, role, outcome) => {
      if (role === 'layer') progress.status(shortDigest(b.digest), outcome === 'written' ? 'Pushed' : `Mounted from ${outcome.slice('mounted from '.length)}`);
    },
  });
  const sources: Record<string, string> = {};
  for (const d of all) sources[d] = here;
  await store.register([{ ...record, repoDigests: [`${here}@${record.digest}`] }], [], '', sources);
  progress.print(`${ref.tag ?? 'latest'}: digest: ${record.digest} size: ${top.raw.length}`);
  return { digest: record.digest, size: top.raw.length };
}

function familiarOrFull(ref: ImageReference): string {
  return `${repositoryName(ref)}${ref.digest ? `@${ref.digest}` : `:${ref.tag ?? 'latest'}`}`;
}
