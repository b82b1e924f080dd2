// Random access to the files of an uncompressed tar on disk: one pass over the headers (ustar,
// pax `path`/`linkpath`/`size`, GNU long names) records where each file's bytes are, so an
// archive serves blobs by range without unpacking it. A gzip'd archive or one read from a pipe is
// first spooled to a temp file (uncompressed).
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decompressor, sniffCompression } from '../../oci/compression.js';
import { into } from './file-sink.js';
import { randomHex } from '../../storage/random-hex.js';
import { unlinkQuietly } from '../../storage/durable-file.js';

interface Entry {
  offset: number;
  size: number;
}

export class TarError extends Error {
  constructor(message: string) {
    super(`not a valid tar archive: ${message}`);
  }
}

/** Normalises a tar path: no leading ./ or /, no .. (names are only map keys here, never opened). */
export function cleanPath(name: string): string {
  const parts: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') parts.pop();
    else parts.push(p);
  }
  return parts.join('/');
}

function field(b: Buffer, start: number, len: number): string {
  const s = b.subarray(start, start + len);
  const end = s.indexOf(0);
  return s.subarray(0, end < 0 ? len : end).toString('utf8');
}

function number(b: Buffer, start: number, len: number): number {
  if (b[start]! & 0x80) {
    // base-256 (GNU) for sizes beyond 8 GiB
    let v = b[start]! & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + b[start + i]!;
    return v;
  }
  const s = field(b, start, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarError(`bad number field ${JSON.stringify(s)}`);
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  return sum === number(h, 148, 8);
}

function parsePax(b: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < b.length) {
    const sp = b.indexOf(0x20, at);
    if (sp < 0) break;
    const len = Number(b.subarray(at, sp).toString());
    if (!Number.isInteger(len) || len <= 0 || at + len > b.length) throw new TarError('bad pax header');
    const kv = b.subarray(sp + 1, at + len - 1).toString('utf8');
    const eq = kv.indexOf('=');
    if (eq > 0) out[kv.slice(0, eq)] = kv.slice(eq + 1);
    at += len;
  }
  return out;
}

export class TarFile {
  private readonly files = new Map<string, Entry>();
  private readonly links = new Map<string, string>();

  private constructor(readonly path: string, private readonly fh: FileHandle, private readonly cleanup: () => Promise<void>) {}

  /** Indexes the tar at `path`, or (gzip'd, zstd'd or from a stream) a spooled uncompressed copy in `tmpDir`. */
  static async open(source: string | Readable, tmpDir: string): Promise<TarFile> {
    let path: string;
    let cleanup = async () => undefined as void;
    let compressed = false;
    if (typeof source === 'string') {
      const fh = await open(source, 'r');
      const head = Buffer.alloc(4);
      await fh.read(head, 0, 4, 0);
      await fh.close();
      compressed = sniffCompression(head) !== 'none';
    }
    if (typeof source === 'string' && !compressed) {
      path = source;
    } else {
      const tmp = join(tmpDir, `archive-${randomHex(8)}.tar`);
      cleanup = () => unlinkQuietly(tmp);
      // Opened before anything flows, so a failure never races the file's creation with its removal.
      const out = await open(tmp, 'w', 0o600);
      try {
        const input = typeof source === 'string' ? createReadStream(source, { highWaterMark: 1 << 20 }) : source;
        await pipeline(await uncompressed(input), into(out));
      } catch (e) {
        await out.close().catch(() => undefined);
        await cleanup();
        if (/header check|unexpected end|invalid|unknown frame|corrupt|incorrect|distance|code lengths/i.test((e as Error).message)) throw new TarError((e as Error).message);
        throw e;
      }
      await out.close();
      path = tmp;
    }
    const fh = await open(path, 'r');
    const t = new TarFile(path, fh, cleanup);
    try {
      await t.index();
    } catch (e) {
      await t.close();
      throw e;
    }
    return t;
  }

