// Starting and stopping a registry: used by `berth serve`, the tests and the benchmarks.
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFile } from 'node:fs/promises';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { RegistryStore } from '../storage/registry-store.js';
import { collectGarbage } from '../storage/gc.js';
import { createApp } from './app.js';
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
  const app = createApp(store, config, log);

  let server: Server;
  if (config.tls) {
    const [cert, key] = await Promise.all([readFile(config.tls.cert), readFile(config.tls.key)]);
    server = createHttpsServer({ cert, key }, app.callback()) as unknown as Server;
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

  let closing: Promise<void> | undefined;
  const close = (graceMs = 30_000): Promise<void> => {
    closing ??= (async () => {
      clearInterval(purgeTimer);
      if (gcTimer) clearInterval(gcTimer);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      await closed;
      clearTimeout(timer);
      await gcRun;
      await store.close();
    })();
    return closing;
  };

  return { url, host: addr.address, port: addr.port, store, log, close };
}
