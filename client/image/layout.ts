// An OCI image layout (image-spec/image-layout.md) as a source, whether a folder (`oci:DIR`) or a
// tar of one (an OCI archive, `berth save --format oci`): index.json lists the named manifests,
// blobs live at blobs/<alg>/<hex>. And a layout folder as a sink (`berth commit --oci DIR`).
import { readFileSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Digester, isValidDigest, parseDigest } from '../../oci/digest.js';
import type { Blob, ImageOrIndex } from '../../oci/image.js';
import type { Descriptor, ImageIndex as IndexJson } from '../../oci/manifest.js';
import { randomHex } from '../../storage/random-hex.js';
import { fsyncDir } from '../../storage/durable-file.js';
import { into } from './file-sink.js';
import type { BlobOutcome, ImageSink } from './copy.js';
import { blobOf, manifestOf, type BlobReader } from './manifest-image.js';

export const REF_NAME = 'org.opencontainers.image.ref.name';
export const CONTAINERD_NAME = 'io.containerd.image.name';

/** The files of a layout, wherever they are (a folder, a tar). */
export interface LayoutFiles {
  /** Where the layout is, for messages. */
  readonly where: string;
  /** A small file whole; undefined when absent. */
  read(path: string): Promise<Buffer | undefined>;
  open(path: string, range?: { start: number; end: number }): Promise<Readable>;
  has(path: string): Promise<boolean>;
}

export function blobPath(digest: string): string {
  if (!isValidDigest(digest)) throw new Error(`invalid digest ${JSON.stringify(digest.slice(0, 200))}`);
  const { algorithm, encoded } = parseDigest(digest);
  return `blobs/${algorithm}/${encoded}`;
}

export function folderFiles(dir: string): LayoutFiles {
  return {
    where: dir,
    // Synchronous: a few KiB each on `berth run`'s start path, where a thread-pool round trip
    // per open/stat/read/close costs more than the reads.
    read: async (p) => {
      try {
        return readFileSync(join(dir, p));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw e;
      }
    },
    open: async (p, range) => {
      const fh = await open(join(dir, p), 'r');
      return fh.createReadStream({ highWaterMark: 1 << 20, ...(range ? range : {}) });
    },
    has: (p) => stat(join(dir, p)).then(() => true, () => false),
  };
}

/** One entry of index.json. */
export interface LayoutEntry {
  desc: Descriptor;
  /** The ref.name annotation (a tag, or with containerd's annotation a full reference). */
  refName?: string;
  fullName?: string;
}

export class LayoutSource {
  constructor(readonly files: LayoutFiles) {}

