// berth load: copy(archive → local store). A `docker save` tar (manifest.json) or an OCI archive
// (index.json + oci-layout), either possibly gzip'd: read in place when it is a plain tar file,
// else spooled (uncompressed) to a temp file of the store first (client/image/tar-file.ts). Every
// image of the archive is read and verified, then all are registered in one go: a failed load
// registers nothing and leaves no blob behind.
import type { Readable } from 'node:stream';
import { familiarReference, parseReference, type ImageReference } from '../../oci/reference.js';
import type { ImageOrIndex } from '../../oci/image.js';
import { copy } from '../image/copy.js';
import { dockerArchiveImages, isDockerArchive, isOciArchive, ociArchive } from '../image/archive.js';
import { StoreSink } from '../image/store-image.js';
import { TarFile } from '../image/tar-file.js';
import type { LocalImageStore } from '../store/image-store.js';

export interface LoadResult {
  loaded: string[];
}

interface Pending {
  /** Manifests to record, children first. */
  manifests: ImageOrIndex[];
  refs: ImageReference[];
  target: string;
  lines: string[];
}

/** `source`: a file path (read in place when it is an uncompressed tar) or a stream. */
export async function loadArchive(store: LocalImageStore, source: string | Readable): Promise<LoadResult> {
  const t = await TarFile.open(source, store.blobs.layout.tmpDir);
  const sink = new StoreSink(store, { concurrency: 2 });
  try {
    const pending: Pending[] = [];
    if (isOciArchive(t)) {
      const layout = ociArchive(t, 'the archive');
      for (const e of await layout.entries()) {
        if (!t.has(`blobs/${e.desc.digest.replace(':', '/')}`)) throw new Error(`index.json names ${e.desc.digest}, which the archive does not contain`);
        const top = await layout.image(e);
        const { images, target } = await copy(top, sink, { allPlatforms: true });
        let ref: ImageReference | undefined;
        for (const n of [e.fullName, e.refName]) {
          if (!n) continue;
          try {
            // A bare tag (`1.0`) names no repository: such an image loads untagged, as docker does.
            if (n.includes('/') || !/^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(n)) ref = parseReference(n);
          } catch {
            ref = undefined;
          }
          if (ref) break;
        }
        pending.push({ manifests: target === top && top.kind === 'index' ? [...images, top] : images, refs: ref?.tag ? [ref] : [], target: target.digest, lines: [ref ? `Loaded image: ${familiarReference(ref)}` : `Loaded image ID: ${target.digest}`] });
      }
    } else if (isDockerArchive(t)) {
      for (const { image, repoTags } of await dockerArchiveImages(t)) {
        await copy(image, sink);
        const refs = repoTags.map((r) => parseReference(r));
        pending.push({ manifests: [image], refs, target: image.digest, lines: refs.length === 0 ? [`Loaded image ID: ${image.config.digest}`] : refs.map((r) => `Loaded image: ${familiarReference(r)}`) });
      }
    } else {
      throw new Error('archive has neither manifest.json (docker save) nor index.json + oci-layout (OCI image layout)');
    }
    for (const p of pending) await sink.commit(p.manifests, p.refs, p.target);
    return { loaded: pending.flatMap((p) => p.lines) };
  } catch (e) {
    await sink.rollback();
    throw e;
  } finally {
    await t.close();
  }
}