  private async index(): Promise<void> {
    const { size: total } = await this.fh.stat();
    const h = Buffer.alloc(512);
    let at = 0;
    let pax: Record<string, string> = {};
    let longName: string | undefined;
    let longLink: string | undefined;
    let sawHeader = false;
    while (at + 512 <= total) {
      const { bytesRead } = await this.fh.read(h, 0, 512, at);
      if (bytesRead < 512) throw new TarError('unexpected end of data');
      if (h.every((x) => x === 0)) {
        if (!sawHeader) throw new TarError('no entries');
        return;
      }
      if (!checksumOk(h)) throw new TarError(`invalid tar header at byte ${at}`);
      sawHeader = true;
      const size = number(h, 124, 12);
      const type = String.fromCharCode(h[156]!);
      const data = at + 512;
      const next = data + Math.ceil(size / 512) * 512;
      if (data + size > total) throw new TarError('unexpected end of data');
      const body = async (): Promise<Buffer> => {
        if (size > 1 << 20) throw new TarError('oversized extended header');
        const b = Buffer.alloc(size);
        await this.fh.read(b, 0, size, data);
        return b;
      };
      if (type === 'x') {
        pax = parsePax(await body());
      } else if (type === 'g') {
        // global pax header: nothing of it matters here
      } else if (type === 'L') {
        longName = field(await body(), 0, size);
      } else if (type === 'K') {
        longLink = field(await body(), 0, size);
      } else {
        const prefix = field(h, 345, 155);
        const raw = pax.path ?? longName ?? (prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100));
        const name = cleanPath(raw);
        const realSize = pax.size !== undefined ? Number(pax.size) : size;
        const linkname = pax.linkpath ?? longLink ?? field(h, 157, 100);
        if (type === '0' || type === '\0' || type === '7') this.files.set(name, { offset: data, size: realSize });
        else if (type === '2') this.links.set(name, cleanPath(`${name.split('/').slice(0, -1).join('/')}/${linkname}`));
        else if (type === '1') this.links.set(name, cleanPath(linkname));
        pax = {};
        longName = undefined;
        longLink = undefined;
        at = data + Math.ceil(realSize / 512) * 512;
        continue;
      }
      at = next;
    }
    if (!sawHeader) throw new TarError('no entries');
  }

  private entry(name: string): Entry | undefined {
    let n = cleanPath(name);
    // docker-archive dedupes a layer as a symlink `<id>/layer.tar -> ../<other>/layer.tar`.
    for (let i = 0; i < 10 && !this.files.has(n) && this.links.has(n); i++) n = this.links.get(n)!;
    return this.files.get(n);
  }

  has(name: string): boolean {
    return this.entry(name) !== undefined;
  }

  size(name: string): number | undefined {
    return this.entry(name)?.size;
  }

  names(): string[] {
    return [...this.files.keys()];
  }

  async read(name: string): Promise<Buffer | undefined> {
    const e = this.entry(name);
    if (!e) return undefined;
    if (e.size > 16 << 20) throw new Error(`${name} is too large to be a manifest or config (${e.size} bytes)`);
    const b = Buffer.alloc(e.size);
    await this.fh.read(b, 0, e.size, e.offset);
    return b;
  }

  /** The bytes of `name` (optionally `start`..`end` inclusive, relative to the file). */
  open(name: string, range?: { start: number; end: number }): Readable {
    const e = this.entry(name);
    if (!e) throw Object.assign(new Error(`${this.path} has no file ${name}`), { code: 'ENOENT' });
    const start = e.offset + (range?.start ?? 0);
    const end = e.offset + (range ? range.end : e.size - 1);
    if (e.size === 0) return createReadStream(this.path, { start: 0, end: -1 });
    return createReadStream(this.path, { start, end, highWaterMark: 1 << 20 });
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    await this.cleanup();
  }
}

/** `source`, inflated when its first bytes are gzip's or zstd's magic (the old load's peek). */
async function uncompressed(source: Readable): Promise<Readable> {
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
  const c = sniffCompression(head);
  if (c === 'none') return rest;
  const d = decompressor(c);
  rest.on('error', (e) => d.destroy(e));
  return rest.pipe(d);
}
