// A request's access-log line and metrics, reported when its answer is sent. An answer held in
// memory (a Buffer or string body, or none for HEAD and 204/304) is reported as the app's outer
// middleware ends: Koa then writes it with one res.end(). Anything else (a stream, a JSON
// object, a body the route sends itself with respond = false) on the response's 'close'. Before,
// every request waited for 'close' through a listener and a property set on its ServerResponse
// (a second shape for node:http's own objects); most answers now need neither
// (docs/performance.md, "Metrics and access log overhead").
import type Koa from 'koa';
import type { AccessLog } from './access-log.js';
import type { RegistryState } from './context.js';
import type { ServerObserver } from './metrics/hooks.js';
import { methodLabel, routeOf, type RouteInfo } from './request-info.js';

type Ctx = Koa.ParameterizedContext<RegistryState>;

export interface RequestWatch {
  reqId: string;
  method: string;
  /** The path as the request came (the access log's `path`). */
  path: string;
  info: RouteInfo;
  started: number;
  upload: boolean;
}

/** Uploads in flight: requests that carry blob bytes into an upload. */
function isUpload(method: string, route: string): boolean {
  return method === 'PATCH' || method === 'PUT' ? route === '/v2/{name}/blobs/uploads/{id}' : method === 'POST' && route === '/v2/{name}/blobs/uploads/';
}

function headerNumber(v: string | number | string[] | undefined): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v);
  return undefined;
}

/** The start of a request the access log or the metrics watch. */
export function startWatch(ctx: Ctx, reqId: string, observer: ServerObserver | undefined): RequestWatch {
  const method = ctx.method;
  const path = ctx.path;
  const info = routeOf(path);
  const upload = observer !== undefined && isUpload(method, info.route);
  if (upload) observer.uploadsInFlight(1);
  return { reqId, method, path, info, started: performance.now(), upload };
}

function report(w: RequestWatch, ctx: Ctx, bytesOut: number, accessLog: AccessLog | undefined, observer: ServerObserver | undefined): void {
  const ms = performance.now() - w.started;
  const status = ctx.res.statusCode;
  const bytesIn = ctx.state.bodyBytes ?? 0;
  if (observer) {
    if (w.upload) observer.uploadsInFlight(-1);
    observer.request({ method: methodLabel(w.method), route: w.info.route, status, seconds: ms / 1000, bytesIn, bytesOut });
  }
  accessLog?.({ reqId: w.reqId, method: w.method, route: w.info.route, path: w.path, repository: w.info.repository, status, bytesIn, bytesOut, ms: Math.round(ms * 10) / 10, user: ctx.state.user });
}

const NO_BODY = new Set([204, 205, 304]);

/**
 * Called as the app's outer middleware ends (the route, the error handling done). Bytes in: the
 * request body bytes the registry read (server/request-body.ts; a body refused unread counts 0).
 * Bytes out: the Content-Length of the answer, else what the connection wrote until 'close'
 * (headers included; every answer a route sends itself has a Content-Length).
 */
export function endWatch(w: RequestWatch, ctx: Ctx, accessLog: AccessLog | undefined, observer: ServerObserver | undefined): void {
  const body: unknown = ctx.body;
  const empty = w.method === 'HEAD' || NO_BODY.has(ctx.res.statusCode);
  if (ctx.respond !== false && (empty || Buffer.isBuffer(body) || typeof body === 'string')) {
    // A Buffer's length is its Content-Length (Koa's body setter); a string's is in the header.
    const bytesOut = empty ? 0 : Buffer.isBuffer(body) ? body.length : headerNumber(ctx.res.getHeader('content-length')) ?? Buffer.byteLength(body as string);
    report(w, ctx, bytesOut, accessLog, observer);
    return;
  }
  const res = ctx.res;
  const written0 = ctx.req.socket?.bytesWritten ?? 0;
  const onClose = () => {
    const bytesOut = empty ? 0 : headerNumber(res.getHeader('content-length')) ?? Math.max(0, (ctx.req.socket?.bytesWritten ?? written0) - written0);
    report(w, ctx, bytesOut, accessLog, observer);
  };
  // A route that sent its own answer may have seen it closed already.
  if (res.closed) onClose();
  else res.once('close', onClose);
}
