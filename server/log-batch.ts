// berth serve's log lines (pino's and the access log's) gathered as bytes into one write per
// 64 KiB or per 100 ms. The access log encodes its line straight into the batch's buffer
// (server/access-log.ts, encodeAccessLine): a line built as a string was a rope of ~20 pieces that
// waited in the batch through the young generation's scavenges and was flattened and encoded
// again when the batch was joined, ~1.2 µs a line under a manifest GET load against ~0.3 µs to
// format it (docs/performance.md, "Metrics and access log overhead"). Bytes in the buffer are
// outside the JS heap: nothing to scavenge, nothing to join.

/**
 * What a batch writes into: pino's sonic-boom destination in buffer mode (`contentMode: 'buffer'`)
 * and `sync`: the bytes are written when write() returns (sonic-boom retries EAGAIN and short
 * writes in place), so the batch's one buffer is filled again, its pages already mapped (a new
 * buffer per batch cost its page faults). When a write fails, the sink keeps that batch to write
 * later: its owner calls sinkFailed() and the batch moves to a new buffer.
 */
export interface LineSink {
  write(b: Buffer): boolean;
  flushSync(): void;
}

/** Where a line's bytes go: `reserve(n)`, then encode into `buf` from `used`, then `commit(end)`. */
export interface LineBytes {
  readonly buf: Buffer;
  readonly used: number;
  /** Room for `n` more bytes after `used` (the batch is written first when short of it); false when no batch holds `n`. */
  reserve(n: number): boolean;
  commit(end: number): void;
  /** A whole line as a string (newline included). */
  write(line: string): boolean;
}

const BATCH_BYTES = 64 * 1024;
// Room for the line that takes a batch past BATCH_BYTES.
const CAPACITY = BATCH_BYTES + 16 * 1024;
const FLUSH_MS = 100;

export class LineBatch implements LineBytes {
  buf = Buffer.allocUnsafeSlow(CAPACITY);
  used = 0;
  private stopped = false;
  /** A write failed: the sink's flushSync (sonic-boom's retries a failing write forever) is not called again. */
  private failing = false;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly sink: LineSink) {
    this.timer = setInterval(() => this.drain(), FLUSH_MS);
    this.timer.unref();
  }

  reserve(n: number): boolean {
    if (n > CAPACITY - this.used) {
      this.drain();
      if (n > CAPACITY) return false;
    }
    return true;
  }

  commit(end: number): void {
    this.used = end;
    // After stop (the server closed): each line goes to the sink as it comes, nothing waits here.
    if (end >= BATCH_BYTES || this.stopped) this.drain();
  }

  /** A whole line (newline included): pino calls this as its stream. */
  write(line: string): boolean {
    // Up to 3 UTF-8 bytes per UTF-16 unit.
    if (!this.reserve(line.length * 3)) {
      this.sink.write(Buffer.from(line));
      return true;
    }
    this.commit(this.used + this.buf.write(line, this.used));
    return true;
  }

  /** Hands what is gathered to the sink (a synchronous sink writes it now). */
  drain(): void {
    if (this.used === 0) return;
    const batch = this.buf.subarray(0, this.used);
    this.used = 0;
    this.sink.write(batch);
  }

  /** The sink kept the last batch (its write failed): later lines go to a new buffer. */
  sinkFailed(): void {
    this.failing = true;
    const pending = this.buf.subarray(0, this.used);
    this.buf = Buffer.allocUnsafeSlow(CAPACITY);
    this.buf.set(pending);
  }

  /** Everything gathered is written before this returns (close, exit), or tried once when the sink has failed. */
  flushSync(): void {
    this.drain();
    // After a failed write, drain's one attempt is all: a full disk must not hold up the exit.
    if (this.failing) return;
    try {
      this.sink.flushSync();
    } catch {
      // a write still in flight: it ends on its own
    }
  }

  /** Writes what is gathered and stops gathering: later lines go to the sink as they come. */
  stop(): void {
    clearInterval(this.timer);
    this.flushSync();
    this.stopped = true;
  }
}
