// Lingering close (nginx's lingering_close, Apache's lingering close) for answers sent before the
// request body was read to its end: a 413 for an oversized manifest, a 404 for an unknown upload,
// a 401 before the body of a PUT, an OAuth error of /token.
//
// Closing such a connection at once (Node's default once a `Connection: close` answer is written)
// leaves unread body bytes in the kernel, which then resets the connection (RST); a client still
// sending, or one that reads only after sending, loses the answer it was sent and sees a dropped
// connection. Instead the answer goes out with `Connection: close`, our side is half-closed (FIN)
// after it, and the rest of the body is read and discarded (never buffered) until it ends, for
// at most LINGER_MS and LINGER_BYTES; only past a bound is the socket destroyed.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Longest time a connection drains a refused body. nginx keeps reading for up to 30 s
 * (lingering_time) and Apache 2 s; 5 s lets a client on a slow link, or one that reads only after
 * sending, finish the refused rest of a typical request (an oversized manifest, a token form, the
 * current chunk of an upload) while a client that never stops holds a socket only briefly.
 */
export const LINGER_MS = 5_000;

/**
 * Most body bytes discarded per refused request: 16 MiB covers a manifest of four times the
 * default 4 MiB cap and the 4 MiB write batches of chunked uploads, and is < 0.2 s on a 1 Gb/s
 * link; a refused multi-gigabyte blob body is cut off instead of read to its end.
 */
export const LINGER_BYTES = 16 << 20;

export interface LingerBounds {
  ms: number;
  bytes: number;
}

type ClosableSocket = Socket & { destroySoon?: () => void };

/** Sockets whose last answer is out: requests pipelined after it are not run (RFC 9112 §9.6). */
const lingering = new WeakSet<Socket>();

/** True once `socket` answered with `Connection: close` and is only draining a refused body. */
export function isLingering(socket: Socket | null | undefined): boolean {
  return socket != null && lingering.has(socket);
}

/**
 * Called just before `res` is written. When the body of `req` has not been read to its end, the
 * answer says `Connection: close`, the rest of the body is discarded from now on, and once the
 * answer is out our side is half-closed; the socket is closed when the body has ended, or
 * destroyed when it exceeds `bounds` (or the client goes away). Returns true when lingering.
 * Readers of the body must not destroy the request on an early error (request-body.ts).
 */
export function closeAfterResponse(req: IncomingMessage, res: ServerResponse, bounds: LingerBounds = { ms: LINGER_MS, bytes: LINGER_BYTES }): boolean {
  const socket = (req.socket ?? res.socket) as ClosableSocket | null;
  // An answer already under way (headers sent) keeps Node's handling: it can no longer say close.
  if (req.complete || res.headersSent || !socket || socket.destroyed || lingering.has(socket)) return false;
  lingering.add(socket);
  res.setHeader('Connection', 'close');

  let discarded = 0;
  let bodyDone = false;
  let answered = false;
  const cutOff = () => socket.destroy();
  const timer = setTimeout(cutOff, bounds.ms);
  timer.unref();
  const onData = (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > bounds.bytes) cutOff();
  };
  const nativeDestroySoon = socket.destroySoon;
  // Node's server calls socket.destroySoon() once the answer marked `Connection: close` is written:
  // end() then destroy(). Here the destroy waits for the end of the body (or a bound).
  const close = () => {
    socket.destroySoon = nativeDestroySoon;
    if (nativeDestroySoon) nativeDestroySoon.call(socket);
    else socket.end();
  };
  socket.destroySoon = () => {
    answered = true;
    socket.end(); // FIN after the answer: the client reads it to the end and knows nothing follows
    if (bodyDone) close();
  };
  const onEnd = () => {
    bodyDone = true;
    if (answered) close();
  };
  req.on('data', onData);
  req.once('end', onEnd);
  req.on('error', () => undefined); // an abort while draining is the expected end of some clients
  socket.once('close', () => {
    clearTimeout(timer);
    req.off('data', onData);
    req.off('end', onEnd);
  });
  req.resume();
  return true;
}
