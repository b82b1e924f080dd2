// Test support for the generated-input campaign: ustar archives written byte by byte (so a test
// knows where every header field sits and can corrupt exactly one), and the byte-level mutations
// the archive readers are fed (cut, a header field rewritten with or without a fixed checksum,
// bytes flipped, gzip broken).
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';

export interface TarEntry {
  name: string;
  data?: Buffer;
  /** ustar typeflag: '0' file, '1' hard link, '2' symlink, '5' directory, … */
  type?: string;
  linkname?: string;
  mode?: number;
}

export interface BuiltTar {
  bytes: Buffer;
  /** Byte offset of each entry's 512-byte header. */
  headers: number[];
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

/** Writes the header's checksum field (sum of the header bytes with the field as spaces). */
export function fixChecksum(header: Buffer): void {
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(octal(sum, 7) + ' ', 148, 'latin1');
}

export function tarHeader(e: TarEntry, size: number): Buffer {
  const h = Buffer.alloc(512);
  const name = Buffer.from(e.name, 'utf8');
  // Names beyond 100 bytes go in the ustar prefix when they split at a '/', else are cut.
  if (name.length > 100) {
    const cut = e.name.lastIndexOf('/', 155);
    if (cut > 0 && Buffer.byteLength(e.name.slice(cut + 1)) <= 100) {
      h.write(e.name.slice(cut + 1), 0, 100, 'utf8');
      h.write(e.name.slice(0, cut), 345, 155, 'utf8');
    } else name.copy(h, 0, 0, 100);
  } else name.copy(h, 0);
  h.write(octal(e.mode ?? (e.type === '5' ? 0o755 : 0o644), 8), 100, 'latin1');
  h.write(octal(0, 8), 108, 'latin1');
  h.write(octal(0, 8), 116, 'latin1');
  h.write(octal(size, 12), 124, 'latin1');
  h.write(octal(1_700_000_000, 12), 136, 'latin1');
  h.write(e.type ?? '0', 156, 'latin1');
  if (e.linkname) Buffer.from(e.linkname, 'utf8').copy(h, 157, 0, 100);
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  fixChecksum(h);
  return h;
}

export function buildTar(entries: TarEntry[]): BuiltTar {
  const parts: Buffer[] = [];
  const headers: number[] = [];
  let off = 0;
  for (const e of entries) {
    const data = e.type === undefined || e.type === '0' ? (e.data ?? Buffer.alloc(0)) : Buffer.alloc(0);
    headers.push(off);
    parts.push(tarHeader(e, data.length));
    const padded = Math.ceil(data.length / 512) * 512;
    parts.push(data, Buffer.alloc(padded - data.length));
    off += 512 + padded;
  }
  parts.push(Buffer.alloc(1024));
  return { bytes: Buffer.concat(parts), headers };
}

/** Header fields a mutation rewrites: [offset, width]. */
export const HEADER_FIELDS = { name: [0, 100], mode: [100, 8], size: [124, 12], mtime: [136, 12], checksum: [148, 8], typeflag: [156, 1], linkname: [157, 100], magic: [257, 8], prefix: [345, 155] } as const;
export type HeaderField = keyof typeof HEADER_FIELDS;

export type ByteMutation =
  | { kind: 'none' }
  | { kind: 'truncate'; at: number }
  | { kind: 'field'; entry: number; field: HeaderField; value: string; fixSum: boolean }
  | { kind: 'flip'; at: number; xor: number; count: number }
  | { kind: 'zero-block'; at: number }
  | { kind: 'gzip-flip'; at: number; xor: number }
  | { kind: 'gzip-truncate'; at: number };

/** Applies one byte-level mutation; gzip mutations gzip first (others stay plain unless `gzip`). */
export function mutateTar(tar: BuiltTar, m: ByteMutation, gzip: boolean): Buffer {
  let bytes = Buffer.from(tar.bytes);
  switch (m.kind) {
    case 'none':
      break;
    case 'truncate':
      bytes = bytes.subarray(0, m.at % (bytes.length + 1));
      break;
    case 'field': {
      const off = tar.headers[m.entry % Math.max(1, tar.headers.length)] ?? 0;
      const [start, width] = HEADER_FIELDS[m.field];
      const header = bytes.subarray(off, off + 512);
      header.fill(0, start, start + width);
      Buffer.from(m.value, 'latin1').copy(header, start, 0, width);
      if (m.fixSum && m.field !== 'checksum') fixChecksum(header);
      break;
    }
    case 'flip':
      for (let i = 0; i < m.count; i++) {
        const at = (m.at + i * 7919) % bytes.length;
        bytes[at] = bytes[at]! ^ (m.xor || 1);
      }
      break;
    case 'zero-block': {
      const at = (m.at % Math.max(1, Math.floor(bytes.length / 512))) * 512;
      bytes.fill(0, at, at + 512);
      break;
    }
    case 'gzip-flip': {
      const gz = gzipSync(bytes);
      const at = 10 + (m.at % Math.max(1, gz.length - 10));
      gz[at] = gz[at]! ^ (m.xor || 1);
      return gz;
    }
    case 'gzip-truncate': {
      const gz = gzipSync(bytes);
      return gz.subarray(0, m.at % gz.length);
    }
  }
  return gzip ? gzipSync(bytes) : bytes;
}

/** Values a rewritten header field takes: huge and negative sizes, odd typeflags, escaping names. */
export const FIELD_VALUES = [
  '77777777777', '99999999999', '-1', '', '\x80\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00', '0000000001 ', 'zzzzzzz', ' ',
  '0', '1', '2', '3', '4', '5', '6', '7', 'g', 'x', 'L', 'K', 'S', '\0',
  '../../outside', '/etc/passwd', '/abs/file', 'blobs/sha256/../../../escape', '..', '.', 'manifest.json', 'index.json', 'a\0b', 'é/ü',
  'ustar  \0', 'ustar\x0000', 'xxxxxx',
];

export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`HANG: ${what} did not settle within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** A thrown error a user may be shown: an Error with a one-line message, not a programming error. */
export function assertCleanError(e: unknown, what: string): void {
  assert.ok(e instanceof Error, `${what}: threw a non-Error ${String(e)}`);
  assert.ok(!(e instanceof TypeError) && !(e instanceof RangeError) && !(e instanceof globalThis.ReferenceError) && !(e instanceof SyntaxError), `${what}: a programming error escaped: ${e.stack}`);
  assert.ok(e.message.trim().length > 0, `${what}: empty message`);
  assert.ok(!e.message.startsWith('HANG'), `${what}: ${e.message}`);
  assert.ok(!e.message.includes('\n'), `${what}: message of several lines: ${JSON.stringify(e.message)}`);
}

