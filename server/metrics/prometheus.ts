// Prometheus metrics on a listener of their own (--metrics-listen HOST:PORT, GET /metrics). Loaded
// only when that flag is given (server/serve.ts imports this module dynamically), so a registry
// without it never loads prom-client. The app reports through the ServerObserver of hooks.ts.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Counter, Gauge, Registry } from 'prom-client';
import { collectProcessMetrics } from './process-metrics.js';
import type { RegistryStore } from '../../storage/registry-store.js';
import { parseListen } from '../config.js';
import type { RouteInfo } from '../request-info.js';
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

interface Series {
  labels: { method: string; route: string; status: string };
  /** What it is counted for, to check a path's kept series against (RouteInfo.series). */
  owner: RequestStats;
  method: string;
  route: string;
  status: number;
  count: number;
  sum: number;
  /** Observations per bucket (not cumulative), the last one past the largest bound. */
  buckets: number[];
  /** Its route's byte counters. */
  bytes: { in: number; out: number };
}

type Sample = { labels: Record<string, string | number>; value: number; metricName?: string };
type Collected = { name: string; help: string; type: string; values: Sample[]; aggregator: string };

/**
 * The per-request metrics, kept in plain maps and turned into samples only when scraped: a
 * prom-client Counter.inc or Histogram.observe with labels validates and hashes them on every
 * call, several times the cost of one Map lookup on a string key, on every request. A path keeps
 * the series its last request was counted in (RouteInfo.series): the next one with the same
 * method and status is counted there without a lookup.
 */
class RequestStats {
  /** route → method → status → series: route and method are constant strings (their hashes are cached), status a number; no key string is built per request. */
  private readonly byRoute = new Map<string, Map<string, Map<number, Series>>>();
  private readonly series: Series[] = [];
  private readonly bytes = new Map<string, { in: number; out: number }>();

  record(method: string, path: RouteInfo, status: number, seconds: number, bytesIn: number, bytesOut: number): void {
    let e = path.series as Series | undefined;
    // Several apps (tests) can share a path's RouteInfo: a series is used by its own owner only.
    if (e === undefined || e.owner !== this || e.method !== method || e.status !== status || e.route !== path.route) path.series = e = this.seriesOf(method, path.route, status);
    e.count++;
    e.sum += seconds;
    let i = 0;
    while (i < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[i]!) i++;
    e.buckets[i]!++;
    e.bytes.in += bytesIn;
    e.bytes.out += bytesOut;
  }

  private seriesOf(method: string, route: string, status: number): Series {
    let methods = this.byRoute.get(route);
    if (!methods) this.byRoute.set(route, (methods = new Map()));
    let statuses = methods.get(method);
    if (!statuses) methods.set(method, (statuses = new Map()));
    let e = statuses.get(status);
    if (!e) {
      let bytes = this.bytes.get(route);
      if (!bytes) this.bytes.set(route, (bytes = { in: 0, out: 0 }));
      e = { labels: { method, route, status: String(status) }, owner: this, method, route, status, count: 0, sum: 0, buckets: new Array<number>(DURATION_BUCKETS.length + 1).fill(0), bytes };
      statuses.set(status, e);
      this.series.push(e);
    }
    return e;
  }

  /** Registers the four metrics with `registry` (prom-client takes any object with name and get()). */
  register(registry: Registry): void {
    const metric = (name: string, help: string, type: string, values: () => Sample[]) =>
      registry.registerMetric({ name, help, type, aggregator: 'sum', get: async (): Promise<Collected> => ({ name, help, type, values: values(), aggregator: 'sum' }) } as unknown as Parameters<Registry['registerMetric']>[0]);
    metric('berth_http_requests_total', 'HTTP requests answered, by method, route pattern and status', 'counter', () => this.series.map((e) => ({ labels: e.labels, value: e.count })));
    metric('berth_http_request_duration_seconds', 'Time from the request headers to the last byte of the answer', 'histogram', () => {
      const out: Sample[] = [];
      for (const e of this.series) {
        let cumulative = 0;
        DURATION_BUCKETS.forEach((le, i) => {
          cumulative += e.buckets[i]!;
          out.push({ metricName: 'berth_http_request_duration_seconds_bucket', labels: { le, ...e.labels }, value: cumulative });
        });
        out.push({ metricName: 'berth_http_request_duration_seconds_bucket', labels: { le: '+Inf', ...e.labels }, value: e.count });
        out.push({ metricName: 'berth_http_request_duration_seconds_sum', labels: e.labels, value: e.sum });
        out.push({ metricName: 'berth_http_request_duration_seconds_count', labels: e.labels, value: e.count });
      }
      return out;
    });
    const byRoute = (pick: (b: { in: number; out: number }) => number) => () => [...this.bytes.entries()].filter(([, b]) => pick(b) > 0).map(([route, b]) => ({ labels: { route }, value: pick(b) }));
    metric('berth_http_request_bytes_total', 'Request body bytes received, by route pattern', 'counter', byRoute((b) => b.in));
    metric('berth_http_response_bytes_total', 'Response body bytes sent, by route pattern', 'counter', byRoute((b) => b.out));
  }
}

