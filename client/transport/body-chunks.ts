// Iterates a response body chunk by chunk as the socket delivers them. A Readable's own async
// iterator calls read(), which concatenates buffered chunks (a copy of every byte, measured at
// ~10% of a pull's CPU); 'data' events hand the socket's buffers over as they are.
import type { Readable } from 'node:stream';

/** Chunks buffered before the body is paused (backpressure towards the socket). */
const HIGH = 64;
const LOW = 16;

export async function* bodyChunks(body: Readable): AsyncGenerator<Buffer> {
  const queue: Buffer[] = [];
  let head = 0;
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onData = (c: Buffer) => {
    queue.push(c);
    if (queue.length - head >= HIGH) body.pause();
    notify();
  };
  const onEnd = () => {
    ended = true;
    notify();
  };
  const onError = (e: unknown) => {
    failure = e;
    notify();
  };
  const onClose = () => {
    if (!ended && failure === undefined) failure = new Error('connection closed before the body ended');
    notify();
  };
  // A body that failed or closed before this reader came (its events are past).
  if (body.errored) failure = body.errored;
  else if (body.destroyed && !body.readableEnded) failure = new Error('connection closed before the body ended');
  body.on('data', onData);
  body.once('end', onEnd);
  body.once('error', onError);
  body.once('close', onClose);
  try {
    for (;;) {
      if (head < queue.length) {
        const c = queue[head]!;
        queue[head++] = undefined as unknown as Buffer;
        if (head > 1024) {
          queue.splice(0, head);
          head = 0;
        }
        if (queue.length - head <= LOW && body.isPaused()) body.resume();
        yield c;
        continue;
      }
      if (failure !== undefined) throw failure;
      if (ended) return;
      await new Promise<void>((r) => (wake = r));
    }
  } finally {
    body.off('data', onData);
    body.off('end', onEnd);
    body.off('error', onError);
    body.off('close', onClose);
  }
}
