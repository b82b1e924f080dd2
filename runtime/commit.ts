// `berth commit`: a container's writable layer becomes the top layer of a new image, written to
// the client's local store (pushable with `berth push`) or to an OCI image layout.
// Overlay whiteouts go back to tar whiteouts (image-spec/layer.md "Whiteouts").
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, readlink, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { parseDigest } from '../oci/digest.js';
import type { ImageReference } from '../oci/reference.js';
import { LocalImageStore } from '../client/store/image-store.js';
import type { Descriptor, ImageIndex } from '../oci/manifest.js';
import { MediaType } from '../oci/media-types.js';
import { getXattr } from '../native/index.js';
import { containerChanges } from './container-layer.js';
import type { ContainerConfig } from './container-store.js';
import { resolveImage } from './image-sources.js';
import { parsePlatform } from '../client/platform.js';

const REF_NAME = 'org.opencontainers.image.ref.name';

function hashing(hash: ReturnType<typeof createHash>, count: { n: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      count.n += chunk.length;
      cb(null, chunk);
    },
  });
}

/** Where a committed image's blobs go: an OCI image layout, or the client's local store. */
interface BlobSink {
  has(digest: string): Promise<boolean>;
  put(source: Readable): Promise<{ digest: string; size: number }>;
}

/** Blobs of the OCI layout at `layoutDir`: temp file, then renamed to its sha256 name. */
function layoutSink(layoutDir: string): BlobSink {
  const blobs = join(layoutDir, 'blobs', 'sha256');
  return {
    has: (digest) => stat(join(blobs, parseDigest(digest).encoded)).then(() => true, () => false),
    async put(source) {
      await mkdir(blobs, { recursive: true });
      const tmp = join(blobs, `.tmp-${randomBytes(8).toString('hex')}`);
      const hash = createHash('sha256');
      const count = { n: 0 };
      try {
        await pipeline(source, hashing(hash, count), createWriteStream(tmp));
        const digest = `sha256:${hash.digest('hex')}`;
        await rename(tmp, join(blobs, parseDigest(digest).encoded));
        return { digest, size: count.n };
      } finally {
        await rm(tmp, { force: true });
      }
    },
  };
}

/** The client's store (storage/blob-store.ts: temp file, fsync, rename). */
function storeSink(store: LocalImageStore): BlobSink {
  return { has: (digest) => store.blobs.has(digest), put: (source) => store.blobs.ingest(source) };
}

/** Packs the container's changes as a gzip'd layer tar; returns descriptor and diff id. */
async function packChanges(config: ContainerConfig, sink: BlobSink): Promise<{ desc: Descriptor; diffId: string }> {
  const pack = tar.pack();
  const diffHash = createHash('sha256');
  const stored = sink.put(pack.pipe(hashing(diffHash, { n: 0 })).pipe(createGzip()));
  const entry = (header: Parameters<typeof pack.entry>[0], body?: Readable) =>
    new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      if (body) body.pipe(pack.entry(header, done));
      else if (header.type === 'file') pack.entry(header, Buffer.alloc(0), done); // whiteout markers
      else pack.entry(header, done);
    });
  for await (const c of containerChanges(config)) {
    const name = c.path.slice(1);
    const st = c.stat;
    const common = { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777, mtime: st.mtime };
    if (c.kind === 'D') {
      await entry({ name: join(dirname(name), `.wh.${basename(name)}`), type: 'file', size: 0, ...common, mode: 0o600 });
    } else if (st.isDirectory()) {
      await entry({ name: `${name}/`, type: 'directory', ...common });
      if (getXattr(c.hostPath, 'trusted.overlay.opaque')?.toString() === 'y') await entry({ name: `${name}/.wh..wh..opq`, type: 'file', size: 0, ...common, mode: 0o600 });
    } else if (st.isSymbolicLink()) {
      await entry({ name, type: 'symlink', linkname: await readlink(c.hostPath), ...common });
    } else if (st.isFile()) {
      await entry({ name, type: 'file', size: st.size, ...common }, createReadStream(c.hostPath));
    }
    // sockets, FIFOs and devices made inside a container are not carried into images
  }
  pack.finalize();
  const { digest, size } = await stored;
  return { desc: { mediaType: MediaType.OciLayerGzip, digest, size }, diffId: `sha256:${diffHash.digest('hex')}` };
}

