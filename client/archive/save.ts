// berth save: copy(local store → archive). docker's `docker save` format (docker-image-spec/spec.md
// "Combined Image JSON + Filesystem Changeset Format") or an OCI image layout (image-spec/
// image-layout.md) whose blobs keep their digests: the sinks of client/image/archive.ts.
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import tar from 'tar-stream';
import { familiarRepository, formatReference, type ImageReference } from '../../oci/reference.js';
import { copy } from '../image/copy.js';
import { DockerArchiveSink, OciArchiveSink } from '../image/archive.js';
import { storeImage } from '../image/store-image.js';
import type { LocalImageStore } from '../store/image-store.js';
import type { ImageRecord, IndexDocument } from '../store/image-index.js';

export type ArchiveFormat = 'docker' | 'oci';

interface Named {
  record: ImageRecord;
  refs: ImageReference[];
}

/** Resolves the arguments: each names an image and, when it is a tag reference, that tag. */
async function collect(store: LocalImageStore, doc: IndexDocument, inputs: string[]): Promise<Named[]> {
  const byDigest = new Map<string, Named>();
  for (const input of inputs) {
    const { record, ref } = await store.resolve(input, doc);
    const n = byDigest.get(record.digest) ?? { record, refs: [] };
    if (ref) n.refs.push(ref);
    byDigest.set(record.digest, n);
  }
  return [...byDigest.values()];
}

/** Writes the archive to `out`; the caller makes the file write atomic. */
export async function saveImages(store: LocalImageStore, inputs: string[], out: Writable, format: ArchiveFormat): Promise<void> {
  const doc = await store.index.read();
  const named = await collect(store, doc, inputs);
  const pack = tar.pack();
  const done = pipeline(pack, out);
  try {
    if (format === 'oci') {
      const sink = new OciArchiveSink(pack);
      for (const { record, refs } of named) {
        // An index goes whole, with the children the store holds.
        const { target } = await copy(await storeImage(store, record.digest, record.mediaType), sink, { allPlatforms: true });
        sink.name(target, refs.map((r) => ({ full: formatReference(r), tag: r.tag ?? 'latest' })));
      }
      await sink.finish();
    } else {
      const sink = new DockerArchiveSink(pack, store.blobs.layout.tmpDir);
      for (const { record, refs } of named) {
        const { images } = await copy(await storeImage(store, record.digest, record.mediaType), sink);
        sink.name(images[0]!, refs.map((r) => `${familiarRepository(r)}:${r.tag ?? 'latest'}`));
      }
      await sink.finish();
    }
    pack.finalize();
  } catch (e) {
    pack.destroy(e as Error);
    await done.catch(() => undefined);
    throw e;
  }
  await done;
}
