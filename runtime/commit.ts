// `berth commit`: a container's writable layer becomes the top layer of a new image, written to
// the client's local store (pushable with `berth push`) or to an OCI image layout.
// Overlay whiteouts go back to tar whiteouts (image-spec/layer.md "Whiteouts").
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { digestOf } from '../oci/digest.js';
import type { Blob, Image, Layer } from '../oci/image.js';
import type { ImageManifest } from '../oci/manifest.js';
import type { ImageReference } from '../oci/reference.js';
import { MediaType } from '../oci/media-types.js';
import { LocalImageStore } from '../client/store/image-store.js';
import { copy, type ImageSink } from '../client/image/copy.js';
import { LayoutSink } from '../client/image/layout.js';
import { builtImage } from '../client/image/manifest-image.js';
import { StoreSink } from '../client/image/store-image.js';
import { parsePlatform } from '../client/platform.js';
import { changeEntries } from './container-layer.js';
import type { ContainerConfig } from './container-store.js';
import { resolveImage } from './image-sources.js';

function hashing(hash: ReturnType<typeof createHash>): Transform {
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
}

/** Where a committed image goes: the client's local store, or an OCI layout folder. */
type CommitSink = ImageSink & { ingestNew(source: Readable, mediaType: string): Promise<Blob> };

/** Packs the container's changes as a gzip'd layer tar; returns descriptor and diff id. */
async function packChanges(config: ContainerConfig, sink: CommitSink): Promise<{ layer: Blob; diffId: string }> {
  const pack = tar.pack();
  const diffHash = createHash('sha256');
  const stored = sink.ingestNew(pack.pipe(hashing(diffHash)).pipe(createGzip()), MediaType.OciLayerGzip);
  const entry = (header: Parameters<typeof pack.entry>[0], body?: Readable) =>
    new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      if (body) body.pipe(pack.entry(header, done));
      else if (header.type === 'file') pack.entry(header, Buffer.alloc(0), done); // whiteout markers
      else pack.entry(header, done);
    });
  // changeEntries: whiteouts, opaque dirs, and a metacopy-only copy-up's data from its lower layer.
  for await (const c of changeEntries(config)) {
    const name = c.path;
    const common = { uid: c.uid, gid: c.gid, mode: c.mode, mtime: c.mtime };
    if (c.type === 'whiteout') {
      await entry({ name: join(dirname(name), `.wh.${basename(name)}`), type: 'file', size: 0, ...common, mode: 0o600 });
    } else if (c.type === 'directory') {
      await entry({ name: `${name}/`, type: 'directory', ...common });
    } else if (c.type === 'opaque') {
      await entry({ name: `${name}/.wh..wh..opq`, type: 'file', size: 0, ...common, mode: 0o600 });
    } else if (c.type === 'symlink') {
      await entry({ name, type: 'symlink', linkname: c.linkname ?? '', ...common });
    } else {
      await entry({ name, type: 'file', size: c.size, ...common }, createReadStream(c.dataPath ?? c.hostPath));
    }
  }
  pack.finalize();
  return { layer: await stored, diffId: `sha256:${diffHash.digest('hex')}` };
}

/** Builds the committed image (base layers, the container layer, config) and copies it into `sink`. */
async function writeImage(config: ContainerConfig, sink: CommitSink, comment: string, author: string): Promise<Image> {
  // The platform the container ran, so that a multi-platform base gives the same entry again.
  let platform;
  try {
    platform = config.ImagePlatform ? parsePlatform(config.ImagePlatform) : undefined;
  } catch {
    platform = undefined;
  }
  const base = await resolveImage(config.Image, platform ? { platform } : {});
  const top = await packChanges(config, sink);
  const layers: Layer[] = [...base.image.layers, top.layer];
  const created = new Date().toISOString();
  const baseConfig = base.config;
  const imageConfig = {
    ...baseConfig,
    created,
    ...(author ? { author } : {}),
    rootfs: { type: 'layers', diff_ids: [...(baseConfig.rootfs?.diff_ids ?? []), top.diffId] },
    history: [...(baseConfig.history ?? []), { created, created_by: `berth commit ${config.Id.slice(0, 12)}`, ...(comment ? { comment } : {}), ...(author ? { author } : {}) }],
  };
  const configBytes = Buffer.from(JSON.stringify(imageConfig));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: digestOf(configBytes), size: configBytes.length },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  // Base layers of a store image are in the store already; from an OCI layout they are copied.
  const image = builtImage(manifest, configBytes, layers);
  await copy(image, sink);
  return image;
}

/** Writes the committed image into the OCI layout `layoutDir` under `tag`; returns its manifest digest. */
export async function commitContainer(config: ContainerConfig, layoutDir: string, tag: string, comment = '', author = ''): Promise<string> {
  const sink = new LayoutSink(layoutDir);
  await sink.init();
  const image = await writeImage(config, sink, comment, author);
  await sink.tag(image, tag);
  return image.digest;
}

/**
 * docker commit: the image goes into the client's local store (what `berth images`, `push` and
 * `run` read), tagged `ref` when given. Returns the image ID (config digest) as docker prints it.
 */
export async function commitToStore(config: ContainerConfig, ref: ImageReference | undefined, comment = '', author = ''): Promise<string> {
  const sink = new StoreSink(await LocalImageStore.open());
  try {
    const image = await writeImage(config, sink, comment, author);
    await sink.commit([image], ref ? [ref] : [], image.digest);
    return image.config.digest;
  } catch (e) {
    await sink.rollback();
    throw e;
  }
}
