// berth save: images to a tar, in docker's `docker save` format (docker-image-spec/spec.md
// "Combined Image JSON + Filesystem Changeset Format": <config>.json, <id>/layer.tar, manifest.json,
// repositories) or as an OCI image layout (image-spec/image-layout.md) whose blobs keep their digests.
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Readable, Writable } from 'node:stream';
import tar from 'tar-stream';
import { Digester } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import { familiarRepository, formatReference, type ImageReference } from '../../oci/reference.js';
import { unlinkQuietly } from '../../storage/durable-file.js';
import type { LocalImageStore } from '../store/image-store.js';
import type { ImageRecord, IndexDocument } from '../store/image-index.js';

export type ArchiveFormat = 'docker' | 'oci';

interface Named {
  record: ImageRecord;
  refs: ImageReference[];
}

function hex(d: string): string {
  return d.slice(d.indexOf(':') + 1);
}

async function addEntry(pack: tar.Pack, name: string, source: Readable | Buffer, size: number): Promise<void> {
  if (Buffer.isBuffer(source)) {
    await new Promise<void>((res, rej) => pack.entry({ name, size, mode: 0o644, mtime: new Date(0) }, source, (e) => (e ? rej(e) : res())));
    return;
  }
  const entry = pack.entry({ name, size, mode: 0o644, mtime: new Date(0) });
  await pipeline(source, entry);
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
    if (format === 'oci') await writeOciLayout(store, doc, named, pack);
    else await writeDockerArchive(store, doc, named, pack);
    pack.finalize();
  } catch (e) {
    pack.destroy(e as Error);
    await done.catch(() => undefined);
    throw e;
  }
  await done;
}

async function writeOciLayout(store: LocalImageStore, doc: IndexDocument, named: Named[], pack: tar.Pack): Promise<void> {
  const written = new Set<string>();
  const blob = async (digest: string) => {
    if (written.has(digest)) return;
    written.add(digest);
    const size = await store.blobs.size(digest);
    if (size === undefined) throw new Error(`blob ${digest} is missing from the local store`);
    await addEntry(pack, `blobs/${digest.replace(':', '/')}`, store.blobs.read(digest), size);
  };
  const manifests: Array<Record<string, unknown>> = [];
  for (const { record, refs } of named) {
    const images = record.kind === 'index' ? (record.children ?? []).map((c) => doc.images[c]).filter((r): r is ImageRecord => Boolean(r)) : [record];
    for (const img of images) {
      for (const l of img.layers ?? []) await blob(l.digest);
      if (img.config) await blob(img.config.digest);
      await blob(img.digest);
    }
    if (record.kind === 'index') await blob(record.digest);
    const size = (await store.blobs.size(record.digest))!;
    const desc = { mediaType: record.mediaType, digest: record.digest, size };
    if (refs.length === 0) manifests.push(desc);
    // image-spec/annotations.md: ref.name carries the tag; containerd's key the full name.
    for (const r of refs) manifests.push({ ...desc, annotations: { 'io.containerd.image.name': formatReference(r), 'org.opencontainers.image.ref.name': r.tag ?? 'latest' } });
  }
  const layout = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await addEntry(pack, 'oci-layout', layout, layout.length);
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }));
  await addEntry(pack, 'index.json', index, index.length);
}

async function writeDockerArchive(store: LocalImageStore, doc: IndexDocument, named: Named[], pack: tar.Pack): Promise<void> {
  const layersWritten = new Map<string, string>();
  const entries: Array<{ Config: string; RepoTags: string[]; Layers: string[] }> = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const { record, refs } of named) {
    const img = store.platformImage(record, doc);
    if (!img || !img.config) throw new Error(`${record.digest}: no image for this platform is stored`);
    const configName = `${hex(img.config.digest)}.json`;
    if (!layersWritten.has(img.config.digest)) {
      await addEntry(pack, configName, store.blobs.read(img.config.digest), img.config.size);
      layersWritten.set(img.config.digest, configName);
    }
    const layerPaths: string[] = [];
    for (const l of img.layers ?? []) {
      let path = layersWritten.get(l.digest);
      if (!path) {
        path = await writeLayerTar(store, pack, l.digest, l.mediaType, l.size);
        layersWritten.set(l.digest, path);
      }
      layerPaths.push(path);
    }
    const repoTags = refs.map((r) => `${familiarRepository(r)}:${r.tag ?? 'latest'}`);
    for (const r of refs) (repositories[familiarRepository(r)] ??= {})[r.tag ?? 'latest'] = layerPaths.at(-1)?.split('/')[0] ?? '';
    entries.push({ Config: configName, RepoTags: repoTags, Layers: layerPaths });
  }
  const manifest = Buffer.from(JSON.stringify(entries));
  await addEntry(pack, 'manifest.json', manifest, manifest.length);
  const repos = Buffer.from(JSON.stringify(repositories));
  await addEntry(pack, 'repositories', repos, repos.length);
}

/** docker-archive layers are uncompressed: gunzip to a temp file first (a tar entry needs its size). */
async function writeLayerTar(store: LocalImageStore, pack: tar.Pack, digest: string, mediaType: string, size: number): Promise<string> {
  if (/zstd/.test(mediaType)) throw new Error(`layer ${digest} is zstd-compressed: save it with --format oci`);
  const gz = /gzip/.test(mediaType) || (await isGzip(store, digest));
  if (!gz) {
    const path = `${hex(digest)}/layer.tar`;
    await addEntry(pack, path, store.blobs.read(digest), size);
    return path;
  }
  const tmp = join(store.blobs.layout.tmpDir, `save-${randomUUID()}`);
  try {
    const digester = new Digester('sha256');
    const fh = await open(tmp, 'w');
    try {
      await pipeline(store.blobs.read(digest), createGunzip(), async function* (src: AsyncIterable<Buffer>) {
        for await (const c of src) {
          digester.update(c);
          yield c;
        }
      }, fh.createWriteStream());
    } finally {
      await fh.close().catch(() => undefined);
    }
    const path = `${hex(digester.digest())}/layer.tar`;
    await addEntry(pack, path, createReadStream(tmp, { highWaterMark: 1 << 20 }), (await stat(tmp)).size);
    return path;
  } finally {
    await unlinkQuietly(tmp);
  }
}

export async function isGzip(store: LocalImageStore, digest: string): Promise<boolean> {
  const fh = await open(store.blobs.layout.blobPath(digest), 'r');
  try {
    const b = Buffer.alloc(2);
    const { bytesRead } = await fh.read(b, 0, 2, 0);
    return bytesRead === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await fh.close();
  }
}