  readonly reader: BlobReader = {
    open: async (d) => {
      try {
        return await this.files.open(blobPath(d.digest));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${this.files.where} does not contain blob ${d.digest}`);
        throw e;
      }
    },
    openRange: (d, start, end) => this.files.open(blobPath(d.digest), { start, end }),
    readAll: async (d) => {
      const b = await this.files.read(blobPath(d.digest));
      if (!b) throw new Error(`${this.files.where} does not contain blob ${d.digest}`);
      return b;
    },
    manifest: (d) => this.files.read(blobPath(d.digest)),
  };

  /** index.json's entries; a missing or malformed index.json is an error naming the layout. */
  async entries(): Promise<LayoutEntry[]> {
    const bytes = await this.files.read('index.json');
    if (!bytes) throw new Error(`no OCI layout at ${this.files.where} (index.json is missing)`);
    let index: IndexJson;
    try {
      index = JSON.parse(bytes.toString('utf8')) as IndexJson;
    } catch (e) {
      throw new Error(`index.json is not valid JSON: ${(e as Error).message}`);
    }
    if (typeof index !== 'object' || index === null || !Array.isArray(index.manifests)) throw new Error('index.json: manifests must be an array');
    return index.manifests.map((desc, i) => {
      if (typeof desc !== 'object' || desc === null || typeof desc.digest !== 'string' || !isValidDigest(desc.digest)) throw new Error(`index.json: manifests[${i}] has no valid digest`);
      const ann: Record<string, unknown> = typeof desc.annotations === 'object' && desc.annotations !== null ? desc.annotations : {};
      const e: LayoutEntry = { desc };
      if (typeof ann[REF_NAME] === 'string') e.refName = ann[REF_NAME];
      if (typeof ann[CONTAINERD_NAME] === 'string') e.fullName = ann[CONTAINERD_NAME];
      return e;
    });
  }

  /** The manifest an entry names, checked against the entry's descriptor. */
  async image(e: LayoutEntry): Promise<ImageOrIndex> {
    const raw = await this.files.read(blobPath(e.desc.digest));
    if (!raw) throw new Error(`index.json names ${e.desc.digest}, which ${this.files.where} does not contain`);
    // A descriptor's size and media type are checked too, when index.json states them.
    const expected = typeof e.desc.size === 'number' && typeof e.desc.mediaType === 'string' ? { expected: e.desc } : { digest: e.desc.digest };
    return manifestOf(raw, this.reader, expected);
  }

  /** `ref`: a ref.name, a manifest digest, or '' for the only entry (else the one named latest). */
  async find(ref: string): Promise<LayoutEntry | undefined> {
    const all = await this.entries();
    if (ref === '') return all.length === 1 ? all[0] : all.find((e) => e.refName === 'latest');
    return all.find((e) => e.refName === ref || e.desc.digest === ref);
  }
}

/** Writes blobs into a layout folder: temp file, fsync, rename; index.json replaced atomically. */
export class LayoutSink implements ImageSink {
  readonly concurrency = 4;
  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await mkdir(join(this.dir, 'blobs'), { recursive: true });
    const marker = join(this.dir, 'oci-layout');
    if (!(await stat(marker).then(() => true, () => false))) await writeFile(marker, JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  }

  has(digest: string): Promise<boolean> {
    return stat(join(this.dir, blobPath(digest))).then(() => true, () => false);
  }

  private async write(digest: string, source: Readable | Buffer): Promise<void> {
    const path = join(this.dir, blobPath(digest));
    const dir = join(path, '..');
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, `.tmp-${randomHex(8)}`);
    try {
      const fh = await open(tmp, 'w', 0o644);
      try {
        if (Buffer.isBuffer(source)) await fh.writeFile(source);
        else await pipeline(source, into(fh));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
      await fsyncDir(dir);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Stores new content (a layer being built) under its sha256 and names it as a Blob read back from the folder. */
  async ingestNew(source: Readable, mediaType: string): Promise<Blob> {
    await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    const tmp = join(this.dir, 'blobs', 'sha256', `.tmp-${randomHex(8)}`);
    const d = new Digester('sha256');
    try {
      const fh = await open(tmp, 'w', 0o644);
      try {
        await pipeline(source, async function* (src: AsyncIterable<Buffer>) {
          for await (const c of src) {
            d.update(c);
            yield c;
          }
        }, into(fh));
        await fh.sync();
      } finally {
        await fh.close();
      }
      const digest = d.digest();
      await rename(tmp, join(this.dir, blobPath(digest)));
      return blobOf({ digest, size: d.size, mediaType }, new LayoutSource(folderFiles(this.dir)).reader, `blob ${digest}`);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async putBlob(blob: Blob): Promise<BlobOutcome> {
    await this.write(blob.digest, await blob.open());
    return 'written';
  }

  async putManifest(m: ImageOrIndex): Promise<void> {
    if (!(await this.has(m.digest))) await this.write(m.digest, m.raw);
  }

  /** Names `m` in index.json under `tag` (replacing the entry that had the tag). */
  async tag(m: ImageOrIndex, tag: string): Promise<void> {
    const indexPath = join(this.dir, 'index.json');
    const index = await readFile(indexPath, 'utf8').then((t) => JSON.parse(t) as IndexJson, () => ({ schemaVersion: 2 as const, manifests: [] as Descriptor[] }));
    index.manifests = index.manifests.filter((d) => d.annotations?.[REF_NAME] !== tag);
    index.manifests.push({ mediaType: m.mediaType, digest: m.digest, size: m.raw.length, annotations: { [REF_NAME]: tag } });
    const tmp = `${indexPath}.${randomHex(4)}`;
    await writeFile(tmp, JSON.stringify(index));
    await rename(tmp, indexPath);
  }
}

