// docker-like progress output: one row per layer (`a1b2c3d4e5f6: Downloading`); live bars
// redrawn in place on a TTY, plain lines (one per status change) otherwise.
import type { Writable } from 'node:stream';

function human(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v < 10 && i > 0 ? v.toFixed(2) : v < 100 && i > 0 ? v.toFixed(1) : Math.round(v)}${units[i]}`;
}

export { human as humanSize };

/** The 12 hex digits docker shows for a layer (`1ad94f5d392b: Pushed`). */
export function shortDigest(d: string): string {
  return d.slice(d.indexOf(':') + 1, d.indexOf(':') + 13);
}

export class Progress {
  private readonly out: Writable & { isTTY?: boolean; columns?: number };
  private readonly tty: boolean;
  private readonly rows: string[] = [];
  private readonly text = new Map<string, string>();
  private readonly lastDraw = new Map<string, number>();
  readonly quiet: boolean;

  constructor(out: Writable & { isTTY?: boolean } = process.stdout, opts: { quiet?: boolean } = {}) {
    this.out = out;
    this.tty = Boolean(out.isTTY) && process.env.TERM !== 'dumb';
    this.quiet = opts.quiet ?? false;
  }

  /** A line that is not a layer row (`Digest: …`). */
  print(line: string): void {
    if (!this.quiet) this.out.write(line + '\n');
  }

  /** Sets a row's status; in plain mode a repeated status is not printed again. */
  status(id: string, status: string): void {
    if (this.quiet) return;
    const line = `${id}: ${status}`;
    if (!this.tty) {
      if (this.text.get(id) !== status) this.out.write(line + '\n');
      this.text.set(id, status);
      return;
    }
    this.text.set(id, status);
    this.draw(id, line);
  }

  /** Byte progress: a bar on a TTY (throttled), the bare status once otherwise. */
  bytes(id: string, status: string, done: number, total: number): void {
    if (this.quiet) return;
    if (!this.tty) {
      this.status(id, status);
      return;
    }
    const now = Date.now();
    if (done < total && now - (this.lastDraw.get(id) ?? 0) < 100) return;
    this.lastDraw.set(id, now);
    const width = 50;
    const filled = total > 0 ? Math.min(width, Math.floor((done / total) * width)) : 0;
    const bar = `[${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? '>' : ''}${' '.repeat(width - filled)}]`;
    this.draw(id, `${id}: ${status.padEnd(12)} ${bar} ${human(done)}/${human(total)}`);
  }

  private draw(id: string, line: string): void {
    let row = this.rows.indexOf(id);
    if (row < 0) {
      this.rows.push(id);
      this.out.write(line + '\n');
      return;
    }
    const up = this.rows.length - row;
    const cols = this.out.columns || 120;
    this.out.write(`\x1b[${up}A\r\x1b[2K${line.slice(0, cols - 1)}\x1b[${up}B\r`);
  }
}
