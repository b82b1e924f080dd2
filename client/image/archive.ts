// Image archives as sources and sinks of the image model.
// - OCI archive: a tar of an OCI image layout (image-spec/image-layout.md): the layout source
//   over the tar's files; the sink writes blobs, then oci-layout and index.json.
// - docker archive (`docker save`, docker-image-spec/spec.md "Combined Image JSON + Filesystem
//   Changeset Format"): manifest.json lists each image's config file and layer tars. It has no
//   image manifest, so the source builds one (OCI, the config and layers as stored, in the fixed
//   key order berth always used, so one archive always gives the same digest); the sink writes
//   <config hex>.json and uncompressed <diff_id hex>/layer.tar files.
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { compressionOf, decompressor, sniffCompression } from '../../oci/compression.js';
import { Digester, digestOf, isValidDigest } from '../../oci/digest.js';
import type { Blob, Image, ImageOrIndex } from '../../oci/image.js';
import type { ImageManifest } from '../../oci/manifest.js';
import { MediaType } from '../../oci/media-types.js';
import { randomHex } from '../../storage/random-hex.js';
import { unlinkQuietly } from '../../storage/durable-file.js';
import { into } from './file-sink.js';
import type { BlobOutcome, ImageSink } from './copy.js';
import { LayoutSource, type LayoutFiles } from './layout.js';
import { manifestOf, type BlobReader } from './manifest-image.js';
import type { TarFile } from './tar-file.js';

export function tarFiles(t: TarFile, where: string): LayoutFiles {
  return {
    where,
    read: (p) => t.read(p),
    open: async (p, range) => t.open(p, range),
    has: async (p) => t.has(p),
  };
}

/** An OCI archive: the layout source over the tar. */
export function ociArchive(t: TarFile, where: string): LayoutSource {
  return new LayoutSource(tarFiles(t, where));
}

export function isOciArchive(t: TarFile): boolean {
  return t.has('index.json') && t.has('oci-layout');
}

export function isDockerArchive(t: TarFile): boolean {
  return t.has('manifest.json');
}

