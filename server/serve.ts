// Starting and stopping a registry: used by `berth serve`, the tests and the benchmarks.
import { createServer as createHttpServer, type Server } from 'node:http';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { RegistryStore } from '../storage/registry-store.js';
import { collectGarbage } from '../storage/gc.js';
import { createApp } from './app.js';
import { createTlsServer, ensureSelfSigned } from './tls.js';
import { parseListen, type ServerConfig } from './config.js';

export interface RunningRegistry {
  /** Base URL, e.g. http://127.0.0.1:5000 */
  url: string;
  host: string;
  port: number;
  store: RegistryStore;
  log: Logger;
  /** Stops accepting, lets in-flight requests finish (up to `graceMs`), closes LevelDB. */
  close(graceMs?: number): Promise<void>;
}

const PURGE_INTERVAL_MS = 60 * 60 * 1000;
/** Unlinked content younger than this is kept: it may be about to be linked. */
const GC_GRACE_MS = 60 * 60 * 1000;

export async function startRegistry(config: ServerConfig, opts: { logger?: Logger } = {}): Promise<RunningRegistry> {
  const log = opts.logger ?? pino({ level: config.logLevel, base: undefined });
  await mkdir(config.data, { recursive: true });
  const store = new RegistryStore(config.data);
  await store.open();
  let access, mirror;
  try {
    access = config.auth && config.auth.mode !== 'none' ? await (await import('./auth/access-control.js')).createAccessControl(config, log) : undefined;
    mirror = config.proxy ? await (await import('./proxy/mirror.js')).createMirror(store, config, log) : undefined;
  } catch (e) {
    await store.close();
    throw e;
  }
  const app = createApp(store, config, log, { access: access?.middleware, mirror: mirror?.middleware });

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
    await store.close();
    throw e;
  }
  const addr = server.address() as AddressInfo;
  const shownHost = addr.address === '0.0.0.0' || addr.address === '::' ? '127.0.0.1' : addr.address;
  const url = `${config.tls ? 'https' : 'http'}://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${addr.port}`;

  const purgeAge = config.uploads.purgeAfterHours * 3600 * 1000;
  const purge = () =>
    store.uploads.purge(purgeAge).then(
      (n) => n > 0 && log.info({ removed: n }, 'purged stale upload sessions'),
      (err) => log.warn({ err }, 'upload purge failed'),
    );
  void purge();
  const purgeTimer = setInterval(purge, PURGE_INTERVAL_MS);
  purgeTimer.unref();

  let gcRun: Promise<unknown> = Promise.resolve();
  const gcTimer =
    config.gc.intervalHours > 0
      ? setInterval(() => {
          gcRun = collectGarbage(store, { graceMs: GC_GRACE_MS }).then(
            (r) => log.info(r, 'garbage collection done'),
            (err) => log.warn({ err }, 'garbage collection failed'),
          );
        }, config.gc.intervalHours * 3600 * 1000)
      : undefined;
  gcTimer?.unref();

  // Signing-key rotation and mirror eviction, when those are on.
  const maintain = () => {
    access?.maintain().catch((err: unknown) => log.warn({ err }, 'signing key rotation failed'));
    mirror?.maintain().catch((err: unknown) => log.warn({ err }, 'mirror eviction failed'));
  };
  const maintainTimer = access || mirror ? setInterval(maintain, mirror?.maintainIntervalMs ?? PURGE_INTERVAL_MS) : undefined;
  maintainTimer?.unref();

  let closing: Promise<void> | undefined;
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
      await gcRun;
      await mirror?.close();
      await store.close();
    })();
    return closing;
  };

  return { url, host: addr.address, port: addr.port, store, log, close };
}
