// A blob being stored from a producer that writes into the ingest's own buffers: a socket reader
// (client/transport/plain-get.ts) reads straight into a write batch, which is hashed and written
// to the temp file as it is; the batches are then reused. Against handing over a fresh buffer per
// socket read, this saves a copy and the page faults of ~300 MB of new memory per 300 MB pulled
// (docs/performance.md, client section). Memory stays at (MAX_IN_FLIGHT + 1) × BATCH.
import type { FileHandle } from 'node:fs/promises';
import type { Digester } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { FileAppender } from './durable-file.js';

const BATCH = 4 << 20;
/** A batch with less free room than this is written out: reads stay large. */
const MIN_FREE = 256 << 10;
/** Batches being written at once; a producer finding this many pauses (whenWritable). */
const MAX_IN_FLIGHT = 2;

export interface BlobIngestParts {
  fh: FileHandle;
  digester: Digester;
  /** Exact size the content must have: a byte beyond it is refused at once. */
  size?: number;
  /** Verifies, fsyncs and names the written file (BlobStore); called once the writes are done. */
  finish: (size: number) => Promise<{ digest: string; size: number }>;
  /** Closes and removes the temp file. */
  abort: () => Promise<void>;
}

export class BlobIngest {
  private current: Buffer = Buffer.allocUnsafeSlow(BATCH);
  private filled = 0;
  private readonly spare: Buffer[] = [];
  private inFlight = 0;
  private waiters: Array<() => void> = [];
  private readonly appender: FileAppender;
  private ended = false;
  /** Bytes received so far. */
  size = 0;

  constructor(private readonly parts: BlobIngestParts) {
    this.appender = new FileAppender(parts.fh, 0);
  }

  /** Free room of the current batch (at least MIN_FREE bytes) for the producer to fill. */
  reserve(): Buffer {
    return this.current.subarray(this.filled);
  }

  /** The first `n` bytes of the last `reserve()` region now hold content. */
  commit(n: number): void {
    if (this.ended) throw new Error('blob ingest already finished');
    // A failed write (a full disk) stops the producer now rather than at finish().
    if (this.appender.failed !== undefined) throw this.appender.failed;
    if (this.parts.size !== undefined && this.size + n > this.parts.size) {
      throw new RegistryError('SIZE_INVALID', `received more than the expected ${this.parts.size} bytes`);
    }
    this.parts.digester.update(this.current.subarray(this.filled, this.filled + n));
    this.filled += n;
    this.size += n;
    if (this.current.length - this.filled < MIN_FREE) this.submit();
  }

  /** Copies `chunk` in, for producers that own their buffers. */
  push(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length) {
      const room = this.reserve();
      const n = Math.min(room.length, chunk.length - at);
      room.set(chunk.subarray(at, at + n));
      this.commit(n);
      at += n;
    }
  }

  /** False while MAX_IN_FLIGHT batches are being written: the producer should pause. */
  get writable(): boolean {
    return this.inFlight < MAX_IN_FLIGHT;
  }

  whenWritable(): Promise<void> {
    return this.writable ? Promise.resolve() : new Promise((r) => this.waiters.push(r));
  }

  private submit(): void {
    const batch = this.current;
    const bytes = this.filled;
    this.current = this.spare.pop() ?? Buffer.allocUnsafeSlow(BATCH);
    this.filled = 0;
    this.inFlight++;
    const done = (): void => {
      this.inFlight--;
      const ws = this.waiters;
      this.waiters = [];
      for (const w of ws) w();
    };
    this.appender.append([batch.subarray(0, bytes)], bytes).then(
      () => {
        this.spare.push(batch);
        done();
      },
      // Kept by the appender and thrown by finish(); the batch is not reused.
      () => done(),
    );
  }

  /** Writes what is left, then verifies and stores the blob (see BlobStore.openIngest). */
  async finish(): Promise<{ digest: string; size: number }> {
    if (this.ended) throw new Error('blob ingest already finished');
    this.ended = true;
    try {
      if (this.filled > 0) this.submit();
      await this.appender.drain();
    } catch (e) {
      await this.parts.abort();
      throw e;
    }
    return this.parts.finish(this.size);
  }

  /** Drops everything written; safe to call after a failed finish. */
  async abort(): Promise<void> {
    this.ended = true;
    await this.appender.drain().catch(() => undefined);
    await this.parts.abort();
  }
}
