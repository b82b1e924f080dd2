// Sends a blob file (or a byte range of it) as the response body through two reused buffers per
// pull: read one while the other is on the socket. A ReadStream allocates a fresh buffer per
// read, and that allocation plus its garbage collection cost more CPU than the copies themselves
// (measured in bench/registry.ts; docs/performance.md).
//
// The buffers' size follows the number of pulls in progress, so that together they stay within
// SEND_BUDGET: 1 MiB each up to 32 concurrent pulls (a single pull runs at full speed), halved as
// the count doubles, down to 64 KiB (128 KiB at 200 pulls: 50 MiB in all, where a fixed 2 × 1 MiB
// per pull held 400 MiB). A pull checks the size before each read and swaps a buffer that is too
// big for a smaller one once the socket has taken its content (never for a bigger one). Idle
// buffers are kept for the next pulls (up to IDLE_MAX bytes), so a busy registry does not malloc
// and free a buffer per request.
import { open } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { Readable } from 'node:stream';

const MAX_BUFFER = 1 << 20;
const MIN_BUFFER = 64 << 10;
/** Bytes of send buffers all pulls may hold together (two each), until MIN_BUFFER is reached. */
const SEND_BUDGET = 64 << 20;
/** Bytes of idle buffers kept for reuse. */
const IDLE_MAX = 16 << 20;

let activePulls = 0;
const idle = new Map<number, Buffer[]>();
let idleBytes = 0;

/** The buffer size for each of a pull's two buffers when `pulls` are in progress. */
export function sendBufferSize(pulls: number): number {
  let size = MAX_BUFFER;
  while (size > MIN_BUFFER && 2 * pulls * size > SEND_BUDGET) size >>= 1;
  return size;
}

function takeBuffer(size: number): Buffer {
  const b = idle.get(size)?.pop();
  if (b) {
    idleBytes -= size;
    return b;
  }
  return Buffer.allocUnsafeSlow(size);
}

function giveBuffer(b: Buffer): void {
  if (idleBytes + b.length > IDLE_MAX) return; // left to the garbage collector
  let list = idle.get(b.length);
  if (!list) idle.set(b.length, (list = []));
  list.push(b);
  idleBytes += b.length;
}

/** Pulls in progress and bytes of idle send buffers (for tests and diagnostics). */
export function sendBufferStats(): { activePulls: number; idleBytes: number } {
  return { activePulls, idleBytes };
}

interface Slot {
  buf: Buffer | undefined;
  /** The write of this slot's previous content; undefined once it settled (or before any). */
  writing: Promise<void> | undefined;
}

/** Writes bytes [start, end] (inclusive) of `path` to `res` and ends it. */
export async function sendFileRange(res: ServerResponse, path: string, start: number, end: number): Promise<void> {
  const fh = await open(path, 'r');
  activePulls++;
  // A client that goes away may leave a write callback uncalled: stop on 'close' instead.
  let onClose!: () => void;
  const closed = new Promise<never>((_, reject) => {
    onClose = () => reject(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    res.once('close', onClose);
  });
  closed.catch(() => undefined);
  const slots: [Slot, Slot] = [
    { buf: undefined, writing: undefined },
    { buf: undefined, writing: undefined },
  ];
  // A small blob or range needs no buffer bigger than itself.
  let cap = MIN_BUFFER;
  while (cap < MAX_BUFFER && cap < end - start + 1) cap <<= 1;
  try {
    let pos = start;
    for (let i = 0; pos <= end; i ^= 1) {
      const slot = slots[i]!;
      // The buffer is free again once the socket has taken its previous content.
      if (slot.writing) await Promise.race([slot.writing, closed]);
      const want = Math.min(sendBufferSize(activePulls), cap);
      // Only ever smaller: growing buffers as other pulls end would allocate anew while the small
      // ones wait in the idle list or for the garbage collector (measured: +20 MB RSS at the end
      // of a load run, as 200 pulls drained).
      if (slot.buf && slot.buf.length > want) {
        giveBuffer(slot.buf);
        slot.buf = undefined;
      }
      const buf = (slot.buf ??= takeBuffer(want));
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, end - pos + 1), pos);
      if (bytesRead === 0) throw new Error(`${path} ended at byte ${pos}, before ${end + 1}`);
      pos += bytesRead;
      const w = new Promise<void>((resolve, reject) => res.write(buf.subarray(0, bytesRead), (err) => (err ? reject(err) : resolve())));
      slot.writing = w;
      w.then(
        () => {
          if (slot.writing === w) slot.writing = undefined;
        },
        () => undefined,
      );
    }
    await Promise.race([Promise.all(slots.map((s) => s.writing)), closed]);
    res.end();
  } catch (e) {
    res.destroy();
    throw e;
  } finally {
    activePulls--;
    res.off('close', onClose);
    // A buffer whose write has not settled may still be read by the socket: not reused.
    for (const s of slots) if (s.buf && !s.writing) giveBuffer(s.buf);
    await fh.close();
  }
}

/** Bytes gathered (corked) before one writev to the socket: few syscalls per blob. */
const STREAM_BATCH = 1 << 20;

/**
 * Writes a blob stream from a driver that has no local file (S3) to `res` and ends it: chunks are
 * corked into ~1 MiB writev batches instead of one write per socket read (Koa's pipe), with
 * backpressure. A source error destroys the response (the client sees a cut body, never a short
 * one that looks complete: Content-Length was sent).
 */
export async function sendStream(res: ServerResponse, source: Readable): Promise<void> {
  let onClose!: () => void;
  const closed = new Promise<never>((_, reject) => {
    onClose = () => reject(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    res.once('close', onClose);
  });
  closed.catch(() => undefined);
  let corked = 0;
  try {
    res.cork();
    for await (const chunk of source) {
      const ok = res.write(chunk as Buffer);
      corked += (chunk as Buffer).length;
      if (corked >= STREAM_BATCH) {
        res.uncork();
        corked = 0;
        res.cork();
      }
      if (!ok) {
        res.uncork();
        corked = 0;
        await Promise.race([once(res, 'drain'), closed]);
        res.cork();
      }
    }
    res.uncork();
    res.end();
  } catch (e) {
    source.destroy();
    res.destroy();
    throw e;
  } finally {
    res.off('close', onClose);
  }
}
