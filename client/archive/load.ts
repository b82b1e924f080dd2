// berth load: a `docker save` tar (manifest.json; docker-image-spec/spec.md), an OCI image layout
// tar (index.json + blobs/; image-spec/image-layout.md), or either gzip-compressed. Every file of
// the tar streams into the content-addressed blob store as it is read (OCI blobs verified against
// their path's digest), so nothing is buffered; files that turn out not to be image content
// (manifest.json, repositories, …) are dropped at the end.
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { isValidDigest } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import { parseManifest, type ImageIndex, type ImageManifest } from '../../oci/manifest.js';
import { familiarReference, parseReference, type ImageReference } from '../../oci/reference.js';
import type { LocalImageStore } from '../store/image-store.js';
import type { ImageRecord } from '../store/image-index.js';
import { isGzip } from './save.js';

interface Stored {
  digest: string;
  size: number;
}

/** Normalises a tar path: no leading ./ or /, no .. (paths are only map keys here, never opened). */
function clean(name: string): string {
  const parts: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') parts.pop();
    else parts.push(p);
  }
  return parts.join('/');
}

async function maybeGunzip(source: Readable): Promise<Readable> {
  // Peek at the first two bytes, then hand the whole stream on, gunzipped if they are gzip's magic.
  const it = source[Symbol.asyncIterator]();
  const first = await it.next();
  const head = first.done ? Buffer.alloc(0) : (first.value as Buffer);
  const rest = Readable.from(
    (async function* () {
      if (head.length > 0) yield head;
      for (;;) {
        const n = await it.next();
        if (n.done) return;
        yield n.value as Buffer;
      }
    })(),
  );
  return head[0] === 0x1f && head[1] === 0x8b ? rest.pipe(createGunzip()) : rest;
}

export interface LoadResult {
  loaded: string[];
}

export async function loadArchive(store: LocalImageStore, source: Readable): Promise<LoadResult> {
  const files = new Map<string, Stored>();
  const links = new Map<string, string>();
  const ingested: string[] = [];
  const extract = tar.extract();
  const input = await maybeGunzip(source);
  input.on('error', (e) => extract.destroy(e));
  input.pipe(extract);
  try {
    for await (const entry of extract) {
      const name = clean(entry.header.name);
      const type = entry.header.type;
      if (type === 'file' || type === 'contiguous-file') {
        const m = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/.exec(name);
        const expected = m && isValidDigest(`${m[1]}:${m[2]}`) ? { digest: `${m[1]}:${m[2]}` } : {};
        const stored = await store.blobs.ingest(entry as unknown as AsyncIterable<Uint8Array>, { ...expected, size: entry.header.size ?? 0 });
        files.set(name, stored);
        ingested.push(stored.digest);
      } else {
        if ((type === 'symlink' || type === 'link') && entry.header.linkname) {
          // docker-archive dedupes a layer as a symlink `<id>/layer.tar -> ../<other>/layer.tar`.
          const dir = type === 'symlink' ? name.split('/').slice(0, -1).join('/') : '';
          links.set(name, clean(`${dir}/${entry.header.linkname}`));
        }
        entry.resume();
      }
    }
  } catch (e) {
    await store.index.update((doc) => store.dropUnreferencedBlobs(doc, ingested)).catch(() => undefined);
    if ((e as Error).message?.includes('Unexpected end of data') || (e as Error).message?.includes('Invalid tar header')) {
      throw new Error(`not a valid tar archive: ${(e as Error).message}`);
    }
    throw e;
  }
  const lookup = (name: string): Stored | undefined => {
    let n = clean(name);
    for (let i = 0; i < 10 && !files.has(n) && links.has(n); i++) n = links.get(n)!;
    return files.get(n);
  };

  try {
    // Every image is read and checked before any is registered: a failed load registers nothing.
    const images = files.has('index.json') && files.has('oci-layout') ? await loadOciLayout(store, lookup) : files.has('manifest.json') ? await loadDockerArchive(store, lookup, ingested) : undefined;
    if (!images) throw new Error('archive has neither manifest.json (docker save) nor index.json + oci-layout (OCI image layout)');
    for (const img of images) await store.register(img.records, img.refs, img.target);
    return { loaded: images.flatMap((img) => img.lines) };
  } finally {
    // Whatever the tar held that no image uses (manifest.json, repositories, unused blobs) goes.
    await store.index.update((doc) => store.dropUnreferencedBlobs(doc, ingested));
  }
}

