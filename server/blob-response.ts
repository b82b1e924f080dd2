// Sends a blob file (or a byte range of it) as the response body through two reused 1 MiB
// buffers: read one while the other is on the socket. A ReadStream allocates a fresh buffer per
// read, and that allocation plus its garbage collection cost more CPU than the copies themselves
// (measured in bench/registry.ts; docs/performance.md). Memory per pull stays at 2 MiB.
import { open } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';

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
