// Prometheus metrics on a listener of their own (--metrics-listen HOST:PORT, GET /metrics). Loaded
// only when that flag is given (server/serve.ts imports this module dynamically), so a registry
// without it never loads prom-client. The app reports through the ServerObserver of hooks.ts.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RegistryStore } from '../../storage/registry-store.js';
import { parseListen } from '../config.js';
import type { ServerObserver } from './hooks.js';

/** How often the stored blobs and bytes are counted again (also at start and after each GC run). */
export const STORED_COUNT_INTERVAL_MS = 60 * 60 * 1000;

export interface RunningMetrics {
  observer: ServerObserver;
  /** http://HOST:PORT/metrics */
  url: string;
  registry: Registry;
  /** Counts stored blobs and bytes now (unless a count runs); resolves when that count is done. */
  countStored(): Promise<void>;
  close(): Promise<void>;
}

const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export async function startMetrics(listen: string, store: RegistryStore, log: Logger): Promise<RunningMetrics> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const requests = new Counter({ name: 'berth_http_requests_total', help: 'HTTP requests answered, by method, route pattern and status', labelNames: ['method', 'route', 'status'] as const, registers: [registry] });
  const duration = new Histogram({ name: 'berth_http_request_duration_seconds', help: 'Time from the request headers to the last byte of the answer', labelNames: ['method', 'route', 'status'] as const, buckets: DURATION_BUCKETS, registers: [registry] });
  const bytesIn = new Counter({ name: 'berth_http_request_bytes_total', help: 'Request body bytes received, by route pattern', labelNames: ['route'] as const, registers: [registry] });
  const bytesOut = new Counter({ name: 'berth_http_response_bytes_total', help: 'Response body bytes sent, by route pattern', labelNames: ['route'] as const, registers: [registry] });
  const uploads = new Gauge({ name: 'berth_uploads_in_flight', help: 'Blob upload requests (POST, PATCH, PUT of uploads) in progress', registers: [registry] });
  const storedBlobs = new Gauge({ name: 'berth_stored_blobs', help: 'Blobs in the blob store, as of berth_stored_content_counted_timestamp_seconds', registers: [registry] });
  const storedBytes = new Gauge({ name: 'berth_stored_bytes', help: 'Bytes of the blobs in the blob store, as of berth_stored_content_counted_timestamp_seconds', registers: [registry] });
  const countedAt = new Gauge({ name: 'berth_stored_content_counted_timestamp_seconds', help: 'When berth_stored_blobs and berth_stored_bytes were last counted (start, each GC run, hourly)', registers: [registry] });
  const gcRuns = new Counter({ name: 'berth_gc_runs_total', help: 'Garbage collections run by this process', registers: [registry] });
  const gcRemoved = new Counter({ name: 'berth_gc_removed_blobs_total', help: 'Blobs removed by garbage collection', registers: [registry] });
  const gcFreed = new Counter({ name: 'berth_gc_freed_bytes_total', help: 'Bytes freed by garbage collection', registers: [registry] });
  const mirrorHits = new Counter({ name: 'berth_mirror_hits_total', help: 'Mirror mode: served from the cache without downloading, by kind', labelNames: ['kind'] as const, registers: [registry] });
  const mirrorMisses = new Counter({ name: 'berth_mirror_misses_total', help: 'Mirror mode: fetched from upstream, by kind', labelNames: ['kind'] as const, registers: [registry] });
  const mirrorErrors = new Counter({ name: 'berth_mirror_upstream_errors_total', help: 'Mirror mode: upstream unreachable or answering a server error, by kind', labelNames: ['kind'] as const, registers: [registry] });
  const authFailures = new Counter({ name: 'berth_auth_failures_total', help: 'Credentials given and refused (wrong password, invalid token, refused /token request), by auth mode', labelNames: ['mode'] as const, registers: [registry] });

  // Stored content: one listing of the blob store, each blob's size from its content record in
  // the metadata (a file stat or HEAD only for content stored before those records existed).
  let stopped = false;
  let counting: Promise<void> | undefined;
  const count = async () => {
    const started = Date.now();
    let blobs = 0;
    let bytes = 0;
    for await (const digest of store.blobs.list()) {
      if (stopped) return;
      blobs++;
      bytes += (await store.meta.getContent(digest))?.size ?? (await store.blobs.stat(digest)) ?? 0;
    }
    storedBlobs.set(blobs);
    storedBytes.set(bytes);
    countedAt.set(started / 1000);
  };
  const countStored = (): Promise<void> => {
    counting ??= count()
      .catch((err: unknown) => log.warn({ err }, 'metrics: counting stored blobs failed'))
      .finally(() => (counting = undefined));
    return counting;
  };

  const observer: ServerObserver = {
    request(s) {
      const labels = { method: s.method, route: s.route, status: String(s.status) };
      requests.inc(labels);
      duration.observe(labels, s.seconds);
      if (s.bytesIn > 0) bytesIn.inc({ route: s.route }, s.bytesIn);
      if (s.bytesOut > 0) bytesOut.inc({ route: s.route }, s.bytesOut);
    },
    uploadsInFlight(delta) {
      uploads.inc(delta);
    },
    authFailure(mode) {
      authFailures.inc({ mode });
    },
    gcDone(r) {
      gcRuns.inc();
      gcRemoved.inc(r.removed);
      gcFreed.inc(r.freedBytes);
      void countStored();
    },
    mirror: {
      hit: (kind) => mirrorHits.inc({ kind }),
      miss: (kind) => mirrorMisses.inc({ kind }),
      upstreamError: (kind) => mirrorErrors.inc({ kind }),
    },
  };

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' }).end(req.method === 'HEAD' ? undefined : text),
      (err: unknown) => {
        log.warn({ err }, 'metrics: collecting failed');
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end('collecting metrics failed\n');
      },
    );
  });
  server.keepAliveTimeout = 65_000;
  const { host, port } = parseListen(listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new Error(`metrics listener ${listen}: ${e.message}`)));
    server.listen(port, host, () => resolve());
  });
  server.removeAllListeners('error');
  server.on('error', (err) => log.warn({ err }, 'metrics listener error'));
  const addr = server.address() as AddressInfo;
  const shown = addr.address === '0.0.0.0' || addr.address === '::' ? '127.0.0.1' : addr.address;
  const url = `http://${shown.includes(':') ? `[${shown}]` : shown}:${addr.port}/metrics`;

  void countStored();
  const timer = setInterval(() => void countStored(), STORED_COUNT_INTERVAL_MS);
  timer.unref();

  return {
    observer,
    url,
    registry,
    countStored,
    async close() {
      clearInterval(timer);
      stopped = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await Promise.all([closed, counting]);
    },
  };
}
