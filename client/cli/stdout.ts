// What the listing and inspect verbs print, written straight to descriptor 1. process.stdout is a
// stream object built on first use (node:stream, and net + tty for a terminal or a pipe): ~1.5-3 ms
// of a verb that otherwise starts in ~25 (docs/performance.md, "Start-up"). Writes through
// process.stdout to files, pipes and terminals are synchronous on Linux as well, so where both are
// used the output keeps its order.
import { writeSync } from 'node:fs';

let readerGone = false;

/**
 * Writes all of `text` to stdout. A reader that went away (`berth images | head -1`) ends the
 * output quietly, as SIGPIPE ends docker's, instead of an EPIPE stack trace; a descriptor a parent
 * left non-blocking is waited for.
 */
export function writeStdout(text: string): void {
  if (readerGone || text.length === 0) return;
  const bytes = Buffer.from(text);
  let done = 0;
  while (done < bytes.length) {
    try {
      done += writeSync(1, bytes, done);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EPIPE') {
        readerGone = true;
        return;
      }
      if (code !== 'EAGAIN') throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}
