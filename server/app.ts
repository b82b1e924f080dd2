// The Koa application: one thin shell over the route modules, the error table and the store.
import Koa from 'koa';
import Router from '@koa/router';
import type { Logger } from 'pino';
import { RegistryError } from '../oci/errors.js';
import { berthVersion } from '../oci/version.js';
import { StorageUnavailableError, isStorageFull } from '../storage/blob-driver.js';
import { assertRepositoryName } from '../oci/names.js';
import type { RegistryStore } from '../storage/registry-store.js';
import type { ServerConfig } from './config.js';
import type { RegistryContext, RegistryState, Viewer } from './context.js';
import { registerBase } from './routes/base.js';
import { registerTags } from './routes/tags.js';
import { registerManifests } from './routes/manifests.js';
import { registerBlobs } from './routes/blobs.js';
import { registerUploads } from './routes/uploads.js';
import { registerReferrers } from './routes/referrers.js';
import { registerSearch } from './routes/search.js';
import { closeAfterResponse, isLingering } from './lingering-close.js';
import { keepsRequestId, nextRequestNumber, requestIdOf } from './request-info.js';
import { endWatch, startWatch, type WatchSinks } from './request-watch.js';
import { createAccessLog, type AccessLog } from './access-log.js';
import type { ServerObserver } from './metrics/hooks.js';
import type { RequestNotifier } from './notifications/hooks.js';

/** Errors of a client that went away mid-request: nothing to answer, nothing to report loudly. */
function isClientAbort(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code;
  return code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (e as Error)?.message === 'aborted';
}

/** Middleware that serve.ts builds (they load files and keys first) and the app mounts before the routes. */
export interface AppExtensions {
  /** Authentication and authorization (server/auth/access-control.ts). */
  access?: Koa.Middleware<RegistryState>;
  /** Mirror mode (server/proxy/mirror.ts). */
  mirror?: Koa.Middleware<RegistryState>;
  /** Metrics (server/metrics/), when --metrics-listen is on. */
  observer?: ServerObserver;
  /** /readyz: resolves when storage and metadata answer, rejects (or never settles) when not. */
  ready?: () => Promise<void>;
  /** Who calls /v1/search (the access control's `caller`); absent: no authentication, everything visible. */
  viewerOf?: (ctx: RegistryContext) => Promise<Viewer>;
  /** Extensions' middleware (server/extensions/): paths outside the registry API, mounted before access control. */
  extensions?: Array<Koa.Middleware<RegistryState>>;
  /** Webhook notifications (server/notifications/), when configured. */
  notifier?: RequestNotifier;
  /** Where access-log lines go (server/access-log.ts); default: the logger's `info`. */
  accessLog?: AccessLog;
}

const EVERYTHING: Viewer = { mayDelete: () => true };

const READY_TIMEOUT_MS = 2000;

/** /healthz (the process answers) and /readyz (storage and metadata answer): a word, no auth, no access log. */
async function health(ctx: Koa.ParameterizedContext<RegistryState>, log: Logger, ready: (() => Promise<void>) | undefined): Promise<void> {
  ctx.type = 'text/plain';
  ctx.set('Cache-Control', 'no-store');
  if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
    ctx.status = 405;
    ctx.set('Allow', 'GET, HEAD');
    ctx.body = 'method not allowed\n';
    return;
  }
  if (ctx.path === '/healthz' || !ready) {
    ctx.body = 'ok\n';
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([ready(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS)))]);
    ctx.body = 'ok\n';
  } catch (e) {
    log.debug({ err: (e as Error).message }, 'readiness check failed');
    ctx.status = 503;
    ctx.body = 'unavailable\n';
  } finally {
    clearTimeout(timer);
  }
}

