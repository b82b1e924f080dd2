// gzip on several cores, as pigz and Go's pgzip (what BuildKit compresses layers with) do: the
// input is cut into 256 KiB blocks, each deflated on its own in libuv's thread pool with the 32 KiB
// before it as preset dictionary and ended by a sync flush (byte aligned, not final), the last one
// finished; the raw deflate blocks in order between one gzip header and the CRC-32/size trailer
// make one ordinary gzip member (RFC 1951 §3.2.4, RFC 1952) any gunzip reads. Deterministic: the
// same input gives the same bytes, whatever the timing (block boundaries depend on offsets only).
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';

const deflateRaw = promisify(zlib.deflateRaw) as (buf: Buffer, opts: zlib.ZlibOptions) => Promise<Buffer>;
const crc32 = (zlib as unknown as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

const BLOCK = 256 << 10;
const WINDOW = 32 << 10;
// 10-byte header: magic, deflate, no flags, mtime 0 (no timestamp: reproducible), no extra flags, OS unix.
const HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03]);

/** Whether this Node can compute CRC-32 natively (zlib.crc32: Node ≥ 20.15 / 22.2). */
export function parallelGzipAvailable(): boolean {
  return typeof crc32 === 'function';
}

export class ParallelGzip extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly inflight: Promise<Buffer>[] = [];
  private previous: Buffer | undefined;
  private crc = 0;
  private size = 0;
  private started = false;

  constructor(
    private readonly level: number = zlib.constants.Z_DEFAULT_COMPRESSION,
    private readonly parallel: number = Math.max(2, availableParallelism()),
  ) {
    super();
    if (!crc32) throw new Error('ParallelGzip needs zlib.crc32 (Node ≥ 20.15)');
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.crc = crc32!(chunk, this.crc);
    this.size += chunk.length;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.drainBlocks(false).then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    this.drainBlocks(true)
      .then(async () => {
        while (this.inflight.length > 0) this.push(compact(await this.inflight.shift()!));
        const trailer = Buffer.alloc(8);
        trailer.writeUInt32LE(this.crc >>> 0, 0);
        trailer.writeUInt32LE(this.size % 2 ** 32, 4);
        this.push(trailer);
        cb();
      })
      .catch(cb);
  }

  private takeBytes(n: number): Buffer {
    const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingBytes = rest.length;
    return out;
  }

  /** Deflates every full block; at the end, what is left as the last block (empty if nothing is). */
  private async drainBlocks(final: boolean): Promise<void> {
    while (final ? this.pendingBytes > BLOCK : this.pendingBytes >= BLOCK) await this.submit(this.takeBytes(BLOCK), false);
    if (final) await this.submit(this.takeBytes(this.pendingBytes), true);
  }

  private async submit(block: Buffer, last: boolean): Promise<void> {
    if (!this.started) {
      this.push(HEADER);
      this.started = true;
    }
    // One output buffer per block (deflate output never exceeds its input by more than a few bytes per 16 KiB).
    const opts: zlib.ZlibOptions = { level: this.level, finishFlush: last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH, chunkSize: BLOCK + 4096 };
    if (this.previous) opts.dictionary = this.previous;
    // The next block's dictionary: the last 32 KiB of input so far (a copy: `block` may be reused).
    const tail = block.length >= WINDOW ? block.subarray(block.length - WINDOW) : Buffer.concat([this.previous ?? Buffer.alloc(0), block]).subarray(-WINDOW);
    this.previous = last ? undefined : Buffer.from(tail);
    this.inflight.push(deflateRaw(block, opts));
    if (this.inflight.length >= this.parallel) this.push(compact(await this.inflight.shift()!));
  }
}

/**
 * A block's output in a buffer of its own size: deflate writes into a block-sized buffer, and a
 * small result (a block of tar headers shrinks 20×) would otherwise keep all of it alive for as
 * long as a consumer batches chunks (the store gathers 4 MiB of them before writing).
 */
function compact(out: Buffer): Buffer {
  return out.buffer.byteLength > 2 * out.length ? Buffer.from(out) : out;
}
