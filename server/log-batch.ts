// berth serve's log lines (pino's and the access log's) gathered into one write per 16 KiB or per
// 100 ms before they reach the destination. sonic-boom measures its pending buffer with
// Buffer.byteLength on every write, which flattens and scans that buffer each time: with a 4 KiB
// minLength, ~3-4 µs per access-log line, as much as the rest of the log line's cost (bench
// measurement in docs/performance.md). One join per batch costs a fraction of that.

/** What a batch writes into: pino's sonic-boom destination. */
export interface LineSink {
  write(s: string): boolean;
  flush(cb?: (err?: Error | null) => void): void;
  flushSync(): void;
}

const BATCH_CHARS = 16 * 1024;
const FLUSH_MS = 100;

export class LineBatch {
  private parts: string[] = [];
  private chars = 0;
  private stopped = false;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly sink: LineSink) {
    this.timer = setInterval(() => {
      if (this.chars === 0) return;
      this.drain();
      sink.flush();
    }, FLUSH_MS);
    this.timer.unref();
  }

  /** A whole line (newline included): pino calls this as its stream. */
  write(line: string): boolean {
    // After stop (the server closed): each line goes straight to the sink, nothing waits here.
    if (this.stopped) return this.sink.write(line);
    this.parts.push(line);
    this.chars += line.length;
    if (this.chars >= BATCH_CHARS) this.drain();
    return true;
  }

  /** Hands what is gathered to the sink (a synchronous sink writes it now). */
  drain(): void {
    if (this.chars === 0) return;
    const text = this.parts.length === 1 ? this.parts[0]! : this.parts.join('');
    this.parts = [];
    this.chars = 0;
    this.sink.write(text);
  }

  /** Everything gathered is written before this returns (close, exit). */
  flushSync(): void {
    this.drain();
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
