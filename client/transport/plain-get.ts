// HTTP/1.1 GET over plain TCP for blob bodies, reading from the socket straight into the blob
// store's write batches (storage/blob-ingest.ts) through net's `onread` buffers. undici copies
// every byte of a body into its parser's WebAssembly memory and hands it on in a new buffer per
// socket read; on a pull of 300 MB from a loopback registry that was ~0.4 s of a 1.1 s pull
// (docs/performance.md, client section). Only the simple case is handled here: a response framed
// by Content-Length. Anything else (a redirect, a challenge, a chunked body) is reported to the
// caller, which asks again through its pooled request (RegistryClient.getBlob).
import { connect, type LookupFunction, type Socket } from 'node:net';
import { connectionError, contentLengthOf, MAX_HEAD, parseResponseHead, PlainHttpError, requestHead } from './http1-head.js';

export { PlainHttpError };

/** Where a body goes: a writer whose buffers the socket reads into (BlobIngest is one). */
export interface BodySink {
  /** Free room to read into; called after every read. */
  reserve(): Buffer;
  /** The first `n` bytes of the last reserve() region hold body bytes. May throw to refuse them. */
  commit(n: number): void;
  /** Copies bytes in (those read before the body started). */
  push(chunk: Uint8Array): void;
  /** False when the sink wants the producer to pause until whenWritable() resolves. */
  readonly writable: boolean;
  whenWritable(): Promise<void>;
}

export interface PlainResponse {
  statusCode: number;
  /** Header names lower-cased; a repeated header is an array. */
  headers: Record<string, string | string[]>;
  /** The body length, or undefined when the response is not framed by Content-Length. */
  contentLength: number | undefined;
  /** Streams the body into `sink`, discarding its first `skip` bytes; resolves at its last byte. */
  pipeTo(sink: BodySink, skip?: number): Promise<void>;
  /** Closes the connection (the body is not read). */
  destroy(): void;
}

export interface PlainGetOptions {
  lookup?: LookupFunction;
  /** Milliseconds of silence before the response head times out. */
  headersTimeout: number;
  /** Milliseconds of silence in the body before it times out. */
  bodyTimeout: number;
}

const SCRATCH = 16 << 10;

/** Sends `GET url` over a new connection and resolves with the response head. */
export function plainGet(url: URL, headers: Record<string, string>, opts: PlainGetOptions): Promise<PlainResponse> {
  if (url.protocol !== 'http:') throw new PlainHttpError(`plainGet needs an http: URL, not ${url.protocol}`);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port ? Number(url.port) : 80;
  const request = requestHead('GET', url, { connection: 'close', 'accept-encoding': 'identity', ...headers });

  return new Promise((resolveHead, rejectHead) => {
    const scratch = Buffer.allocUnsafe(SCRATCH);
    let head: Buffer = Buffer.alloc(0);
    let phase: 'head' | 'paused' | 'body' | 'done' = 'head';
    let leftover: Buffer | undefined;
    let sink: BodySink | undefined;
    let remaining = 0;
    let contentLength: number | undefined;
    let skip = 0;
    let bodyDone: { resolve: () => void; reject: (e: unknown) => void } | undefined;
    let failure: unknown;

    const fail = (e: unknown): void => {
      if (failure !== undefined || phase === 'done') return;
      failure = e;
      socket.destroy();
      if (phase === 'head') rejectHead(e);
      else bodyDone?.reject(e);
    };
    const finishBody = (): void => {
      phase = 'done';
      socket.destroy();
      bodyDone?.resolve();
    };
    /** The region the next read goes to. */
    const nextBuffer = (): Buffer => {
      if (phase === 'body' && sink) return skip > 0 ? scratch.subarray(0, Math.min(skip, SCRATCH)) : sink.reserve();
      return scratch;
    };
    /** Body bytes in `bytes` (a reserve() region when `reserved`); false pauses the socket. */
    const deliver = (bytes: Buffer, reserved: boolean): boolean => {
      if (bytes.length > remaining) throw connectionError(`${url.host} sent more than the Content-Length of its response`, 'EPROTO');
      remaining -= bytes.length;
      let c = bytes;
      if (skip > 0) {
        const k = Math.min(skip, c.length);
        skip -= k;
        c = c.subarray(k);
      }
      if (c.length > 0) {
        if (reserved) sink!.commit(c.length);
        else sink!.push(c);
      }
      if (remaining === 0) {
        finishBody();
        return false;
      }
      if (!sink!.writable) {
        sink!.whenWritable().then(() => {
          if (phase === 'body' && failure === undefined) socket.resume();
        }, fail);
        return false;
      }
      return true;
    };
    const onRead = (n: number, buf: Buffer): boolean => {
      try {
        if (phase === 'head') {
          head = Buffer.concat([head, buf.subarray(0, n)]);
          const end = head.indexOf('\r\n\r\n');
          if (end < 0) {
            if (head.length > MAX_HEAD) throw new PlainHttpError(`response head larger than ${MAX_HEAD} bytes`);
            return true;
          }
          const parsed = parseHead(head.subarray(0, end).toString('latin1'));
          leftover = Buffer.from(head.subarray(end + 4));
          head = Buffer.alloc(0);
          phase = 'paused';
          contentLength = parsed.contentLength;
          remaining = contentLength ?? 0;
          socket.setTimeout(opts.bodyTimeout);
          resolveHead({ ...parsed, pipeTo, destroy: () => ((phase = 'done'), socket.destroy()) });
          return false;
        }
        if (phase !== 'body') return false;
        // A read into the sink's own room is committed in place; scratch reads are copied.
        return deliver(buf.subarray(0, n), buf !== scratch && skip === 0);
      } catch (e) {
        fail(e);
        return false;
      }
    };
    const pipeTo = (into: BodySink, skipBytes = 0): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        if (phase !== 'paused') throw new Error('body already read or connection closed');
        if (contentLength === undefined) throw new Error('body not framed by Content-Length');
        sink = into;
        skip = skipBytes;
        bodyDone = { resolve, reject };
        phase = 'body';
        if (failure !== undefined) return reject(failure);
        try {
          const early = leftover!;
          leftover = undefined;
          if (remaining === 0) return finishBody();
          // deliver() resumes the socket itself once a full sink has room again.
          if (early.length === 0 || deliver(early, false)) socket.resume();
        } catch (e) {
          fail(e);
        }
      });

    const socket: Socket = connect({
      host,
      port,
      ...(opts.lookup ? { lookup: opts.lookup } : {}),
      onread: { buffer: nextBuffer, callback: onRead },
    });
    socket.setNoDelay(true);
    socket.setTimeout(opts.headersTimeout);
    socket.on('timeout', () => fail(connectionError(`no data from ${url.host} for ${phase === 'head' ? opts.headersTimeout : opts.bodyTimeout} ms`, 'ETIMEDOUT')));
    socket.on('error', (e) => fail(e));
    socket.on('close', () => {
      if (phase !== 'done') fail(connectionError(phase === 'head' ? `${url.host} closed the connection before answering` : `connection to ${url.host} closed ${remaining} bytes before the end of the body`, 'ECONNRESET'));
    });
    socket.write(request);
  });
}

/** The head, and the body's length when Content-Length alone frames it; other framings (chunked,
 * or ending with the connection) are left to the pooled request (http-pool.ts). */
function parseHead(text: string): { statusCode: number; headers: Record<string, string | string[]>; contentLength: number | undefined } {
  const head = parseResponseHead(text);
  const contentLength = head.headers['transfer-encoding'] === undefined ? contentLengthOf(head) : undefined;
  return { statusCode: head.statusCode, headers: head.headers, contentLength };
}