interface CommittedImage {
  manifest: { digest: string; size: number };
}

/** Stores base layers, the container layer, config and manifest in `sink`. */
async function writeImage(config: ContainerConfig, sink: BlobSink, comment: string, author: string): Promise<CommittedImage> {
  // The platform the container ran, so that a multi-platform base gives the same entry again.
  let platform;
  try {
    platform = config.ImagePlatform ? parsePlatform(config.ImagePlatform) : undefined;
  } catch {
    platform = undefined;
  }
  const base = await resolveImage(config.Image, platform ? { platform } : {});
  const layers: Descriptor[] = [];
  for (const l of base.layers) {
    // Layers of a store image are in the store already; from an OCI layout they are copied.
    if (!(await sink.has(l.digest))) {
      const stored = await sink.put(l.open());
      if (stored.digest !== l.digest) throw new Error(`layer ${l.digest} does not match its digest`);
    }
    layers.push({ mediaType: l.mediaType, digest: l.digest, size: l.size });
  }
  const top = await packChanges(config, sink);
  layers.push(top.desc);
  const created = new Date().toISOString();
  const baseConfig = base.config as Record<string, unknown> & { rootfs?: { diff_ids: string[] }; history?: unknown[] };
  const imageConfig = {
    ...baseConfig,
    created,
    ...(author ? { author } : {}),
    rootfs: { type: 'layers', diff_ids: [...(baseConfig.rootfs?.diff_ids ?? []), top.diffId] },
    history: [...(baseConfig.history ?? []), { created, created_by: `berth commit ${config.Id.slice(0, 12)}`, ...(comment ? { comment } : {}), ...(author ? { author } : {}) }],
  };
  const cfg = await sink.put(Readable.from([Buffer.from(JSON.stringify(imageConfig))]));
  const manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, ...cfg }, layers };
  return { manifest: await sink.put(Readable.from([Buffer.from(JSON.stringify(manifest))])) };
}

/** Writes the committed image into the OCI layout `layoutDir` under `tag`; returns its manifest digest. */
export async function commitContainer(config: ContainerConfig, layoutDir: string, tag: string, comment = '', author = ''): Promise<string> {
  await mkdir(layoutDir, { recursive: true });
  await writeFile(join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const { manifest: m } = await writeImage(config, layoutSink(layoutDir), comment, author);
  const indexPath = join(layoutDir, 'index.json');
  const index = await readFile(indexPath, 'utf8').then((t) => JSON.parse(t) as ImageIndex, () => ({ schemaVersion: 2 as const, manifests: [] as Descriptor[] }));
  index.manifests = index.manifests.filter((d) => d.annotations?.[REF_NAME] !== tag);
  index.manifests.push({ mediaType: MediaType.OciManifest, ...m, annotations: { [REF_NAME]: tag } });
  const tmp = `${indexPath}.${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, JSON.stringify(index));
  await rename(tmp, indexPath);
  return m.digest;
}

/**
 * docker commit: the image goes into the client's local store (what `berth images`, `push` and
 * `run` read), tagged `ref` when given. Returns the image ID (config digest) as docker prints it.
 */
export async function commitToStore(config: ContainerConfig, ref: ImageReference | undefined, comment = '', author = ''): Promise<string> {
  const store = await LocalImageStore.open();
  const { manifest } = await writeImage(config, storeSink(store), comment, author);
  const record = await store.recordFor(manifest.digest);
  await store.register([record], ref ? [ref] : [], manifest.digest);
  return record.config!.digest;
}
