// Webhook notifications, with distribution's event envelope (notifications/event.go) and endpoint
// settings. Loaded only when the config file has a `notifications:` section (server/serve.ts).
//
// An event is queued in the metadata (storage/registry-metadata.ts: one queue per endpoint) before
// the request that caused it is answered; a manifest push queues its events in the manifest's own
// write. A deliverer per endpoint sends the queue in order, one event per request as distribution
// does, off the request path; an event leaves the queue only once the endpoint accepted it (2xx or
// 3xx), so a restart or a crash loses none (one cut off mid-delivery is sent again: receivers
// dedupe by `id`). With shared metadata one replica at a time delivers each endpoint's queue
// (meta.runJob: an advisory lock), so an event is sent once and in order; the others poll.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { NotificationWrite, RegistryMetadata } from '../../storage/registry-metadata.js';
import type { RegistryContext } from '../context.js';
import type { NotificationMetrics } from '../metrics/hooks.js';
import { describeEndpoint, retryDelayMs, type EventAction, type NotificationEndpoint, type NotificationsConfig } from './config.js';
import type { EventTarget, ManifestPushed, RequestNotifier } from './hooks.js';

/** distribution 2.x's envelope type; 3.x sends the same fields as `events.v2+json`. */
export const EVENTS_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v1+json';
/** What distribution's blob descriptors say: the type ignore lists use to drop blob events. */
export const BLOB_MEDIA_TYPE = 'application/octet-stream';

/** Events read from a queue at a time. */
const BATCH = 32;
/** With shared metadata: how often an idle replica looks for events another replica queued. */
const SHARED_POLL_MS = 1000;

export interface Notifier extends RequestNotifier {
  /** Starts delivering what is queued (events left by a previous run included); `port` is the registry's, for `source.addr`. */
  start(port: number): void;
  /** Stops the deliverers: an attempt in flight is abandoned and stays queued. */
  close(): Promise<void>;
}

interface Source {
  addr: string;
  instanceID: string;
}

type Outcome = { ok: true } | { ok: false; error: string } | 'aborted';

/** Sends one endpoint's queue, in order, with retries and backoff. */
class Deliverer {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private readonly stop = new AbortController();

  constructor(
    readonly endpoint: NotificationEndpoint,
    private readonly meta: RegistryMetadata,
    private readonly log: Logger,
    private readonly metrics: NotificationMetrics | undefined,
  ) {}

  /** Delivers now (or right after the pass in progress). */
  wake(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    this.running = this.run().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  private later(ms: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.wake(), Math.max(0, ms));
    this.timer.unref();
  }

  private async run(): Promise<void> {
    try {
      const done = await this.meta.runJob(`notify:${this.endpoint.name}`, () => this.drain());
      // Another replica delivers this queue now; look again later in case it stops.
      if (done === undefined) this.later(SHARED_POLL_MS);
    } catch (err) {
      this.log.warn({ err, endpoint: this.endpoint.name }, 'notifications: reading the queue failed');
      this.later(Math.max(this.endpoint.backoffMs, 1000));
    }
  }

  private async drain(): Promise<true> {
    const name = this.endpoint.name;
    for (;;) {
      if (this.closed) return true;
      const batch = await this.meta.pendingNotifications(name, BATCH);
      if (batch.length === 0) {
        // Events another replica queued (or left behind when it died) are found by polling.
        if (this.meta.shared) this.later(SHARED_POLL_MS);
        return true;
      }
      for (const n of batch) {
        if (this.closed) return true;
        const wait = n.notBefore - Date.now();
        if (wait > 0) {
          this.later(wait);
          return true;
        }
        const outcome = await this.post(n.event);
        if (outcome === 'aborted') return true;
        if (outcome.ok) {
          await this.meta.removeNotification(name, n.id);
          this.metrics?.sent(name);
          continue;
        }
        const attempts = n.attempts + 1;
        const delay = retryDelayMs(this.endpoint, attempts);
        await this.meta.deferNotification(name, n.id, attempts, Date.now() + delay);
        this.metrics?.failed(name);
        this.log.warn({ endpoint: name, attempts, retryInMs: Math.round(delay), error: outcome.error }, 'notification delivery failed');
        this.later(delay);
        return true;
      }
    }
  }

