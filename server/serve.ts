// Starting and stopping a registry: used by `berth serve`, the tests and the benchmarks.
import { createServer as createHttpServer, type Server } from 'node:http';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import type { RegistryStore } from '../storage/registry-store.js';
import { collectGarbage, type GcResult } from '../storage/gc.js';
import type { RetentionResult } from '../storage/retention.js';
import { openStore } from './open-store.js';
import { createApp } from './app.js';
import { flushReports } from './request-watch.js';
import { createAccessLog, type AccessLog } from './access-log.js';
import { LineBatch, type LineSink } from './log-batch.js';
import { setupExtensions } from './extensions/extension.js';
import type { RegistryContext } from './context.js';
import { createTlsServer, ensureSelfSigned } from './tls.js';
import { parseListen, type ServerConfig } from './config.js';

export interface RunningRegistry {
  /** Base URL, e.g. http://127.0.0.1:5000 */
  url: string;
  host: string;
  port: number;
  store: RegistryStore;
  log: Logger;
  config: ServerConfig;
  /** http://HOST:PORT/metrics when --metrics-listen is on. */
  metricsUrl?: string;
  /** Starts one garbage collection now, unless one runs (here or, with shared metadata, on another replica). */
  collectGarbage(): void;
  /** Stops accepting, lets in-flight requests finish (up to `graceMs`), closes LevelDB. */
  close(graceMs?: number): Promise<void>;
}

const PURGE_INTERVAL_MS = 60 * 60 * 1000;
/** Log bytes kept while stdout fails; later lines are dropped. */
const LOG_BACKLOG_BYTES = 16 << 20;
const PROBE_DIGEST = `sha256:${'0'.repeat(64)}`;

/**
 * The server's log: JSON lines on stdout, pino's and the access log's, in the order written,
 * gathered into writes of 64 KiB or every 100 ms (server/log-batch.ts). One write(2) per line was
 * most of what the access log cost on a manifest GET (a profile under load: ~30 µs of ~45 µs per
 * line). What is gathered is written at close and when the process exits.
 */
function stdoutLogger(level: ServerConfig['logLevel']): { log: Logger; flush: () => void; accessLog: AccessLog } {
  let batch: LineBatch | undefined;
  // What waits in the batch (and the reports of the last answers) is written when the process exits.
  const onExit = () => {
    flushReports();
    batch?.flushSync();
  };
  process.once('exit', onExit);
  // Synchronous writes, pino's default: one write(2) per batch in this thread costs less than
  // handing each batch to the libuv threadpool (bench/access-log-line.ts), and log writes then
  // never queue behind blob reads and writes in that pool. A stdout that stops draining blocks the
  // server, as it would with pino's defaults. A stdout that fails (a full disk, a closed pipe) is
  // said once on stderr and never fails a request. A full disk: sonic-boom keeps the failed batch
  // and writes it before the next one, and beyond LOG_BACKLOG_BYTES drops new lines until it can
  // write again. A closed pipe (EPIPE): pino makes its destination drop every later line.
  const dest = pino.destination({ dest: 1, sync: true, minLength: 0, contentMode: 'buffer', maxLength: LOG_BACKLOG_BYTES });
  batch = new LineBatch(dest as unknown as LineSink);
  let failed = false;
  dest.on('error', (err: NodeJS.ErrnoException) => {
    batch!.sinkFailed();
    if (failed) return;
    failed = true;
    const after = err.code === 'EPIPE' ? 'later lines are dropped' : `lines wait, up to ${LOG_BACKLOG_BYTES >> 20} MiB, then are dropped until it works again`;
    process.stderr.write(`berth serve: writing the log to stdout failed (${err.code ?? err.message}): ${after}\n`);
  });
  const b = batch;
  const log = pino({ level, base: undefined }, b);
  return {
    log,
    accessLog: createAccessLog(log, b),
    flush: () => {
      flushReports();
      b.stop();
      process.removeListener('exit', onExit);
    },
  };
}

