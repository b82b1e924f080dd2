// Unpacks one layer tar into its own directory, in the form overlayfs reads as a lower layer:
// tar whiteouts (image-spec/layer.md "Whiteouts") become overlay whiteouts (char device 0:0) and
// opaque directories (trusted.overlay.opaque=y). Hardened: an entry naming `..`, a path through a
// symlink, a hard link to outside the layer, or a device node is refused or skipped, never written.
import { chmodSync, closeSync, constants, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, openSync, symlinkSync, utimesSync, writeSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { compressionOf, decompressor } from '../oci/compression.js';
import tar from 'tar-stream';
import { Digester, parseDigest } from '../oci/digest.js';
import { makeWhiteout, setXattr } from '../native/index.js';

export class LayerRefusedError extends Error {}

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE = '.wh..wh..opq';

/** Splits a tar entry name into safe components; refuses `..` (layer.md "Filesystem Changeset"). */
export function safeComponents(name: string): string[] {
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw new LayerRefusedError(`refusing layer entry ${JSON.stringify(name)}: path escapes the layer root`);
  return parts;
}

/**
 * Creates missing parent directories, refusing to pass through a symlink or a non-directory.
 * `known` holds directories already checked in this layer; an entry that replaces one of them
 * (with a file or symlink) removes it from the set, so the check is never skipped unsafely.
 */
async function ensureParents(root: string, parts: string[], known: Set<string>): Promise<string> {
  let dir = root;
  for (const p of parts) {
    dir = join(dir, p);
    if (known.has(dir)) continue;
    const st = lstatOrUndefined(dir);
    if (!st) mkdirSync(dir, { mode: 0o755 });
    else if (st.isSymbolicLink()) throw new LayerRefusedError(`refusing layer entry below symlink ${JSON.stringify(dir.slice(root.length))}`);
    else if (!st.isDirectory()) throw new LayerRefusedError(`refusing layer entry below non-directory ${JSON.stringify(dir.slice(root.length))}`);
    known.add(dir);
  }
  return dir;
}

interface DirTimes {
  path: string;
  mtime: Date;
}

/**
 * Streams `source` (the layer blob) into `dest` (an empty directory), verifying `digest`.
 * Entries are applied in order; a later entry replaces an earlier one of the same name.
 */
export async function unpackLayer(source: Readable, mediaType: string, digest: string, dest: string): Promise<void> {
  const digester = new Digester(parseDigest(digest).algorithm);
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      digester.update(chunk);
      cb(null, chunk);
    },
  });
  let tarBytes = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      tarBytes += chunk.length;
      cb(null, chunk);
    },
  });
  const extract = tar.extract();
  const dirTimes: DirTimes[] = [];
  const known = new Set<string>();
  let last: (Header & { byteOffset?: number }) | undefined;
  const consume = (async () => {
    for await (const entry of extract) {
      last = entry.header;
      try {
        await applyEntry(dest, entry.header, entry as unknown as Readable, dirTimes, known);
      } finally {
        entry.resume(); // drain whatever the entry did not read (skipped types)
      }
    }
  })();
  // The entries' outcome first: a refused entry also fails the pipeline, as a premature close.
  const settled = await Promise.allSettled([consume, pipeline(source, tap, decompressor(compressionOf(mediaType)), count, extract)]);
  // A tar that stops right after its last entry's content, without that entry's zero padding
  // (and the end-of-archive blocks), ends cleanly for Go's archive/tar, hence for containerd and
  // runc; umoci 0.4 writes such layers (opencontainers/umoci#436). Accept exactly that case: every
  // content byte is there. A cut inside content or inside a header is still refused.
  const endsAtLastContent = last?.byteOffset !== undefined && tarBytes === last.byteOffset + (last.size ?? 0);
  for (const r of settled) {
    if (r.status === 'fulfilled') continue;
    const unpadded = r.reason instanceof Error && r.reason.message === 'Unexpected end of data' && endsAtLastContent;
    if (!unpadded) throw r.reason;
  }
  const actual = digester.digest();
  if (actual !== digest) throw new LayerRefusedError(`layer ${digest} does not match its digest (got ${actual})`);
  // Directory times last: creating entries inside a directory changes its mtime.
  for (const d of dirTimes.reverse()) utimesSync(d.path, d.mtime, d.mtime);
}

type Header = tar.Header;

// Metadata calls are synchronous: each is one quick syscall, and a round trip through libuv's
// thread pool per call would cost more than the call (this runs in the CLI, not in a server).
function lstatOrUndefined(path: string) {
  return lstatSync(path, { throwIfNoEntry: false });
}

/** Files up to this size are gathered and written with one write; larger ones stream. */
const SMALL_FILE = 1 << 20;

