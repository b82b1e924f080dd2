// The metadata of the local image store: one small JSON document (tags → digest, image records,
// where blobs are known to live remotely). Every change is read-modify-write under an exclusive
// lock file and lands with tmp + fsync + rename, so a crash leaves the old or the new index, never
// a torn one, and two berth processes never lose each other's update.
import { open, readFile, rename, unlink, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { randomHex } from '../../storage/random-hex.js';
import { fsyncDir } from '../../storage/durable-file.js';

export interface LayerRecord {
  digest: string;
  size: number;
  mediaType: string;
}

export interface ImageRecord {
  /** The manifest's digest: the key of the record. */
  digest: string;
  mediaType: string;
  kind: 'image' | 'index';
  /** Image manifests: config digest (docker's IMAGE ID), layers, platform and creation time. */
  config?: { digest: string; size: number; mediaType: string };
  layers?: LayerRecord[];
  platform?: { os: string; architecture: string; variant?: string };
  created?: string;
  /** Index: the child manifests stored locally. */
  children?: string[];
  /** `registry/repo@digest` names this manifest (or its index) has in registries. */
  repoDigests: string[];
  /** When the record was added locally (ISO). */
  added: string;
}

export interface IndexDocument {
  version: 1;
  /** Fully qualified `registry/repo:tag` → manifest digest. */
  tags: Record<string, string>;
  images: Record<string, ImageRecord>;
  /** Blob digest → `registry/repo` names known to hold it, for cross-repository mounts. */
  sources: Record<string, string[]>;
}

function empty(): IndexDocument {
  return { version: 1, tags: {}, images: {}, sources: {} };
}

const LOCK_WAIT_MS = 30_000;

export class ImageIndex {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }
  private get path(): string {
    return join(this.dir, 'index.json');
  }
  private get lockPath(): string {
    return join(this.dir, 'index.lock');
  }

  async read(): Promise<IndexDocument> {
    const text = await this.readText();
    return text === undefined ? empty() : this.parse(text);
  }

  private async readText(): Promise<string | undefined> {
    try {
      return await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  private parse(text: string): IndexDocument {
    const doc = JSON.parse(text) as IndexDocument;
    if (doc.version !== 1) throw new Error(`${this.path}: unsupported index version ${String(doc.version)}`);
    doc.sources ??= {};
    return doc;
  }

  /**
   * True when `change` leaves the index as it is on disk: read without the lock (writers replace
   * the file whole), so that a change already made (a warm push registering what is registered)
   * costs no lock and no fsync.
   */
  async unchangedBy(change: (doc: IndexDocument) => void): Promise<boolean> {
    const text = await this.readText();
    if (text === undefined) return false;
    const doc = this.parse(text);
    change(doc);
    return JSON.stringify(doc) === text;
  }

  private async write(doc: IndexDocument): Promise<void> {
    const tmp = join(this.dir, `index.${randomHex(16)}.tmp`);
    const fh = await open(tmp, 'w', 0o644);
    try {
      await fh.writeFile(JSON.stringify(doc));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.path);
    await fsyncDir(this.dir);
  }

  /** Holds an O_EXCL lock file; a lock left by a dead process is taken over. */
  private async lock(): Promise<() => Promise<void>> {
    await mkdir(this.dir, { recursive: true });
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (let delay = 5; ; delay = Math.min(delay * 2, 200)) {
      try {
        const fh = await open(this.lockPath, 'wx');
        await fh.writeFile(String(process.pid));
        await fh.close();
        return () => unlink(this.lockPath).catch(() => undefined);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const holder = Number(await readFile(this.lockPath, 'utf8').catch(() => ''));
      if (Number.isInteger(holder) && holder > 0 && !alive(holder)) {
        await unlink(this.lockPath).catch(() => undefined);
        continue;
      }
      if (Date.now() > deadline) throw new Error(`image store is locked by process ${holder || '?'} (${this.lockPath})`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  /** Applies `fn` to the current document under the lock and writes the result. */
  async update<T>(fn: (doc: IndexDocument) => T | Promise<T>): Promise<T> {
    const release = await this.lock();
    try {
      const doc = await this.read();
      const result = await fn(doc);
      await this.write(doc);
      return result;
    } finally {
      await release();
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
