// A request's access-log line and metrics, reported once its answer is sent. The request itself
// only reads the clock at its start and end: an answer held in memory (a Buffer or string body,
// or none for HEAD and 204/304) is queued with those times as the app's outer middleware ends
// (Koa then writes it with one res.end()), and everything else (its route, status, byte counts,
// the line, the metrics) is worked out once the answers of this turn of the event loop are out,
// for all of them in one loop (setImmediate). Anything else (a stream, a JSON object, a body the
// route sends itself with respond = false) is reported on the response's 'close'. Work done in
// the middle of a request costs several times what the same work costs in a loop over many
// (docs/performance.md, "Metrics and access log overhead").
import type Koa from 'koa';
import { performance } from 'node:perf_hooks';
import type { AccessLog, AccessRecord } from './access-log.js';
import type { RegistryState } from './context.js';
import type { ServerObserver } from './metrics/hooks.js';
import { methodLabel, routeOf } from './request-info.js';

type Ctx = Koa.ParameterizedContext<RegistryState>;

/** Where an app's requests are reported: its access log, its metrics, or both. */
export interface WatchSinks {
  readonly accessLog: AccessLog | undefined;
  readonly observer: ServerObserver | undefined;
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

/** The start of a watched request: its start time (an upload is counted in flight now). */
export function startWatch(ctx: Ctx, sinks: WatchSinks, path: string): number {
  const observer = sinks.observer;
  if (observer !== undefined) {
    const method = ctx.req.method;
    if ((method === 'POST' || method === 'PATCH' || method === 'PUT') && isUpload(method, routeOf(path).route)) observer.uploadsInFlight(1);
  }
  return performance.now();
}

// The record handed to the access log, filled again for each request (the log encodes it before
// it returns; createAccessLog's pino path copies it).
const record: AccessRecord = { reqId: '', reqNumber: 0, method: '', route: '', path: '', repository: undefined, status: 0, bytesIn: 0, bytesOut: 0, ms: 0, user: undefined };

/** Reports one finished request, answered in `ms`; `time` is the log's (epoch ms). */
function reportUnguarded(sinks: WatchSinks, path: string, reqId: string, method: string, user: string | undefined, reqNumber: number, status: number, bytesIn: number, ms: number, bytesOut: number, time: number): void {
  const info = routeOf(path);
  const observer = sinks.observer;
  if (observer !== undefined) {
    if (isUpload(method, info.route)) observer.uploadsInFlight(-1);
    observer.request(methodLabel(method), info, status, ms / 1000, bytesIn, bytesOut);
  }
  const accessLog = sinks.accessLog;
  if (accessLog !== undefined) {
    const r = record;
    r.reqId = reqId;
    r.reqNumber = reqNumber;
    r.method = method;
    r.route = info.route;
    r.path = path;
    r.repository = info.repository;
    r.status = status;
    r.bytesIn = bytesIn;
    r.bytesOut = bytesOut;
    r.ms = Math.round(ms * 10) / 10;
    r.user = user;
    accessLog(r, time);
  }
}

/**
 * Reports a request. Every caller runs outside the request (a setImmediate, the response's
 * 'close'): a failure here would end the process, so it is said once on stderr instead.
 */
function report(sinks: WatchSinks, path: string, reqId: string, method: string, user: string | undefined, reqNumber: number, status: number, bytesIn: number, ms: number, bytesOut: number, time: number): void {
  try {
    reportUnguarded(sinks, path, reqId, method, user, reqNumber, status, bytesIn, ms, bytesOut, time);
  } catch (e) {
    reportFailed(e);
  }
}

/** Reports the request of `ctx`, its answer sent: what it read and wrote is final now. */
function reportContext(ctx: Ctx, sinks: WatchSinks, path: string, reqNumber: number, ms: number, bytesOut: number, time: number): void {
  const state = ctx.state;
  report(sinks, path, state.reqId ?? '', ctx.req.method ?? '', state.user, reqNumber, ctx.res.statusCode, state.bodyBytes ?? 0, ms, bytesOut, time);
}

// In-memory answers sent in this turn of the event loop, reported together after it: their
// contexts, sinks and paths, and per request its id's number, duration in ms and bytes out, in
// arrays reused from turn to turn (no object a request). A context is kept until the end of its
// turn only. (Copying each request's fields out as it ends instead, not to keep its context,
// cost 1-3 points of throughput more in each of four runs: docs/performance.md.)
let pendingCtx: Ctx[] = [];
let pendingSinks: WatchSinks[] = [];
let pendingPaths: string[] = [];
let pendingNums: number[] = [];
let scheduled = false;

/** Reports every request still waiting (the setImmediate's work; also before the log's last write). */
export function flushReports(): void {
  scheduled = false;
  const ctxs = pendingCtx;
  const sinks = pendingSinks;
  const paths = pendingPaths;
  const nums = pendingNums;
  // A report that answered another request (none does) would queue it into fresh arrays.
  pendingCtx = [];
  pendingSinks = [];
  pendingPaths = [];
  pendingNums = [];
  // One clock read for the lines of a turn: they are made within microseconds of each other.
  const time = Date.now();
  for (let i = 0; i < ctxs.length; i++) reportContext(ctxs[i]!, sinks[i]!, paths[i]!, nums[3 * i]!, nums[3 * i + 1]!, nums[3 * i + 2]!, time);
  ctxs.length = 0;
  sinks.length = 0;
  paths.length = 0;
  nums.length = 0;
  if (pendingCtx.length === 0) {
    pendingCtx = ctxs;
    pendingSinks = sinks;
    pendingPaths = paths;
    pendingNums = nums;
  }
}

let failureSaid = false;
function reportFailed(e: unknown): void {
  if (failureSaid) return;
  failureSaid = true;
  process.stderr.write(`berth serve: recording a request's access line or metrics failed (said once): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
}

/** Statuses answered without a body (RFC 9110 §15.3.5, §15.3.6, §15.4.5). */
function noBody(status: number): boolean {
  return status === 204 || status === 205 || status === 304;
}

/**
 * Called as the app's outer middleware ends (the route, the error handling done), with the
 * request's path (ctx.path, read by the app already), what startWatch returned and the number of
 * the request's id when this process made it (0 for a proxy's). Bytes in: the request body bytes the registry read
 * (server/request-body.ts; a body refused unread counts 0). Bytes out: the Content-Length of the
 * answer, else what the connection wrote until 'close' (headers included; every answer a route
 * sends itself has a Content-Length).
 */
export function endWatch(ctx: Ctx, sinks: WatchSinks, path: string, started: number, reqNumber: number): void {
  const body: unknown = ctx.body;
  const method = ctx.req.method ?? '';
  const status = ctx.res.statusCode;
  const empty = method === 'HEAD' || noBody(status);
  if (ctx.respond !== false && (empty || Buffer.isBuffer(body) || typeof body === 'string')) {
    const ms = performance.now() - started;
    // A Buffer's length is its Content-Length (Koa's body setter); a string's is in the header.
    const bytesOut = empty ? 0 : Buffer.isBuffer(body) ? body.length : headerNumber(ctx.res.getHeader('content-length')) ?? Buffer.byteLength(body as string);
    pendingCtx.push(ctx);
    pendingSinks.push(sinks);
    pendingPaths.push(path);
    pendingNums.push(reqNumber, ms, bytesOut);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flushReports);
    }
    return;
  }
  const res = ctx.res;
  const written0 = ctx.req.socket?.bytesWritten ?? 0;
  const onClose = () => {
    const ms = performance.now() - started;
    const bytesOut = empty ? 0 : headerNumber(res.getHeader('content-length')) ?? Math.max(0, (ctx.req.socket?.bytesWritten ?? written0) - written0);
    reportContext(ctx, sinks, path, reqNumber, ms, bytesOut, Date.now());
  };
  // A route that sent its own answer may have seen it closed already.
  if (res.closed) onClose();
  else res.once('close', onClose);
}
