// What docker's archive detection recognizes (moby pkg/archive DetectCompression, then a tar
// header): the compressed kinds by their magic bytes, a plain tar by its header checksum. Used for
// a context tar on stdin and for ADD's auto-extraction of local archives. gzip (and zstd where
// this Node has it) decompress in-process; bzip2, xz (and zstd otherwise) through the system's
// tools, when installed.
import { spawn } from 'node:child_process';
import { PassThrough, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { decompressor, zstdAvailable } from '../oci/compression.js';

export type ArchiveKind = 'none' | 'tar' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

/** The kind of archive whose first bytes (512 or all there are) are `head`. */
export function archiveKind(head: Buffer): ArchiveKind {
  if (head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return 'gzip';
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return 'zstd';
  return isTarHeader(head) ? 'tar' : 'none';
}

/** A ustar/v7 header block: its checksum field matches the sum of its bytes (Go's archive/tar). */
export function isTarHeader(block: Buffer): boolean {
  if (block.length < 512) return false;
  const field = block.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/g, '').trim();
  if (!/^[0-7]+$/.test(field)) return false;
  const expected = parseInt(field, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return expected === unsigned || expected === signed;
}

export class ArchiveToolMissingError extends Error {}

const TOOLS: Record<string, string> = { bzip2: 'bzip2', xz: 'xz', zstd: 'zstd' };

/** The tar stream inside `source`, an archive of `kind`. */
export function decompressStream(kind: ArchiveKind, source: Readable): Readable {
  if (kind === 'tar' || kind === 'none') return source;
  if (kind === 'gzip') return source.pipe(createGunzip());
  if (kind === 'zstd' && zstdAvailable()) return source.pipe(decompressor('zstd'));
  const tool = TOOLS[kind]!;
  const out = new PassThrough();
  const child = spawn(tool, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.on('error', (e: NodeJS.ErrnoException) =>
    out.destroy(e.code === 'ENOENT' ? new ArchiveToolMissingError(`a ${kind} archive needs the ${tool} command, which is not installed`) : e),
  );
  child.on('close', (code) => {
    if (code !== 0 && code !== null) out.destroy(new Error(`${tool} -dc failed (${code}): ${stderr.trim()}`));
  });
  source.on('error', (e) => out.destroy(e));
  child.stdin.on('error', () => undefined); // the tool's exit is reported above
  source.pipe(child.stdin);
  child.stdout.pipe(out);
  return out;
}