/** Drops `path` and everything below it from the checked-directory set. */
function forget(known: Set<string>, path: string): void {
  for (const d of known) if (d === path || d.startsWith(path + '/')) known.delete(d);
}

async function applyEntry(root: string, h: Header, body: Readable, dirTimes: DirTimes[], known: Set<string>): Promise<void> {
  const parts = safeComponents(h.name);
  if (parts.length === 0) return; // the root itself ("./")
  const base = parts[parts.length - 1]!;
  const parent = await ensureParents(root, parts.slice(0, -1), known);
  if (base === OPAQUE) {
    setXattr(parent, 'trusted.overlay.opaque', 'y');
    return;
  }
  if (base.startsWith(WHITEOUT_PREFIX)) {
    const hidden = base.slice(WHITEOUT_PREFIX.length);
    safeComponents(hidden);
    if (hidden === '') throw new LayerRefusedError(`refusing layer entry ${JSON.stringify(h.name)}: empty whiteout`);
    const target = join(parent, hidden);
    forget(known, target);
    await rm(target, { recursive: true, force: true });
    makeWhiteout(target);
    return;
  }
  const path = join(parent, base);
  const existing = lstatOrUndefined(path);
  if (existing && !(existing.isDirectory() && h.type === 'directory')) {
    forget(known, path);
    await rm(path, { recursive: true, force: true });
  }
  const mode = (h.mode ?? 0o644) & 0o7777;
  const mtime = h.mtime ?? new Date(0);
  switch (h.type) {
    case 'file':
    case 'contiguous-file':
    case undefined: {
      const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
      if ((h.size ?? 0) <= SMALL_FILE) {
        const chunks: Buffer[] = [];
        for await (const c of body) chunks.push(c as Buffer);
        const fd = openSync(path, flags, 0o600);
        try {
          for (const c of chunks) for (let off = 0; off < c.length; ) off += writeSync(fd, c, off);
        } finally {
          closeSync(fd);
        }
      } else {
        const fh = await open(path, flags, 0o600);
        await pipeline(body, fh.createWriteStream());
      }
      break;
    }
    case 'directory':
      if (!existing) mkdirSync(path, { mode: 0o700 });
      break;
    case 'symlink':
      // The target is never followed here; inside the container it resolves under its own root.
      symlinkSync(h.linkname ?? '', path);
      break;
    case 'link': {
      const targetParts = safeComponents(h.linkname ?? '');
      if (targetParts.length === 0) throw new LayerRefusedError(`refusing hard link ${JSON.stringify(h.name)} to the layer root`);
      const targetParent = await ensureParents(root, targetParts.slice(0, -1), known);
      const target = join(targetParent, targetParts[targetParts.length - 1]!);
      const st = lstatOrUndefined(target);
      if (!st || st.isDirectory()) throw new LayerRefusedError(`refusing hard link ${JSON.stringify(h.name)}: target ${JSON.stringify(h.linkname)} is not a file of this layer`);
      linkSync(target, path);
      return; // a hard link shares the target's owner, mode and times
    }
    default:
      // Device nodes and FIFOs from an image are not created: the container gets its own /dev.
      return;
  }
  lchownSync(path, h.uid ?? 0, h.gid ?? 0);
  const xattrs = (h.pax ?? {}) as Record<string, string>;
  for (const [key, value] of Object.entries(xattrs)) {
    // Only attributes an image may legitimately carry; trusted.* would forge overlay metadata.
    const name = key.startsWith('SCHILY.xattr.') ? key.slice('SCHILY.xattr.'.length) : undefined;
    if (name && (name.startsWith('user.') || name === 'security.capability')) setXattr(path, name, Buffer.from(value, 'binary'));
  }
  if (h.type === 'symlink') {
    lutimesSync(path, mtime, mtime);
    return;
  }
  chmodSync(path, mode); // after chown, which clears setuid bits
  if (h.type === 'directory') dirTimes.push({ path, mtime });
  else utimesSync(path, mtime, mtime);
}


/**
 * Applies entries one at a time into `dest` with the same rules as unpackLayer (for a layer being
 * written: berth build tees its tar entries here, so the layer is unpacked without reading its
 * tar back). finish() sets the directory times once every entry is in.
 */
export class EntryUnpacker {
  private readonly dirTimes: DirTimes[] = [];
  private readonly known = new Set<string>();
  constructor(readonly dest: string) {}
  async apply(header: Header, body: Readable): Promise<void> {
    try {
      await applyEntry(this.dest, header, body, this.dirTimes, this.known);
    } finally {
      body.resume();
    }
  }
  finish(): void {
    for (const d of this.dirTimes.reverse()) utimesSync(d.path, d.mtime, d.mtime);
  }
}
