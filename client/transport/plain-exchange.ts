// HTTP/1.1 requests with a body held in memory (none, a manifest, a token request) to a plain-HTTP
// registry, over node:net with keep-alive connections; the response body a Readable. What a warm
// push or a pull sends to a registry on this machine is only such requests (ping, HEADs, the
// manifest PUT; blob bodies go through plain-get.ts), and node:http costs those commands ~2.8 ms
// to load on Node 24 plus its ClientRequest/Agent machinery run cold on every first request:
// 43 against 37 ms for the same seven requests from a one-file client on Node 24, 39 against
// 35 ms on Node 20 (docs/performance.md, "Warm push without node:http"). HTTPS registries and
// streamed request bodies (blob uploads) stay on node:http (http-pool.ts).
import { connect, type LookupFunction, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { connectionError, contentLengthOf, MAX_HEAD, parseResponseHead, PlainHttpError, requestHead, type ResponseHead } from './http1-head.js';

export interface PlainPoolOptions {
  lookup?: LookupFunction;
  /** Connections per origin. */
  connections: number;
  /** Milliseconds an idle connection is kept. */
  keepAliveTimeout: number;
  /** Milliseconds without a byte before the response head. */
  headersTimeout: number;
  /** Milliseconds without a byte while the body is read. */
  bodyTimeout: number;
}

export interface PlainExchange {
  statusCode: number;
  headers: Record<string, string | string[]>;
  body: Readable;
}

/**
 * Methods a request is sent again for when a kept connection turns out closed before any answer:
 * the safe ones (RFC 9110 §9.2.1). No answer does not mean not done: the server may have acted
 * and then dropped the connection, and a second upload-completing PUT or DELETE would then fail.
 */
const SAFE = new Set(['GET', 'HEAD']);

/** One exchange's reading of its connection: the head, then the body as framed (RFC 9112 §6.3). */
interface Reader {
  onData(chunk: Buffer): void;
  /** The connection ended or closed (`error` when it failed). */
  onGone(error: Error | undefined): void;
  onTimeout(): void;
}

class Connection {
  reader: Reader | undefined;
  idleSince = 0;
  constructor(
    readonly socket: Socket,
    readonly key: string,
  ) {}
}

/** Keep-alive connections per origin, at most `connections` each. Idle ones never hold the process open. */
export class PlainPool {
  private readonly idle = new Map<string, Connection[]>();
  private readonly counts = new Map<string, number>();
  private readonly waiting = new Map<string, Array<() => void>>();
  private closed = false;

  constructor(readonly options: PlainPoolOptions) {}

  /** Sends one request; resolves at the response head, the body left to read. */
  async request(url: URL, method: string, headers: Record<string, string>, body: Buffer | undefined, headersTimeout = this.options.headersTimeout): Promise<PlainExchange> {
    if (url.protocol !== 'http:') throw new PlainHttpError(`plain exchange needs an http: URL, not ${url.protocol}`);
    const fields: Record<string, string> = { connection: 'keep-alive', ...headers };
    // A PUT, POST or PATCH without a body says so, as node:http does; a given length is the caller's.
    if (!Object.keys(fields).some((k) => k.toLowerCase() === 'content-length') && (body !== undefined || method === 'PUT' || method === 'POST' || method === 'PATCH')) {
      fields['content-length'] = String(body?.length ?? 0);
    }
    const head = Buffer.from(requestHead(method, url, fields), 'latin1');
    const bytes = body && body.length > 0 ? Buffer.concat([head, body]) : head;
    for (let attempt = 0; ; attempt++) {
      // The second attempt on a new connection: another kept one may be as dead as the first.
      const conn = await this.acquire(url, attempt > 0);
      const reused = conn.idleSince > 0;
      try {
        return await this.exchange(conn, url, method, bytes, headersTimeout);
      } catch (e) {
        // A kept connection the server closed meanwhile (its idle timeout): nothing was answered, ask again once.
        if (reused && attempt === 0 && (e as { stale?: boolean }).stale && SAFE.has(method)) continue;
        throw e;
      }
    }
  }

  /** Destroys every idle connection; busy ones end with their exchange. */
  close(): void {
    this.closed = true;
    for (const list of this.idle.values()) for (const c of list) c.socket.destroy();
    this.idle.clear();
    for (const queue of this.waiting.values()) for (const wake of queue.splice(0)) wake();
  }

  private async acquire(url: URL, fresh = false): Promise<Connection> {
    const key = url.host;
    for (;;) {
      if (this.closed) throw connectionError(`request to ${url.host} after its connection pool was closed`, 'ECONNABORTED');
      const list = fresh ? undefined : this.idle.get(key);
      const kept = list?.pop();
      if (kept) {
        kept.socket.ref();
        return kept;
      }
      const open = this.counts.get(key) ?? 0;
      if (open < this.options.connections) {
        this.counts.set(key, open + 1);
        return this.open(url, key);
      }
      await new Promise<void>((resolve) => {
        const queue = this.waiting.get(key) ?? [];
        queue.push(resolve);
        this.waiting.set(key, queue);
      });
    }
  }

  private open(url: URL, key: string): Connection {
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const lookup = this.options.lookup;
    const socket = connect({ host, port: url.port ? Number(url.port) : 80, ...(lookup ? { lookup } : {}) });
    socket.setNoDelay(true);
    const conn = new Connection(socket, key);
    socket.on('data', (chunk: Buffer) => (conn.reader ? conn.reader.onData(chunk) : socket.destroy()));
    socket.on('timeout', () => (conn.reader ? conn.reader.onTimeout() : socket.destroy()));
    let failure: Error | undefined;
    socket.on('error', (e) => (failure = e));
    socket.on('close', () => {
      this.forget(conn);
      conn.reader?.onGone(failure);
    });
    return conn;
  }

  /** Back to the idle list once its exchange ended cleanly; otherwise closed. */
  private release(conn: Connection, reusable: boolean): void {
    conn.reader = undefined;
    if (!reusable || this.closed || conn.socket.destroyed) {
      conn.socket.destroy();
      return;
    }
    conn.idleSince = Date.now();
    conn.socket.setTimeout(this.options.keepAliveTimeout);
    // Paused when the last body's reader lagged; its bytes are all in that body now.
    conn.socket.resume();
    conn.socket.unref();
    const list = this.idle.get(conn.key) ?? [];
    list.push(conn);
    this.idle.set(conn.key, list);
    this.wake(conn.key);
  }

  private forget(conn: Connection): void {
    const list = this.idle.get(conn.key);
    const i = list?.indexOf(conn) ?? -1;
    if (i >= 0) list!.splice(i, 1);
    this.counts.set(conn.key, (this.counts.get(conn.key) ?? 1) - 1);
    this.wake(conn.key);
  }

  private wake(key: string): void {
    this.waiting.get(key)?.shift()?.();
  }

  private exchange(conn: Connection, url: URL, method: string, bytes: Buffer, headersTimeout: number): Promise<PlainExchange> {
    const { bodyTimeout } = this.options;
    const socket = conn.socket;
    return new Promise<PlainExchange>((resolveHead, rejectHead) => {
      let pending: Buffer = Buffer.alloc(0);
      let received = false;
      let body: Readable | undefined;
      /** Body bytes still to come (Content-Length framing). */
      let remaining = 0;
      let framing: 'none' | 'length' | 'chunked' | 'close' = 'none';
      let chunked: ChunkedDecoder | undefined;
      let closes = false;
      let done = false;

      const fail = (e: Error): void => {
        if (done) return;
        done = true;
        conn.reader = undefined;
        socket.destroy();
        if (body) body.destroy(e);
        else rejectHead(e);
      };
      const finish = (): void => {
        if (done) return;
        done = true;
        socket.setTimeout(0);
        body!.push(null);
        this.release(conn, !closes && framing !== 'close');
      };
      const deliver = (data: Buffer): void => {
        if (data.length === 0) return;
        if (framing === 'close') {
          if (!body!.push(data)) socket.pause();
          return;
        }
        if (framing === 'length') {
          if (data.length > remaining) return fail(connectionError(`${url.host} sent more than the Content-Length of its response`, 'EPROTO'));
          remaining -= data.length;
          if (!body!.push(data)) socket.pause();
          if (remaining === 0) finish();
          return;
        }
        // chunked
        let more = true;
        for (const piece of chunked!.write(data)) more = body!.push(piece) && more;
        if (!more) socket.pause();
        if (chunked!.ended) {
          if (chunked!.excess > 0) return fail(connectionError(`${url.host} sent bytes after the end of its chunked response`, 'EPROTO'));
          finish();
        }
      };
      const startBody = (head: ResponseHead, rest: Buffer): void => {
        closes = head.closes;
        const te = head.headers['transfer-encoding'];
        const status = head.statusCode;
        // RFC 9110 §15.3.5, §15.3.6, §15.4.5: no content after these, whatever the fields say.
        if (method === 'HEAD' || status === 204 || status === 205 || status === 304) framing = 'none';
        else if (te !== undefined) {
          // Chunked last is self-delimiting; any other coding is read until the connection ends (RFC 9112 §6.3).
          framing = /(?:^|,)\s*chunked\s*$/i.test(String(te)) ? 'chunked' : 'close';
        } else {
          const length = contentLengthOf(head);
          if (length === undefined) framing = 'close';
          else {
            framing = length === 0 ? 'none' : 'length';
            remaining = length;
          }
        }
        if (framing === 'chunked') chunked = new ChunkedDecoder(url.host);
        body = new Readable({
          read: () => void (done || socket.resume()),
          // A reader that gives up (too large, its sink failed) ends the exchange: the connection
          // is closed, its rest unread, and its place in the pool freed.
          destroy: (err, callback) => {
            if (!done) {
              done = true;
              conn.reader = undefined;
              socket.destroy();
            }
            callback(err);
          },
        });
        // A failure before anyone reads is kept in body.errored for the reader (as node:http's
        // IncomingMessage, which emits 'error' only to listeners), not thrown at the process.
        body.on('error', () => undefined);
        socket.setTimeout(bodyTimeout);
        resolveHead({ statusCode: status, headers: head.headers, body });
        if (framing === 'none') {
          if (rest.length > 0) closes = true;
          return finish();
        }
        deliver(rest);
      };

      conn.reader = {
        onData(chunk) {
          received = true;
          try {
            if (body) return deliver(chunk);
            pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
            for (;;) {
              const end = pending.indexOf('\r\n\r\n');
              if (end < 0) {
                if (pending.length > MAX_HEAD) throw new PlainHttpError(`response head from ${url.host} larger than ${MAX_HEAD} bytes`);
                return;
              }
              const head = parseResponseHead(pending.subarray(0, end).toString('latin1'));
              pending = pending.subarray(end + 4);
              // 1xx interim answers (100 Continue, 103 Early Hints) precede the one that counts (RFC 9110 §15.2).
              if (head.statusCode >= 100 && head.statusCode < 200) continue;
              const rest = pending;
              pending = Buffer.alloc(0);
              return startBody(head, rest);
            }
          } catch (e) {
            fail(e instanceof PlainHttpError ? Object.assign(new Error(e.message), { code: 'EPROTO' }) : (e as Error));
          }
        },
        onGone(error) {
          if (done) return;
          if (body && framing === 'close' && !error) return finish();
          const what = body ? (framing === 'length' ? `${remaining} bytes before the end of the body` : 'before the end of the body') : 'before answering';
          const e = error ?? connectionError(`${url.host} closed the connection ${what}`, 'ECONNRESET');
          fail(Object.assign(e, { stale: !received }));
        },
        onTimeout() {
          fail(connectionError(body ? `no body bytes from ${url.host} within ${bodyTimeout} ms` : `no response head from ${url.host} within ${headersTimeout} ms`, 'ETIMEDOUT'));
        },
      };
      socket.setTimeout(headersTimeout);
      socket.write(bytes);
    });
  }
}

/** Chunked transfer coding (RFC 9112 §7.1): sizes, data, trailers; what comes out is the data. */
class ChunkedDecoder {
  /** Bytes of the current chunk's data still to come. */
  private left = 0;
  private state: 'size' | 'data' | 'data-end' | 'trailer' | 'done' = 'size';
  private line = '';
  ended = false;
  excess = 0;

  constructor(private readonly host: string) {}

  *write(data: Buffer): Generator<Buffer> {
    let i = 0;
    while (i < data.length) {
      if (this.state === 'done') {
        this.excess += data.length - i;
        return;
      }
      if (this.state === 'data') {
        const n = Math.min(this.left, data.length - i);
        yield data.subarray(i, i + n);
        i += n;
        this.left -= n;
        if (this.left === 0) this.state = 'data-end';
        continue;
      }
      // size, data-end and trailer lines: read up to LF.
      const lf = data.indexOf(10, i);
      const end = lf < 0 ? data.length : lf;
      this.line += data.toString('latin1', i, end);
      if (this.line.length > 8192) throw new PlainHttpError(`chunked response from ${this.host}: a line longer than 8 KiB`);
      i = end;
      if (lf < 0) return;
      i++;
      const line = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line;
      this.line = '';
      if (this.state === 'data-end') {
        if (line !== '') throw new PlainHttpError(`chunked response from ${this.host}: no CRLF after a chunk`);
        this.state = 'size';
      } else if (this.state === 'size') {
        const m = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/.exec(line);
        if (!m) throw new PlainHttpError(`chunked response from ${this.host}: invalid chunk size ${JSON.stringify(line.slice(0, 40))}`);
        this.left = parseInt(m[1]!, 16);
        this.state = this.left === 0 ? 'trailer' : 'data';
      } else if (line === '') {
        this.state = 'done';
        this.ended = true;
      }
    }
  }
}
