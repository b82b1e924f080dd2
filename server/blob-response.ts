// Sends a blob file (or a byte range of it) as the response body through two reused 1 MiB
// buffers: read one while the other is on the socket. A ReadStream allocates a fresh buffer per
// read, and that allocation plus its garbage collection cost more CPU than the copies themselves
// (measured in bench/registry.ts; docs/performance.md). Memory per pull stays at 2 MiB.
import { open } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { Readable } from 'node:stream';

const BUFFER = 1 << 20;

/** Writes bytes [start, end] (inclusive) of `path` to `res` and ends it. */
export async function sendFileRange(res: ServerResponse, path: string, start: number, end: number): Promise<void> {
  const fh = await open(path, 'r');
  // A client that goes away may leave a write callback uncalled: stop on 'close' instead.
  let onClose!: () => void;
  const closed = new Promise<never>((_, reject) => {
    onClose = () => reject(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    res.once('close', onClose);
  });
  closed.catch(() => undefined);
  try {
    const buffers = [Buffer.allocUnsafe(BUFFER), Buffer.allocUnsafe(BUFFER)] as const;
    const writing: Array<Promise<void> | undefined> = [undefined, undefined];
    let pos = start;
    for (let i = 0; pos <= end; i ^= 1) {
      // The buffer is free again once the socket has taken its previous content.
      if (writing[i]) await Promise.race([writing[i], closed]);
      const buf = buffers[i]!;
      const { bytesRead } = await fh.read(buf, 0, Math.min(BUFFER, end - pos + 1), pos);
      if (bytesRead === 0) throw new Error(`${path} ended at byte ${pos}, before ${end + 1}`);
      pos += bytesRead;
      writing[i] = new Promise<void>((resolve, reject) => res.write(buf.subarray(0, bytesRead), (err) => (err ? reject(err) : resolve())));
      writing[i]!.catch(() => undefined);
    }
    await Promise.race([Promise.all(writing), closed]);
    res.end();
  } catch (e) {
    res.destroy();
    throw e;
  } finally {
    res.off('close', onClose);
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