  /** One POST of one event in distribution's envelope; any 2xx or 3xx is accepted (notifications.md#responses). */
  private async post(event: string): Promise<Outcome> {
    const e = this.endpoint;
    const attempt = new AbortController();
    const onStop = () => attempt.abort();
    this.stop.signal.addEventListener('abort', onStop);
    const timer = setTimeout(() => attempt.abort(), e.timeoutMs);
    try {
      const headers = new Headers({ 'Content-Type': EVENTS_MEDIA_TYPE, 'User-Agent': 'berth-notifications' });
      for (const [k, values] of Object.entries(e.headers)) {
        headers.delete(k);
        for (const v of values) headers.append(k, v);
      }
      const res = await fetch(e.url, { method: 'POST', headers, body: `{"events":[${event}]}`, signal: attempt.signal });
      await res.arrayBuffer();
      return res.status >= 200 && res.status < 400 ? { ok: true } : { ok: false, error: `answered ${res.status}` };
    } catch (err) {
      if (this.stop.signal.aborted) return 'aborted';
      if (attempt.signal.aborted) return { ok: false, error: `no answer within ${e.timeoutMs} ms` };
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      return { ok: false, error: cause?.code ?? cause?.message ?? (err as Error).message };
    } finally {
      clearTimeout(timer);
      this.stop.signal.removeEventListener('abort', onStop);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.stop.abort();
    await this.running;
  }
}

function ignores(e: NotificationEndpoint, action: EventAction, mediaType: string | undefined): boolean {
  return e.ignoreActions.includes(action) || (mediaType !== undefined && e.ignoreMediaTypes.includes(mediaType));
}

/** distribution's RequestRecord: `addr` as Go's RemoteAddr (`[v6]:port`). */
function requestRecord(ctx: RegistryContext): Record<string, string> {
  const s = ctx.req.socket;
  const ip = s.remoteAddress ?? '';
  return {
    id: ctx.state.reqId ?? '',
    addr: `${ip.includes(':') ? `[${ip}]` : ip}:${s.remotePort ?? 0}`,
    host: ctx.host,
    method: ctx.method,
    useragent: ctx.get('User-Agent'),
  };
}

/** One event as distribution's Event marshals it, fields absent when empty. */
function eventJson(ctx: RegistryContext, action: EventAction, t: EventTarget, source: Source): string {
  const target: Record<string, unknown> = {};
  if (t.mediaType) target.mediaType = t.mediaType;
  if (t.digest) target.digest = t.digest;
  if (t.size !== undefined) {
    target.size = t.size;
    target.length = t.size;
  }
  target.repository = t.repository;
  if (t.fromRepository) target.fromRepository = t.fromRepository;
  if (t.kind && t.digest) target.url = `${ctx.protocol}://${ctx.host}/v2/${t.repository}/${t.kind === 'manifest' ? 'manifests' : 'blobs'}/${t.digest}`;
  if (t.tag) target.tag = t.tag;
  if (t.references) target.references = t.references;
  return JSON.stringify({
    id: randomUUID(),
    timestamp: new Date().toISOString(),
    action,
    target,
    request: requestRecord(ctx),
    actor: ctx.state.user ? { name: ctx.state.user } : {},
    source,
  });
}

export function createNotifier(meta: RegistryMetadata, config: NotificationsConfig, opts: { log: Logger; metrics?: NotificationMetrics }): Notifier {
  const { log, metrics } = opts;
  const deliverers = config.endpoints.map((e) => new Deliverer(e, meta, log, metrics));
  const byName = new Map(deliverers.map((d) => [d.endpoint.name, d]));
  const source: Source = { addr: hostname(), instanceID: randomUUID() };
  const wanted = new Set<EventAction>();
  for (const e of config.endpoints) for (const a of ['push', 'pull', 'delete', 'mount'] as const) if (!e.ignoreActions.includes(a)) wanted.add(a);

  /** The queue writes of `targets`: one per event and endpoint that does not ignore it. */
  const writesOf = (ctx: RegistryContext, action: EventAction, targets: EventTarget[]): NotificationWrite[] => {
    const writes: NotificationWrite[] = [];
    for (const t of targets) {
      const takers = config.endpoints.filter((e) => !ignores(e, action, t.mediaType));
      if (takers.length === 0) continue;
      const event = eventJson(ctx, action, t, source);
      for (const e of takers) writes.push({ endpoint: e.name, event });
    }
    return writes;
  };

  const queued = (writes: NotificationWrite[]): void => {
    const counts = new Map<string, number>();
    for (const w of writes) counts.set(w.endpoint, (counts.get(w.endpoint) ?? 0) + 1);
    for (const [name, n] of counts) {
      metrics?.queued(name, n);
      byName.get(name)?.wake();
    }
  };

  metrics?.queueLengths(async () => Promise.all(config.endpoints.map(async (e) => [e.name, await meta.countNotifications(e.name)] as [string, number])));

  return {
    includeReferences: config.includeReferences,
    wants: (action) => wanted.has(action),
    async record(ctx, action, targets) {
      const writes = writesOf(ctx, action, targets);
      if (writes.length === 0) return;
      try {
        await meta.enqueueNotifications(writes);
      } catch (err) {
        log.error({ err, reqId: ctx.state.reqId, action, repository: targets[0]?.repository, events: writes.length }, 'notification lost: the event could not be queued');
        return;
      }
      queued(writes);
    },
    manifestPushEvents(ctx, name) {
      let writes: NotificationWrite[] = [];
      const build = (m: ManifestPushed): NotificationWrite[] => {
        const base: EventTarget = { repository: name, kind: 'manifest', mediaType: m.mediaType, digest: m.digest, size: m.size, ...(config.includeReferences ? { references: m.references } : {}) };
        // distribution names one tag per push; a push by digest with several ?tag= is one event per tag.
        const targets = m.tags.length === 0 ? [base] : m.tags.map((tag) => ({ ...base, tag }));
        writes = writesOf(ctx, 'push', targets);
        return writes;
      };
      return { build, queued: () => queued(writes) };
    },
    start(port) {
      source.addr = `${hostname()}:${port}`;
      for (const e of config.endpoints) log.info({ endpoint: describeEndpoint(e), timeoutMs: e.timeoutMs, headers: Object.keys(e.headers) }, 'notifications: endpoint configured');
      for (const d of deliverers) d.wake();
    },
    async close() {
      await Promise.all(deliverers.map((d) => d.close()));
    },
  };
}
