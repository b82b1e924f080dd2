// A request's access-log line and metrics, reported when its answer is sent. An answer held in
// memory (a Buffer or string body, or none for HEAD and 204/304) is measured as the app's outer
// middleware ends (Koa then writes it with one res.end()) and reported once the answers of this
// turn of the event loop are out (setImmediate, one for all of them): the line and the metrics
// no longer stand between a request and its answer. Anything else (a stream, a JSON object, a
// body the route sends itself with respond = false) on the response's 'close'. Before, every
// request waited for 'close' through a listener and a property set on its ServerResponse (a
// second shape for node:http's own objects); most answers now need neither (docs/performance.md,
// "Metrics and access log overhead").
import type Koa from 'koa';
import type { AccessLog, AccessRecord } from './access-log.js';
import type { RegistryState } from './context.js';
import type { ServerObserver } from './metrics/hooks.js';
import { methodLabel, routeOf } from './request-info.js';

type Ctx = Koa.ParameterizedContext<RegistryState>;

/**
 * One request from its start to its report: the access record itself (filled in as the answer
 * goes out) with what the watch needs besides. One object a request: a record, a sample and an
 * outcome built beside it were ~0.1 µs and three more objects for the scavenger on every request.
 */
export interface RequestWatch extends AccessRecord {
  started: number;
  /** Unrounded, for the duration histogram (`ms` is the log's, to 0.1 ms). */
  seconds: number;
  upload: boolean;
  accessLog: AccessLog | undefined;
  observer: ServerObserver | undefined;
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
export function startWatch(ctx: Ctx, reqId: string, accessLog: AccessLog | undefined, observer: ServerObserver | undefined): RequestWatch {
  const method = ctx.method;
  const path = ctx.path;
  const info = routeOf(path);
  const upload = observer !== undefined && isUpload(method, info.route);
  if (upload) observer.uploadsInFlight(1);
  // Every field set here, in one order: the object keeps one shape from start to report.
  return { reqId, method, route: info.route, path, repository: info.repository, status: 0, bytesIn: 0, bytesOut: 0, ms: 0, user: undefined, started: performance.now(), seconds: 0, upload, accessLog, observer };
}

/** Measures the finished request `w` (its answer being sent now). */
function finish(w: RequestWatch, ctx: Ctx, bytesOut: number): void {
  const ms = performance.now() - w.started;
  w.seconds = ms / 1000;
  w.ms = Math.round(ms * 10) / 10;
  w.status = ctx.res.statusCode;
  w.bytesIn = ctx.state.bodyBytes ?? 0;
  w.bytesOut = bytesOut;
  w.user = ctx.state.user;
}

function reportUnguarded(w: RequestWatch): void {
  const observer = w.observer;
  if (observer) {
    if (w.upload) observer.uploadsInFlight(-1);
    observer.request(methodLabel(w.method), w.route, w.status, w.seconds, w.bytesIn, w.bytesOut);
  }
  w.accessLog?.(w);
}

/**
 * Reports `w`. Both callers run outside the request (a setImmediate, the response's 'close'): a
 * failure here would end the process, so it is said once on stderr instead.
 */
function report(w: RequestWatch): void {
  try {
    reportUnguarded(w);
  } catch (e) {
    reportFailed(e);
  }
}

/** In-memory answers sent in this turn of the event loop, reported together after it. */
let pending: RequestWatch[] = [];
let scheduled = false;

/** Reports every request still waiting (the setImmediate's work; also before the log's last write). */
export function flushReports(): void {
  scheduled = false;
  const list = pending;
  pending = [];
  for (const w of list) report(w);
}

let failureSaid = false;
function reportFailed(e: unknown): void {
  if (failureSaid) return;
  failureSaid = true;
  process.stderr.write(`berth serve: recording a request's access line or metrics failed (said once): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
}

const NO_BODY = new Set([204, 205, 304]);

/**
 * Called as the app's outer middleware ends (the route, the error handling done). Bytes in: the
 * request body bytes the registry read (server/request-body.ts; a body refused unread counts 0).
 * Bytes out: the Content-Length of the answer, else what the connection wrote until 'close'
 * (headers included; every answer a route sends itself has a Content-Length).
 */
export function endWatch(w: RequestWatch, ctx: Ctx): void {
  const body: unknown = ctx.body;
  const empty = w.method === 'HEAD' || NO_BODY.has(ctx.res.statusCode);
  if (ctx.respond !== false && (empty || Buffer.isBuffer(body) || typeof body === 'string')) {
    // A Buffer's length is its Content-Length (Koa's body setter); a string's is in the header.
    const bytesOut = empty ? 0 : Buffer.isBuffer(body) ? body.length : headerNumber(ctx.res.getHeader('content-length')) ?? Buffer.byteLength(body as string);
    finish(w, ctx, bytesOut);
    pending.push(w);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flushReports);
    }
    return;
  }
  const res = ctx.res;
  const written0 = ctx.req.socket?.bytesWritten ?? 0;
  const onClose = () => {
    const bytesOut = empty ? 0 : headerNumber(res.getHeader('content-length')) ?? Math.max(0, (ctx.req.socket?.bytesWritten ?? written0) - written0);
    finish(w, ctx, bytesOut);
    report(w);
  };
  // A route that sent its own answer may have seen it closed already.
  if (res.closed) onClose();
  else res.once('close', onClose);
}