/** An image of the archive, read and checked, to be registered once every image of the archive is. */
interface PendingImage {
  records: ImageRecord[];
  refs: ImageReference[];
  target: string;
  lines: string[];
}

async function loadOciLayout(store: LocalImageStore, lookup: (n: string) => Stored | undefined): Promise<PendingImage[]> {
  const index = await store.readJson<ImageIndex>(lookup('index.json')!.digest, 'index.json');
  if (typeof index !== 'object' || index === null || !Array.isArray(index.manifests)) throw new Error('index.json: manifests must be an array');
  const images: PendingImage[] = [];
  for (const [i, desc] of index.manifests.entries()) {
    if (typeof desc !== 'object' || desc === null || typeof desc.digest !== 'string' || !isValidDigest(desc.digest)) throw new Error(`index.json: manifests[${i}] has no valid digest`);
    if (!(await store.blobs.has(desc.digest))) throw new Error(`index.json names ${desc.digest}, which the archive does not contain`);
    const records = await recordsFor(store, desc.digest);
    const ann: Record<string, unknown> = typeof desc.annotations === 'object' && desc.annotations !== null ? desc.annotations : {};
    let ref: ImageReference | undefined;
    for (const n of [ann['io.containerd.image.name'], ann['org.opencontainers.image.ref.name']]) {
      if (!n || typeof n !== 'string') continue;
      try {
        // A bare tag (`1.0`) names no repository: such an image loads untagged, as docker does.
        if (n.includes('/') || !/^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(n)) ref = parseReference(n);
      } catch {
        ref = undefined;
      }
      if (ref) break;
    }
    images.push({ records, refs: ref?.tag ? [ref] : [], target: desc.digest, lines: [ref ? `Loaded image: ${familiarReference(ref)}` : `Loaded image ID: ${desc.digest}`] });
  }
  return images;
}

/** Records for a manifest and, for an index, its children present in the store. */
async function recordsFor(store: LocalImageStore, digest: string): Promise<ImageRecord[]> {
  const parsed = parseManifest(await store.blobs.readAll(digest));
  const out: ImageRecord[] = [];
  for (const child of parsed.manifests) if (await store.blobs.has(child.digest)) out.push(...(await recordsFor(store, child.digest)));
  out.push(await store.recordFor(digest));
  return out;
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** `created`: digests of the manifests written here, dropped with the archive's files if the load fails. */
async function loadDockerArchive(store: LocalImageStore, lookup: (n: string) => Stored | undefined, created: string[]): Promise<PendingImage[]> {
  const entries = await store.readJson<Array<{ Config?: unknown; RepoTags?: unknown; Layers?: unknown }>>(lookup('manifest.json')!.digest, 'manifest.json');
  if (!Array.isArray(entries)) throw new Error('manifest.json must be an array');
  const images: PendingImage[] = [];
  for (const [i, e] of entries.entries()) {
    if (typeof e !== 'object' || e === null) throw new Error(`manifest.json: entry ${i} must be an object`);
    if (e.Layers !== undefined && e.Layers !== null && !isStringArray(e.Layers)) throw new Error(`manifest.json: entry ${i}: Layers must be an array of file names`);
    if (e.RepoTags !== undefined && e.RepoTags !== null && !isStringArray(e.RepoTags)) throw new Error(`manifest.json: entry ${i}: RepoTags must be an array of references`);
    const config = typeof e.Config === 'string' && e.Config ? lookup(e.Config) : undefined;
    if (!config) throw new Error(`manifest.json names config ${JSON.stringify(e.Config)}, which the archive does not contain`);
    const layers: ImageManifest['layers'] = [];
    for (const l of (e.Layers as string[] | null | undefined) ?? []) {
      const f = lookup(l);
      if (!f) throw new Error(`manifest.json names layer ${JSON.stringify(l)}, which the archive does not contain`);
      layers.push({ mediaType: (await isGzip(store, f.digest)) ? MediaType.OciLayerGzip : MediaType.OciLayer, digest: f.digest, size: f.size });
    }
    const refs = ((e.RepoTags as string[] | null | undefined) ?? []).map((t) => parseReference(t));
    const manifest: ImageManifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: config.digest, size: config.size }, layers };
    const { digest } = await store.blobs.putBytes(Buffer.from(JSON.stringify(manifest)));
    created.push(digest);
    const record = await store.recordFor(digest);
    images.push({ records: [record], refs, target: digest, lines: refs.length === 0 ? [`Loaded image ID: ${config.digest}`] : refs.map((r) => `Loaded image: ${familiarReference(r)}`) });
  }
  return images;
}
