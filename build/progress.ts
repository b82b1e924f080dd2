// What a build prints. plain: docker's classic builder lines (`Step 3/7 : RUN …`, ` ---> Using
// cache`, the RUN output, ` ---> 1a2b3c4d5e6f`). tty: a compact live view, one line per step
// with its time, and the last lines of the running step's output under it, erased when the step
// ends. quiet (-q): nothing but the image ID at the end; a failing RUN's output is shown then.
import { Writable } from 'node:stream';

export interface BuildProgress {
  step(n: number, total: number, text: string): void;
  /** A line about the current step (` ---> Using cache`, ` ---> <id>`). */
  note(line: string): void;
  /** Where RUN's output goes as it runs. */
  readonly output: Writable;
  /** The step failed: what the user must see of it. */
  failed(): void;
  /** The build ended (success or not): stop timers, restore the terminal. */
  end(): void;
}

export function plainProgress(out: NodeJS.WritableStream): BuildProgress {
  return {
    step: (n, total, text) => void out.write(`Step ${n}/${total} : ${text}\n`),
    note: (line) => void out.write(`${line}\n`),
    output: new Writable({
      write(chunk: Buffer, _e, cb) {
        out.write(chunk);
        cb();
      },
    }),
    failed: () => undefined,
    end: () => undefined,
  };
}

/** Keeps the tail of the current step's output, shown when the step fails. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly max: number) {}
  push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
    while (this.size > this.max && this.chunks.length > 1) this.size -= this.chunks.shift()!.length;
  }
  clear(): void {
    this.chunks = [];
    this.size = 0;
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

export function quietProgress(err: NodeJS.WritableStream): BuildProgress {
  const tail = new Tail(256 * 1024);
  return {
    step: () => tail.clear(),
    note: () => undefined,
    output: new Writable({
      write(chunk: Buffer, _e, cb) {
        tail.push(chunk);
        cb();
      },
    }),
    failed: () => void err.write(tail.text()),
    end: () => undefined,
  };
}

const SHOWN_LINES = 6;

export function ttyProgress(out: NodeJS.WriteStream): BuildProgress {
  const tail = new Tail(64 * 1024);
  let current = '';
  let started = 0;
  let drawn = 0; // lines of the live area now on screen
  let timer: NodeJS.Timeout | undefined;
  let notes: string[] = [];
  const width = () => Math.max(20, (out.columns || 80) - 1);
  const clip = (s: string) => (s.length > width() ? `${s.slice(0, width() - 1)}…` : s);
  const erase = () => {
    if (drawn > 0) out.write(`\x1b[${drawn}F\x1b[J`);
    drawn = 0;
  };
  const draw = () => {
    erase();
    if (!current) return;
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    const lines = [`\x1b[1m=> ${clip(current)}\x1b[0m ${secs}s`];
    const output = tail.text().split('\n').filter((l) => l !== '').slice(-SHOWN_LINES);
    for (const l of output) lines.push(`\x1b[2m   ${clip(l.replace(/\r/g, ''))}\x1b[0m`);
    out.write(`${lines.join('\n')}\n`);
    drawn = lines.length;
  };
  const finishStep = () => {
    if (!current) return;
    erase();
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    const cached = notes.includes(' ---> Using cache');
    out.write(`=> ${clip(current)} ${cached ? 'CACHED' : `${secs}s`}\n`);
    current = '';
  };
  return {
    step(n, total, text) {
      finishStep();
      current = `[${n}/${total}] ${text}`;
      started = Date.now();
      notes = [];
      tail.clear();
      timer ??= setInterval(draw, 100);
      timer.unref();
      draw();
    },
    note(line) {
      notes.push(line);
    },
    output: new Writable({
      write(chunk: Buffer, _e, cb) {
        tail.push(chunk);
        cb();
      },
    }),
    failed() {
      erase();
      if (current) out.write(`=> ${clip(current)} ERROR\n`);
      current = '';
      out.write(tail.text());
    },
    end() {
      finishStep();
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