export interface DockerArchiveImage {
  image: Image;
  repoTags: string[];
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** The digest of a file, trusting a `blobs/sha256/<hex>` name (checked again when read) and hashing others. */
async function fileDigest(t: TarFile, name: string): Promise<string> {
  const m = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/.exec(name);
  if (m && isValidDigest(`${m[1]}:${m[2]}`)) return `${m[1]}:${m[2]}`;
  const d = new Digester('sha256');
  await pipeline(t.open(name), async (src: AsyncIterable<Buffer>) => {
    for await (const c of src) d.update(c);
  });
  return d.digest();
}

async function head(t: TarFile, name: string): Promise<Buffer> {
  if ((t.size(name) ?? 0) === 0) return Buffer.alloc(0);
  for await (const c of t.open(name, { start: 0, end: Math.min(3, t.size(name)! - 1) })) return c as Buffer;
  return Buffer.alloc(0);
}

/** The images of a docker archive's manifest.json, each with a manifest built for it. */
export async function dockerArchiveImages(t: TarFile): Promise<DockerArchiveImage[]> {
  const text = (await t.read('manifest.json'))!.toString('utf8');
  let entries: Array<{ Config?: unknown; RepoTags?: unknown; Layers?: unknown }>;
  try {
    entries = JSON.parse(text) as typeof entries;
  } catch (e) {
    throw new Error(`manifest.json is not valid JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(entries)) throw new Error('manifest.json must be an array');
  const out: DockerArchiveImage[] = [];
  for (const [i, e] of entries.entries()) {
    if (typeof e !== 'object' || e === null) throw new Error(`manifest.json: entry ${i} must be an object`);
    if (e.Layers !== undefined && e.Layers !== null && !isStringArray(e.Layers)) throw new Error(`manifest.json: entry ${i}: Layers must be an array of file names`);
    if (e.RepoTags !== undefined && e.RepoTags !== null && !isStringArray(e.RepoTags)) throw new Error(`manifest.json: entry ${i}: RepoTags must be an array of references`);
    const configName = typeof e.Config === 'string' && e.Config && t.has(e.Config) ? e.Config : undefined;
    if (!configName) throw new Error(`manifest.json names config ${JSON.stringify(e.Config)}, which the archive does not contain`);
    const configBytes = (await t.read(configName))!;
    const files = new Map<string, string>();
    const layers: ImageManifest['layers'] = [];
    for (const l of (e.Layers as string[] | null | undefined) ?? []) {
      if (!t.has(l)) throw new Error(`manifest.json names layer ${JSON.stringify(l)}, which the archive does not contain`);
      const digest = await fileDigest(t, l);
      files.set(digest, l);
      const c = sniffCompression(await head(t, l));
      layers.push({ mediaType: c === 'gzip' ? MediaType.OciLayerGzip : c === 'zstd' ? MediaType.OciLayerZstd : MediaType.OciLayer, digest, size: t.size(l)! });
    }
    const configDigest = digestOf(configBytes);
    const manifest: ImageManifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: configDigest, size: configBytes.length }, layers };
    const reader: BlobReader = {
      open: async (d) => (d.digest === configDigest ? t.open(configName) : t.open(files.get(d.digest)!)),
      openRange: async (d, start, end) => t.open(d.digest === configDigest ? configName : files.get(d.digest)!, { start, end }),
      readAll: async (d) => (d.digest === configDigest ? configBytes : Promise.reject(new Error(`${d.digest} is a layer`))),
    };
    const image = manifestOf(Buffer.from(JSON.stringify(manifest)), reader) as Image;
    out.push({ image, repoTags: (e.RepoTags as string[] | null | undefined) ?? [] });
  }
  return out;
}

// ---- sinks: a tar being written, blobs in order ----

async function addEntry(pack: tar.Pack, name: string, source: Readable | Buffer, size: number): Promise<void> {
  if (Buffer.isBuffer(source)) {
    await new Promise<void>((res, rej) => pack.entry({ name, size, mode: 0o644, mtime: new Date(0) }, source, (e) => (e ? rej(e) : res())));
    return;
  }
  const entry = pack.entry({ name, size, mode: 0o644, mtime: new Date(0) });
  await pipeline(source, entry);
}

function hex(d: string): string {
  return d.slice(d.indexOf(':') + 1);
}

/** An OCI archive being written: `name()` the images, then `finish()` writes oci-layout and index.json. */
export class OciArchiveSink implements ImageSink {
  readonly concurrency = 1;
  private readonly written = new Set<string>();
  private readonly named: Array<Record<string, unknown>> = [];
  constructor(private readonly pack: tar.Pack) {}

  async has(digest: string): Promise<boolean> {
    return this.written.has(digest);
  }

  private async put(digest: string, source: Readable | Buffer, size: number): Promise<void> {
    if (this.written.has(digest)) return;
    this.written.add(digest);
    await addEntry(this.pack, `blobs/${digest.replace(':', '/')}`, source, size);
  }

  async putBlob(blob: Blob): Promise<BlobOutcome> {
    await this.put(blob.digest, await blob.open(), blob.size);
    return 'written';
  }

  async putManifest(m: ImageOrIndex): Promise<void> {
    await this.put(m.digest, m.raw, m.raw.length);
  }

  /** Lists `m` in index.json, once per name (image-spec/annotations.md: ref.name carries the tag, containerd's key the full name). */
  name(m: ImageOrIndex, names: Array<{ full: string; tag: string }>): void {
    const desc = { mediaType: m.mediaType, digest: m.digest, size: m.raw.length };
    if (names.length === 0) this.named.push(desc);
    for (const n of names) this.named.push({ ...desc, annotations: { 'io.containerd.image.name': n.full, 'org.opencontainers.image.ref.name': n.tag } });
  }

  async finish(): Promise<void> {
    const layout = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await addEntry(this.pack, 'oci-layout', layout, layout.length);
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: this.named }));
    await addEntry(this.pack, 'index.json', index, index.length);
  }
}

/** A docker archive being written: configs and uncompressed layer tars, then manifest.json and repositories. */
export class DockerArchiveSink implements ImageSink {
  readonly concurrency = 1;
  private readonly paths = new Map<string, string>();
  private readonly entries: Array<{ Config: string; RepoTags: string[]; Layers: string[] }> = [];
  private readonly repositories: Record<string, Record<string, string>> = {};
  constructor(private readonly pack: tar.Pack, private readonly tmpDir: string) {}

  async has(digest: string): Promise<boolean> {
    return this.paths.has(digest);
  }

  async putBlob(blob: Blob, role: 'config' | 'layer'): Promise<BlobOutcome> {
    if (role === 'config') {
      const name = `${hex(blob.digest)}.json`;
      await addEntry(this.pack, name, await blob.open(), blob.size);
      this.paths.set(blob.digest, name);
    } else {
      this.paths.set(blob.digest, await this.layerTar(blob));
    }
    return 'written';
  }

  /** docker-archive layers are uncompressed: a compressed one is inflated to a temp file first (a tar entry needs its size). */
  private async layerTar(blob: Blob): Promise<string> {
    const c = compressionOf(blob.mediaType);
    if (c === 'none') {
      const path = `${hex(blob.digest)}/layer.tar`;
      await addEntry(this.pack, path, await blob.open(), blob.size);
      return path;
    }
    const tmp = join(this.tmpDir, `save-${randomHex(8)}`);
    try {
      const digester = new Digester('sha256');
      const fh = await open(tmp, 'w');
      try {
        await pipeline(await blob.open(), decompressor(c), async function* (src: AsyncIterable<Buffer>) {
          for await (const chunk of src) {
            digester.update(chunk);
            yield chunk;
          }
        }, into(fh));
      } finally {
        await fh.close().catch(() => undefined);
      }
      const path = `${hex(digester.digest())}/layer.tar`;
      await addEntry(this.pack, path, createReadStream(tmp, { highWaterMark: 1 << 20 }), (await stat(tmp)).size);
      return path;
    } finally {
      await unlinkQuietly(tmp);
    }
  }

  async putManifest(): Promise<void> {
    // A docker archive has no manifests: name() lists the image in manifest.json.
  }

  /** Lists `img` in manifest.json with `repoTags` (`repo:tag`, familiar names). */
  name(img: Image, repoTags: string[]): void {
    const layers = img.layers.map((l) => this.paths.get(l.digest)!);
    for (const t of repoTags) {
      const i = t.lastIndexOf(':');
      (this.repositories[t.slice(0, i)] ??= {})[t.slice(i + 1)] = layers.at(-1)?.split('/')[0] ?? '';
    }
    this.entries.push({ Config: this.paths.get(img.config.digest)!, RepoTags: repoTags, Layers: layers });
  }

  async finish(): Promise<void> {
    const manifest = Buffer.from(JSON.stringify(this.entries));
    await addEntry(this.pack, 'manifest.json', manifest, manifest.length);
    const repos = Buffer.from(JSON.stringify(this.repositories));
    await addEntry(this.pack, 'repositories', repos, repos.length);
  }
}