export async function startRegistry(config: ServerConfig, opts: { logger?: Logger } = {}): Promise<RunningRegistry> {
  const own = opts.logger ? undefined : stdoutLogger(config.logLevel);
  const log = opts.logger ?? own!.log;
  await mkdir(config.data, { recursive: true });
  const store = await openStore(config);
  let access, mirror, metrics, notifier;
  try {
    // Metrics are an opt-in module: prom-client is loaded only with --metrics-listen.
    metrics = config.metrics ? await (await import('./metrics/prometheus.js')).startMetrics(config.metrics.listen, store, log) : undefined;
    access = config.auth && config.auth.mode !== 'none' ? await (await import('./auth/access-control.js')).createAccessControl(config, log, metrics?.observer) : undefined;
    mirror = config.proxy ? await (await import('./proxy/mirror.js')).createMirror(store, config, log, metrics?.observer.mirror) : undefined;
    // Webhooks: loaded only when the config file names an endpoint.
    notifier = config.notifications?.endpoints.length
      ? (await import('./notifications/notifier.js')).createNotifier(store.meta, config.notifications, { log, ...(metrics ? { metrics: metrics.observer.notifications } : {}) })
      : undefined;
  } catch (e) {
    await metrics?.close();
    await store.close();
    throw e;
  }
  // /readyz: one metadata read and one blob stat of a digest that is never stored.
  const ready = async (): Promise<void> => {
    await Promise.all([store.meta.getContent(PROBE_DIGEST), store.blobs.stat(PROBE_DIGEST)]);
  };
  const extensions = await setupExtensions({ store, config, log, ...(access ? { access } : {}) });
  const app = createApp(store, config, log, {
    access: access?.middleware,
    mirror: mirror?.middleware,
    observer: metrics?.observer,
    ready,
    ...(access ? { viewerOf: (ctx: RegistryContext) => access.caller(ctx) } : {}),
    extensions,
    notifier,
    ...(own ? { accessLog: own.accessLog } : {}),
  });

  let server: Server;
  let stopWatchingTls = () => {};
  if (config.tls) {
    if (config.tls.selfSigned) await ensureSelfSigned(config.tls.cert, config.tls.key, log);
    const tls = await createTlsServer(config.tls, app.callback(), log);
    server = tls.server as unknown as Server;
    stopWatchingTls = tls.stopWatching;
  } else {
    server = createHttpServer(app.callback());
  }
  // Blob uploads may legitimately take longer than Node's default 5-minute request timeout.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 65_000;

  const { host, port } = parseListen(config.listen);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    await metrics?.close();
    await store.close();
    throw e;
  }
  const addr = server.address() as AddressInfo;
  const shownHost = addr.address === '0.0.0.0' || addr.address === '::' ? '127.0.0.1' : addr.address;
  const url = `${config.tls ? 'https' : 'http'}://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${addr.port}`;
  notifier?.start(addr.port);

  // Background work (upload purge, GC, key rotation, mirror eviction) runs one task of each kind
  // at a time and is tracked, so close() waits for all of it before LevelDB closes; a task does
  // not start once closing began.
  const running = new Set<Promise<void>>();
  const inFlight = new Map<string, Promise<void>>();
  let closing: Promise<void> | undefined;
  const stopping = new AbortController();
  // With shared metadata, one replica at a time runs each job (meta.runJob: an advisory lock).
  const background = (kind: string, task: () => Promise<unknown>, done: (r: unknown) => void, failed: string, opts: { perReplica?: boolean } = {}): void => {
    if (closing || inFlight.has(kind)) return;
    const run: Promise<void> = (opts.perReplica ? task() : store.meta.runJob(kind, task))
      .then(
        (r) => (r === undefined ? log.debug({ job: kind }, 'skipped: another replica runs it') : done(r)),
        (err: unknown) => log.warn({ err }, failed),
      )
      .finally(() => {
        running.delete(run);
        inFlight.delete(kind);
      });
    running.add(run);
    inFlight.set(kind, run);
  };

  const purgeAge = config.uploads.purgeAfterHours * 3600 * 1000;
  const purge = () => background('purge', () => store.uploads.purge(purgeAge), (n) => (n as number) > 0 && log.info({ removed: n }, 'purged stale upload sessions'), 'upload purge failed');
  purge();
  const purgeTimer = setInterval(purge, PURGE_INTERVAL_MS);
  purgeTimer.unref();

  // Retention rules run first, in the same job: the blobs their removals release go in this
  // GC's sweep (their content records are older than the grace period).
  const graceMs = config.gc.graceMinutes * 60_000;
  const retentionRules = config.retention?.length ? config.retention : undefined;
  const gcJob = async (): Promise<{ gc: GcResult; retention?: RetentionResult }> => {
    let retention: RetentionResult | undefined;
    if (retentionRules) {
      // A failed retention run (the metadata unreachable midway) does not stop the GC: what it
      // removed is consistent, and the next run judges the rest again.
      try {
        const { runRetention } = await import('./retention-run.js');
        retention = await runRetention(store, retentionRules, { graceMs, log, signal: stopping.signal });
        metrics?.observer.retentionDone(retention);
      } catch (err) {
        log.warn({ err }, 'retention failed');
      }
    }
    const gc = await collectGarbage(store, { graceMs, signal: stopping.signal });
    return retention ? { gc, retention } : { gc };
  };
  const gc = () => background('gc', gcJob, (r) => {
    const { gc: result } = r as { gc: GcResult };
    metrics?.observer.gcDone(result);
    log.info(result as object, 'garbage collection done');
  }, 'garbage collection failed');
  const gcTimer = config.gc.intervalHours > 0 ? setInterval(gc, config.gc.intervalHours * 3600 * 1000) : undefined;
  if (retentionRules && !gcTimer) log.warn({ rules: retentionRules.length }, 'retention rules run with each GC, and gc.intervalHours is 0: they run only on kill -USR2 or berth serve retention');
  gcTimer?.unref();

  // Signing-key rotation and mirror eviction, when those are on.
  const maintain = () => {
    if (access) background('keys', () => access.maintain(), () => undefined, 'signing key rotation failed', { perReplica: true });
    if (mirror) background('evict', () => mirror.maintain(), () => undefined, 'mirror eviction failed');
  };
  const maintainTimer = access || mirror ? setInterval(maintain, mirror?.maintainIntervalMs ?? PURGE_INTERVAL_MS) : undefined;
  maintainTimer?.unref();

  const close = (graceMs = 30_000): Promise<void> => {
    closing ??= (async () => {
      clearInterval(purgeTimer);
      if (gcTimer) clearInterval(gcTimer);
      if (maintainTimer) clearInterval(maintainTimer);
      stopWatchingTls();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // Fix: a response still finishing at this instant (its client may already hold every byte,
      // e.g. a blob streamed with a Content-Length) is skipped by closeIdleConnections() and then
      // keeps its keep-alive socket open, stalling shutdown for the whole grace period. Sweep idle
      // sockets again until the server has closed.
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      await closed;
      clearInterval(sweep);
      clearTimeout(timer);
      stopping.abort();
      await Promise.all(running);
      // Events of the requests that just finished are queued; what is undelivered stays queued.
      await notifier?.close();
      await mirror?.close();
      await metrics?.close();
      await store.close();
      own?.flush();
    })();
    return closing;
  };

  return { url, host: addr.address, port: addr.port, store, log, config, ...(metrics ? { metricsUrl: metrics.url } : {}), collectGarbage: gc, close };
}
