// A layer being built (RUN's filesystem diff, COPY/ADD's files) as a gzip'd tar streamed into the
// local store. Reproducible: entries in the order given (callers give them sorted by path), no
// user or group names, no gzip timestamp (zlib writes mtime 0), and with SOURCE_DATE_EPOCH set
// every mtime is clamped to it (BuildKit's rewrite-timestamp), so unchanged inputs give the
// same digest. Whiteouts are image-spec's `.wh.` files (image-spec/layer.md "Whiteouts").
import { createHash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { createGzip } from 'node:zlib';
import { ParallelGzip, parallelGzipAvailable } from './parallel-gzip.js';
import tar from 'tar-stream';
import type { LocalImageStore } from '../client/store/image-store.js';
import { MediaType } from '../oci/media-types.js';

export interface LayerEntry {
  /** Path inside the image, no leading '/', no trailing '/'. */
  path: string;
  /** whiteout: `path` deleted; opaque: the directory `path` hides what lower layers had in it. */
  type: 'file' | 'directory' | 'symlink' | 'link' | 'whiteout' | 'opaque';
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  /** file: its size (the body must have exactly this many bytes). */
  size?: number;
  /** symlink target, or the path (inside the image) a hard link names. */
  linkname?: string;
  /** file: its content. */
  open?: () => Readable | Promise<Readable>;
  /** file: its content in memory (small files: no stream per file), instead of open. */
  data?: Buffer;
}

/** A layer stored in the local store. */
export interface BuiltLayer {
  /** Digest of the gzip'd blob (manifest's layers[]). */
  digest: string;
  /** Digest of the uncompressed tar (config's rootfs.diff_ids). */
  diffId: string;
  size: number;
  mediaType: string;
}

/** SOURCE_DATE_EPOCH as a Date, when set to a number of seconds. */
export function sourceDateEpoch(): Date | undefined {
  const v = process.env.SOURCE_DATE_EPOCH;
  if (v === undefined || !/^\d+$/.test(v)) return undefined;
  return new Date(Number(v) * 1000);
}

function clamp(mtime: Date | undefined, epoch: Date | undefined): Date {
  const t = mtime ?? epoch ?? new Date(0);
  return epoch && t.getTime() > epoch.getTime() ? epoch : t;
}

/**
 * Writes `entries` as one layer into `store`. Returns undefined when there are none: the step
 * made no change, and its history entry is an empty layer (as BuildKit does). The layer is also
 * unpacked into the runtime's layer cache as it is written, unless `unpack` is false (RUN: its
 * container's upper dir becomes that copy).
 */
export async function writeLayer(store: LocalImageStore, entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>, opts: { unpack?: boolean } = {}): Promise<BuiltLayer | undefined> {
  const epoch = sourceDateEpoch();
  const iter = (Symbol.asyncIterator in entries ? entries[Symbol.asyncIterator]() : (entries as Iterable<LayerEntry>)[Symbol.iterator]()) as AsyncIterator<LayerEntry> | Iterator<LayerEntry>;
  const first = await iter.next();
  if (first.done) return undefined;
  const pack = tar.pack();
  const diffHash = createHash('sha256');
  // tar-stream emits a header, a body and its padding per entry: gathered into 256 KiB batches
  // before gzip, since zlib's cost per write dominates for many small files.
  let batch: Buffer[] = [];
  let batched = 0;
  const hashing = new Transform({
    transform(chunk: Buffer, _e, cb) {
      diffHash.update(chunk);
      batch.push(chunk);
      batched += chunk.length;
      if (batched >= 256 << 10) {
        const out = Buffer.concat(batch);
        batch = [];
        batched = 0;
        cb(null, out);
      } else cb();
    },
    flush(cb) {
      cb(null, batched > 0 ? Buffer.concat(batch) : undefined);
    },
  });
  // pgzip-style on every core (parallel-gzip.ts), else zlib's single stream: same format either way.
  const gzip = parallelGzipAvailable() ? new ParallelGzip() : createGzip();
  // pipe() does not carry a failure along: a destroyed pack must fail the ingest, not hang it.
  pack.on('error', (e: Error) => hashing.destroy(e));
  hashing.on('error', (e) => gzip.destroy(e));
  const stored = store.blobs.ingest(pack.pipe(hashing).pipe(gzip));
  stored.catch(() => undefined); // awaited below; an early failure of the entries must not leave it unhandled
  const unpack = opts.unpack === false ? undefined : await unpackAlongside(store);
  const put = (header: Parameters<typeof pack.entry>[0], body?: Readable, data?: Buffer) => {
    const toLayerDir = unpack?.entry(header as Parameters<NonNullable<typeof unpack>['entry']>[0], data ? Readable.from([data]) : body);
    const written = new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      if (data) pack.entry(header, data, done);
      else if (body) {
        body.on('error', reject);
        body.pipe(pack.entry(header, done));
      } else if (header.type === 'file') pack.entry(header, Buffer.alloc(0), done);
      else pack.entry(header, done);
    });
    return toLayerDir ? Promise.all([written, toLayerDir]).then(() => undefined) : written;
  };
  try {
    let next: IteratorResult<LayerEntry> = first;
    while (!next.done) {
      const e = next.value;
      const common = { uid: e.uid ?? 0, gid: e.gid ?? 0, mtime: clamp(e.mtime, epoch), uname: '', gname: '' };
      const slash = e.path.lastIndexOf('/');
      const dir = slash < 0 ? '' : e.path.slice(0, slash + 1);
      const base = e.path.slice(slash + 1);
      switch (e.type) {
        case 'whiteout':
          await put({ name: `${dir}.wh.${base}`, type: 'file', size: 0, mode: 0o600, ...common });
          break;
        case 'opaque':
          await put({ name: `${e.path}/.wh..wh..opq`, type: 'file', size: 0, mode: 0o600, ...common });
          break;
        case 'directory':
          await put({ name: `${e.path}/`, type: 'directory', mode: e.mode ?? 0o755, ...common });
          break;
        case 'symlink':
          await put({ name: e.path, type: 'symlink', linkname: e.linkname ?? '', mode: e.mode ?? 0o777, ...common });
          break;
        case 'link':
          await put({ name: e.path, type: 'link', linkname: e.linkname ?? '', mode: e.mode ?? 0o644, ...common });
          break;
        case 'file':
          if (e.data) await put({ name: e.path, type: 'file', size: e.data.length, mode: e.mode ?? 0o644, ...common }, undefined, e.data);
          else if (!e.open || !e.size) await put({ name: e.path, type: 'file', size: 0, mode: e.mode ?? 0o644, ...common });
          else await put({ name: e.path, type: 'file', size: e.size, mode: e.mode ?? 0o644, ...common }, await e.open());
          break;
      }
      next = await iter.next();
    }
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    await stored.catch(() => undefined);
    await unpack?.abort();
    throw err;
  }
  const { digest, size } = await stored;
  await unpack?.commit(digest);
  return { digest, diffId: `sha256:${diffHash.digest('hex')}`, size, mediaType: MediaType.OciLayerGzip };
}

