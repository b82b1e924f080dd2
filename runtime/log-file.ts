// A container's output log in docker's json-file format (one JSON object per line with log,
// stream, time), written by the monitor of a detached container and by a foreground `run`, read
// by `logs`.
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

export const LOG_FILE = 'container-json.log';

/** A line longer than this is logged in pieces, as docker's json-file does (16 KiB). */
const MAX_LINE = 16 << 10;

/** The wall clock in nanoseconds: Date's milliseconds once, then the monotonic clock's progress. */
const EPOCH_NS = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

/** docker's json-file `time`: Go's RFC 3339 with nanoseconds, trailing zeros trimmed (time.RFC3339Nano). */
export function logTime(ns: bigint = EPOCH_NS + process.hrtime.bigint()): string {
  const seconds = new Date(Number(ns / 1_000_000_000n) * 1000).toISOString().slice(0, 19);
  const fraction = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${seconds}${fraction ? `.${fraction}` : ''}Z`;
}

export function openLog(containerDir: string): WriteStream {
  return createWriteStream(join(containerDir, LOG_FILE), { flags: 'a' });
}

export function closeLog(log: WriteStream): Promise<void> {
  return new Promise((resolve) => log.end(resolve));
}

/**
 * Logs `stream` line by line as `name`; with `mirror` (a foreground run's terminal) its bytes
 * also go there unchanged, at the mirror's pace. When the mirror is gone (EPIPE: `berth run … |
 * head`), the stream is closed, so the container meets a closed pipe as it would have without
 * berth in between. Resolves when the stream ends.
 */
export function logStream(stream: Readable, name: 'stdout' | 'stderr', log: WriteStream, mirror?: NodeJS.WritableStream): Promise<void> {
  return new Promise<void>((resolve) => {
    const decoder = new StringDecoder('utf8');
    let partial = '';
    const entry = (text: string) => log.write(JSON.stringify({ log: text, stream: name, time: logTime() }) + '\n');
    let mirroring = mirror !== undefined;
    const onMirrorError = () => {
      mirroring = false;
      stream.destroy();
    };
    mirror?.on('error', onMirrorError);
    stream.on('data', (d: Buffer) => {
      if (mirroring && !mirror!.write(d)) {
        stream.pause();
        mirror!.once('drain', () => stream.resume());
      }
      const lines = (partial + decoder.write(d)).split('\n');
      partial = lines.pop()!;
      for (const l of lines) entry(l + '\n');
      // Output with no newline (a progress bar, binary data) is not held in memory indefinitely.
      while (partial.length >= MAX_LINE) {
        entry(partial.slice(0, MAX_LINE));
        partial = partial.slice(MAX_LINE);
      }
    });
    stream.on('error', () => undefined);
    stream.on('close', () => {
      partial += decoder.end();
      if (partial) entry(partial);
      mirror?.off('error', onMirrorError);
      resolve();
    });
  });
}