export async function startMetrics(listen: string, store: RegistryStore, log: Logger): Promise<RunningMetrics> {
  const registry = new Registry();
  const stopProcessMetrics = collectProcessMetrics(registry);

  const requests = new RequestStats();
  requests.register(registry);
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
  const notifyQueued = new Counter({ name: 'berth_notifications_queued_total', help: 'Webhook events queued, by endpoint', labelNames: ['endpoint'] as const, registers: [registry] });
  const notifySent = new Counter({ name: 'berth_notifications_sent_total', help: 'Webhook events delivered (answered 2xx or 3xx), by endpoint', labelNames: ['endpoint'] as const, registers: [registry] });
  const notifyFailed = new Counter({ name: 'berth_notifications_failed_total', help: 'Webhook delivery attempts that failed and will be retried, by endpoint', labelNames: ['endpoint'] as const, registers: [registry] });
  let readQueues: (() => Promise<Array<[string, number]>>) | undefined;
  new Gauge({
    name: 'berth_notifications_pending',
    help: 'Webhook events queued and not yet delivered, by endpoint (read from the metadata when scraped)',
    labelNames: ['endpoint'] as const,
    registers: [registry],
    async collect() {
      if (!readQueues) return;
      for (const [endpoint, n] of await readQueues()) this.set({ endpoint }, n);
    },
  });
  const retentionRuns = new Counter({ name: 'berth_retention_runs_total', help: 'Retention runs of this process (each before a garbage collection)', registers: [registry] });
  const retentionTags = new Counter({ name: 'berth_retention_removed_tags_total', help: 'Tags removed by retention rules', registers: [registry] });
  const retentionManifests = new Counter({ name: 'berth_retention_removed_manifests_total', help: 'Manifests removed by retention rules', registers: [registry] });
  const retentionBlobs = new Counter({ name: 'berth_retention_unlinked_blobs_total', help: 'Blob links removed with the manifests retention removed (content freed by the GC that follows)', registers: [registry] });
  // Namespace usage: the metadata's counters (storage/quota.ts), read when scraped, one read of
  // them all (shared by the two gauges of one scrape); every replica reports the same values.
  let usageRead: { at: number; read: ReturnType<RegistryStore['quotaUsage']> } | undefined;
  const readUsage = (): ReturnType<RegistryStore['quotaUsage']> => {
    if (!usageRead || Date.now() - usageRead.at > 1000) usageRead = { at: Date.now(), read: store.quotaUsage() };
    return usageRead.read;
  };
  new Gauge({
    name: 'berth_namespace_usage_bytes',
    help: 'Bytes of the distinct blobs and manifests linked into the repositories of each namespace (read from the metadata when scraped)',
    labelNames: ['namespace'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const u of await readUsage()) this.set({ namespace: u.namespace }, u.usedBytes);
    },
  });
  new Gauge({
    name: 'berth_namespace_quota_bytes',
    help: 'Quota of each namespace that has one, in bytes',
    labelNames: ['namespace'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const u of await readUsage()) if (u.limitBytes !== undefined) this.set({ namespace: u.namespace }, u.limitBytes);
    },
  });
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
    request(method, path, status, seconds, bytesIn, bytesOut) {
      requests.record(method, path, status, seconds, bytesIn, bytesOut);
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
    retentionDone(r) {
      retentionRuns.inc();
      retentionTags.inc(r.removedTags);
      retentionManifests.inc(r.removedManifests);
      retentionBlobs.inc(r.unlinkedBlobs);
    },
    mirror: {
      hit: (kind) => mirrorHits.inc({ kind }),
      miss: (kind) => mirrorMisses.inc({ kind }),
      upstreamError: (kind) => mirrorErrors.inc({ kind }),
    },
    notifications: {
      queued: (endpoint, n) => notifyQueued.inc({ endpoint }, n),
      sent: (endpoint) => notifySent.inc({ endpoint }),
      failed: (endpoint) => notifyFailed.inc({ endpoint }),
      queueLengths: (read) => (readQueues = read),
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
      stopProcessMetrics();
      stopped = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await Promise.all([closed, counting]);
    },
  };
}
