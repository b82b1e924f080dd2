// What the rest of the server tells the metrics module (server/metrics/prometheus.ts). This file
// imports nothing: with metrics off (the default) the app holds `undefined` instead of an
// observer, prom-client is never loaded, and each call site costs one `?.` on undefined.
import type { GcResult } from '../../storage/gc.js';
import type { RetentionResult } from '../../storage/retention.js';
import type { RouteInfo } from '../request-info.js';

/** Pull-through mirror events (server/proxy/mirror.ts): passed in, so the mirror knows no metrics library. */
export interface MirrorHooks {
  /** Served from the cache without downloading it (a tag within its TTL or revalidated unchanged, content by digest). */
  hit(kind: 'manifest' | 'blob'): void;
  /** Not cached (or the tag moved): fetched from upstream. */
  miss(kind: 'manifest' | 'blob'): void;
  /** Upstream unreachable or answering a server error. */
  upstreamError(kind: 'manifest' | 'blob'): void;
}

/** Webhook notifications (server/notifications/), per endpoint name. */
export interface NotificationMetrics {
  queued(endpoint: string, n: number): void;
  /** Delivered (the endpoint accepted it). */
  sent(endpoint: string): void;
  /** A delivery attempt that failed (the event stays queued for a retry). */
  failed(endpoint: string): void;
  /** Reads the queue lengths, when the metrics are scraped. */
  queueLengths(read: () => Promise<Array<[string, number]>>): void;
}

export interface ServerObserver {
  /**
   * One finished request (health checks excluded), of `path`'s route pattern
   * (server/request-info.ts; its label is never a repository name or digest, and the metrics keep
   * the path's series in its slot). Arguments, not an object: this runs on every request.
   */
  request(method: string, path: RouteInfo, status: number, seconds: number, bytesIn: number, bytesOut: number): void;
  /** A blob upload request (POST with a body, PATCH, PUT of uploads) started (+1) or ended (-1). */
  uploadsInFlight(delta: 1 | -1): void;
  /** Credentials that were given and refused (a wrong password, an invalid token). */
  authFailure(mode: 'htpasswd' | 'token'): void;
  /** A garbage collection of this process finished. */
  gcDone(r: GcResult): void;
  /** A retention run of this process finished (before its GC). */
  retentionDone(r: RetentionResult): void;
  mirror: MirrorHooks;
  notifications: NotificationMetrics;
}