/**
 * The layer unpacked as it is written, into the runtime's layer cache (runtime/layer-cache.ts)
 * of the same root: the next step (a RUN, a COPY --from view) or `berth run` mounts it without
 * reading the tar back. Best effort: a failure drops the unpacked copy, never the layer, and the
 * cache then unpacks the tar when something needs it. Root only (owners are set).
 */
async function unpackAlongside(store: LocalImageStore) {
  if (process.getuid?.() !== 0) return undefined;
  const [{ unpackingLayer }, { EntryUnpacker }, { RuntimeLayout }, { PassThrough }] = await Promise.all([
    import('../runtime/layer-cache.js'),
    import('../runtime/layer-unpack.js'),
    import('../runtime/runtime-layout.js'),
    import('node:stream'),
  ]);
  const target = await unpackingLayer(new RuntimeLayout(store.root)).catch(() => undefined);
  if (!target) return undefined;
  const unpacker = new EntryUnpacker(target.dir);
  let broken = false;
  return {
    /** Applies one tar entry; a body is teed (the tar gets the original). */
    entry(header: Parameters<typeof unpacker.apply>[0], body?: Readable): Promise<void> | undefined {
      if (broken) return undefined;
      let copy: Readable = PassThrough.from([]);
      if (body) {
        const tee = new PassThrough();
        body.pipe(tee);
        copy = tee;
      }
      return unpacker.apply(header, copy).catch(() => {
        broken = true;
        copy.resume(); // keep the tar's copy flowing
      });
    },
    async commit(digest: string) {
      if (broken) return target.abort();
      try {
        unpacker.finish();
        await target.commit(digest);
      } catch {
        await target.abort();
      }
    },
    abort: () => target.abort(),
  };
}
