// Keep-alive connection pools and one request function over Node's own node:http and node:https,
// for the client's registry traffic; requests to a plain-HTTP registry whose body is in memory go
// over plain-exchange.ts instead, and node:http is then never loaded. They replace undici here for start-up's sake: Node's HTTP
// stack is part of the node binary (compiled into its code cache, its parser native), while
// undici is ~60 CommonJS files read, compiled and run at every `berth push` or `pull`, plus
// llhttp compiled from WebAssembly: 25-50 ms of a warm push that skopeo finishes in ~100 ms
// (docs/performance.md, "Client"). The server (server/proxy/upstream.ts) keeps undici.
import type { Agent as HttpAgent, IncomingMessage, ClientRequest, OutgoingHttpHeaders } from 'node:http';
import { PlainPool } from './plain-exchange.js';
import type { Agent as HttpsAgent } from 'node:https';
import { createRequire } from 'node:module';
import type { LookupFunction } from 'node:net';
import type { Readable } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A response body: the socket's bytes as a Readable, with undici's three ways to finish it. */
export type ResponseBody = Readable & {
  /** Reads and drops the rest of the body, so the connection goes back to the pool. */
  dump(): Promise<void>;
  text(): Promise<string>;
  json(): Promise<unknown>;
};

export interface Response {
  statusCode: number;
  /** Lower-case names; a header sent more than once is an array. */
  headers: Record<string, string | string[] | undefined>;
  body: ResponseBody;
}

export interface PoolOptions {
  /** TLS options of every https connection (CAs, or no verification). */
  tls: ConnectionOptions;
  lookup?: LookupFunction;
  /** Connections per host. */
  connections: number;
  keepAliveTimeout: number;
  /** Milliseconds without a byte before the response head (undici's headersTimeout). */
  headersTimeout: number;
  /** Milliseconds without a byte while the body is read (undici's bodyTimeout). */
  bodyTimeout: number;
}

// node:http is required, not imported: an ESM import reads every export, and Node ≥ 22's
// `http.WebSocket` getter then loads its bundled undici and node:tls: 70-200 ms of a Node 24
// push, against ~10 ms for require() (which leaves the getter alone). And only when a request
// needs it (plain-exchange.ts takes the others).
let httpModule: typeof import('node:http') | undefined;
const nodeHttp = (): typeof import('node:http') => (httpModule ??= createRequire(import.meta.url)('node:http') as typeof import('node:http'));

/** An http and an https agent and a plain-exchange pool with the same limits, each made on first use. */
export class HttpPool {
  private plain: HttpAgent | undefined;
  private tls: HttpsAgent | undefined;
  private exchanges: PlainPool | undefined;

  constructor(readonly options: PoolOptions) {}

  plainPool(): PlainPool {
    const o = this.options;
    return (this.exchanges ??= new PlainPool({ ...(o.lookup ? { lookup: o.lookup } : {}), connections: o.connections, keepAliveTimeout: o.keepAliveTimeout, headersTimeout: o.headersTimeout, bodyTimeout: o.bodyTimeout }));
  }

  agentFor(protocol: string): HttpAgent {
    const o = this.options;
    const common = { keepAlive: true, keepAliveMsecs: 1000, maxSockets: o.connections, maxFreeSockets: o.connections, timeout: o.keepAliveTimeout };
    if (protocol === 'https:') {
      const { Agent } = createRequire(import.meta.url)('node:https') as typeof import('node:https');
      return (this.tls ??= new Agent({ ...common, ...o.tls }));
    }
    return (this.plain ??= new (nodeHttp().Agent)(common));
  }

  close(): void {
    this.plain?.destroy();
    this.tls?.destroy();
    this.exchanges?.close();
  }
}

export interface RequestOptions {
  method?: HttpMethod;
  headers?: Record<string, string>;
  body?: string | Buffer | Readable | null;
  dispatcher: HttpPool;
  headersTimeout?: number;
}

class TimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
}

function headersOf(res: IncomingMessage): Response['headers'] {
  const out: Response['headers'] = {};
  for (const [k, v] of Object.entries(res.headersDistinct)) if (v) out[k] = v.length === 1 ? v[0] : v;
  return out;
}

/** `res` with dump, text and json; `complete()` tells a body read to its end from one cut short. */
function bodyOf(res: Readable, complete: () => boolean): ResponseBody {
  const collect = (): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      if (res.errored) return reject(res.errored);
      if (res.destroyed) return reject(new Error('connection closed before the body ended'));
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolve(Buffer.concat(chunks)));
      res.once('error', reject);
      res.once('close', () => {
        if (!complete()) reject(new Error('connection closed before the body ended'));
      });
    });
  return Object.assign(res, {
    dump: (): Promise<void> =>
      new Promise<void>((resolve) => {
        if (res.readableEnded || res.destroyed) return resolve();
        res.once('end', resolve);
        res.once('close', resolve);
        res.once('error', () => resolve());
        res.resume();
      }),
    text: async () => (await collect()).toString('utf8'),
    json: async () => JSON.parse((await collect()).toString('utf8')) as unknown,
  });
}

/** One request; resolves with the response head, the body left to read. Network failures reject. */
export function request(url: string | URL, opts: RequestOptions): Promise<Response> {
  const u = typeof url === 'string' ? new URL(url) : url;
  const pool = opts.dispatcher;
  const { lookup, bodyTimeout } = pool.options;
  const headersTimeout = opts.headersTimeout ?? pool.options.headersTimeout;
  const method = opts.method ?? (opts.body ? 'PUT' : 'GET');
  const body = opts.body;
  if (u.protocol === 'http:' && (body === undefined || body === null || typeof body === 'string' || Buffer.isBuffer(body))) {
    return pool
      .plainPool()
      .request(u, method, opts.headers ?? {}, typeof body === 'string' ? Buffer.from(body) : (body ?? undefined), headersTimeout)
      .then((ex) => ({ statusCode: ex.statusCode, headers: ex.headers, body: bodyOf(ex.body, () => ex.body.readableEnded) }));
  }
  const agent = pool.agentFor(u.protocol);
  return new Promise((resolve, reject) => {
    let req: ClientRequest;
    const send = u.protocol === 'https:' ? (createRequire(import.meta.url)('node:https') as typeof import('node:https')).request : nodeHttp().request;
    try {
      req = send(u, { method, agent, headers: (opts.headers ?? {}) as OutgoingHttpHeaders, timeout: headersTimeout, ...(lookup ? { lookup } : {}) });
    } catch (e) {
      reject(e as Error);
      return;
    }
    const headTimeout = (): void => void req.destroy(new TimeoutError(`no response head from ${u.host} within ${headersTimeout} ms`));
    req.on('timeout', headTimeout);
    // Kept for the request's life: a socket error after the head is the body's (it errors too).
    req.on('error', reject);
    req.once('response', (res) => {
      // From here the socket's idle limit is the body's; the agent resets it when the socket is free.
      res.socket?.setTimeout(bodyTimeout);
      req.off('timeout', headTimeout);
      req.on('timeout', () => res.destroy(new TimeoutError(`no body bytes from ${u.host} within ${bodyTimeout} ms`)));
      resolve({ statusCode: res.statusCode ?? 0, headers: headersOf(res), body: bodyOf(res, () => res.complete) });
    });
    if (body === undefined || body === null || typeof body === 'string' || Buffer.isBuffer(body)) {
      req.end(body ?? undefined);
      return;
    }
    body.once('error', (e) => req.destroy(e));
    req.once('error', () => body.destroy());
    body.pipe(req);
  });
}
