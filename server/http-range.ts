// Parsing of the Range request header (RFC 9110 §14) and the upload Content-Range header
// (distribution-spec/spec.md#pushing-a-blob-in-chunks).
import { RegistryError } from '../oci/errors.js';
import type { ChunkRange } from '../storage/uploads.js';

/**
 * One byte range of a `size`-byte blob, or undefined for the whole blob (no header, several
 * ranges, or a unit other than bytes: all allowed to be ignored). 'unsatisfiable' → 416.
 */
export function parseRangeHeader(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return undefined;
  const [, a, b] = m as unknown as [string, string, string];
  if (a === '' && b === '') return undefined;
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (start >= size || (b !== '' && Number(b) < start)) return 'unsatisfiable';
  return { start, end };
}

/** Content-Range of a chunk: `<start>-<end>`, inclusive (Docker clients also send `bytes <start>-<end>/<total>`). */
export function parseContentRange(header: string | undefined): ChunkRange | undefined {
  if (header === undefined || header === '') return undefined;
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (!m) throw new RegistryError('BLOB_UPLOAD_INVALID', `malformed Content-Range ${JSON.stringify(header.slice(0, 100))}: expected <start>-<end>`);
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) throw new RegistryError('RANGE_INVALID', `Content-Range ${header} ends before it starts`);
  return { start, end };
}