export function createApp(store: RegistryStore, config: ServerConfig, log: Logger, ext: AppExtensions = {}): Koa<RegistryState> {
  if (config.auth && config.auth.mode !== 'none' && !ext.access) throw new Error(`auth mode ${config.auth.mode} needs the access-control middleware (start the registry with startRegistry)`);
  const app = new Koa<RegistryState>();
  app.proxy = false;
  app.silent = true;
  const { observer, ready, notifier } = ext;
  // The access log is the logger's `info` level: off at warn and above.
  const accessLog = log.isLevelEnabled('info') ? (ext.accessLog ?? createAccessLog(log)) : undefined;
  const sinks: WatchSinks | undefined = observer || accessLog ? { accessLog, observer } : undefined;

  app.use(async (ctx, next) => {
    if (isLingering(ctx.req.socket)) {
      // Pipelined after an answer that closed the connection: not to be run (RFC 9112 §9.6).
      ctx.respond = false;
      ctx.req.socket.destroy();
      return;
    }
    const incomingId = ctx.get('X-Request-Id');
    const reqNumber = keepsRequestId(incomingId) ? 0 : nextRequestNumber();
    const reqId = reqNumber === 0 ? incomingId : requestIdOf(reqNumber);
    ctx.set('X-Request-Id', reqId);
    const path = ctx.path;
    if (path === '/healthz' || path === '/readyz') return health(ctx, log, ready);
    ctx.state.store = store;
    ctx.state.config = config;
    ctx.state.log = log;
    ctx.state.reqId = reqId;
    if (notifier) ctx.state.notifier = notifier;
    ctx.set('Docker-Distribution-API-Version', 'registry/2.0');
    // What `berth version` shows of the registry on its address (client/cli/version.ts).
    ctx.set('Berth-Version', berthVersion());
    const started = sinks ? startWatch(ctx, sinks, path) : 0;
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new RegistryError('UNSUPPORTED', `no endpoint ${ctx.method} ${ctx.path}`, { status: 404 });
      }
    } catch (e) {
      const err = e instanceof RegistryError ? e : undefined;
      if (err) {
        ctx.status = err.status;
        ctx.body = err.toBody();
      } else if (typeof (e as { status?: unknown }).status === 'number' && (e as { status: number }).status < 600) {
        // http-errors thrown by Koa or the router (e.g. 501 for an unknown method).
        const status = (e as { status: number }).status;
        ctx.status = status;
        ctx.body = new RegistryError('UNSUPPORTED', (e as Error).message, { status }).toBody();
      } else if (e instanceof StorageUnavailableError) {
        // S3 or PostgreSQL down: a retryable spec error, never a half-done write (they are atomic).
        log.warn({ err: e, reqId, method: ctx.method, path: ctx.path }, 'storage unavailable');
        ctx.status = 503;
        ctx.set('Retry-After', '5');
        ctx.body = new RegistryError('UNAVAILABLE', 'the registry storage is unavailable: retry later (details in the server log)').toBody();
      } else if (isStorageFull(e)) {
        // The data folder's disk is full (ENOSPC, EDQUOT). Writes are atomic (temp file, then
        // rename; one LevelDB batch), so nothing half-stored is visible; the write is refused.
        // The distribution spec has no code for this: 507 Insufficient Storage (RFC 4918 §11.5,
        // "unable to store the representation needed to successfully complete the request",
        // a condition "considered to be temporary") tells the client exactly why, where a 500
        // would read as a bug and a 503 would invite blind retries; the body is the spec's error
        // envelope, code UNKNOWN (clients show its message).
        log.error({ err: e, method: ctx.method, path: ctx.path }, 'storage full');
        ctx.status = 507;
        ctx.body = new RegistryError('UNKNOWN', 'the registry storage is full: the write was refused, nothing was stored; retry once space is freed', { status: 507 }).toBody();
      } else if (isClientAbort(e)) {
        ctx.status = 400;
        log.debug({ reqId, method: ctx.method, path: ctx.path }, 'client aborted the request');
      } else {
        log.error({ err: e, reqId, method: ctx.method, path: ctx.path }, 'request failed');
        ctx.status = 500;
        ctx.body = new RegistryError('UNKNOWN', 'internal error: see the server log').toBody();
      }
    } finally {
      // Answered before the body was read to its end (a refused upload, a 401 before a PUT's
      // body): Connection: close, and the rest is drained, bounded, so the answer is not reset.
      if (!ctx.req.complete && ctx.respond !== false) closeAfterResponse(ctx.req, ctx.res);
      if (sinks) endWatch(ctx, sinks, path, started, reqNumber);
    }
  });

  // Extensions own paths the API does not use (the web UI: /, /r/…, /ui/…) and do their own
  // access checks with the same rules; API paths pass through them untouched.
  for (const mw of ext.extensions ?? []) app.use(mw);
  if (ext.access) app.use(ext.access);
  if (ext.mirror) app.use(ext.mirror);

  const router = new Router<RegistryState>();
  // Validate every repository name against the spec's grammar before it reaches the store.
  router.param('name', (value, ctx, next) => {
    assertRepositoryName(value);
    return next();
  });
  registerBase(router);
  registerSearch(router, ext.viewerOf ?? (async () => EVERYTHING));
  registerTags(router);
  registerReferrers(router);
  registerManifests(router);
  registerUploads(router);
  registerBlobs(router);
  app.use(router.routes());
  // A method the router does not know at all (TRACE, PROPFIND, …) is refused as one it knows but
  // the endpoint lacks: 405 UNSUPPORTED, never the router's default 501 (a 5xx says the registry failed).
  const unsupported = () => new RegistryError('UNSUPPORTED', 'method not allowed on this endpoint', { status: 405 });
  app.use(router.allowedMethods({ throw: true, methodNotAllowed: unsupported, notImplemented: unsupported }));
  return app;
}
