// The `notifications:` section of the config file, with distribution's key names
// (docs/content/about/configuration.md#notifications) so a reference registry's section carries over.
import { configBool, configMapping, configNumber, configString } from '../config-values.js';

export type EventAction = 'push' | 'pull' | 'delete' | 'mount';
export const EVENT_ACTIONS: readonly EventAction[] = ['push', 'pull', 'delete', 'mount'];

export interface NotificationEndpoint {
  name: string;
  url: string;
  /** Static headers of every request, each name with its list of values (distribution's http.Header). */
  headers: Record<string, string[]>;
  timeoutMs: number;
  /** Failed deliveries retried `backoffMs` apart before the wait starts doubling. */
  threshold: number;
  backoffMs: number;
  /** The longest wait between two attempts. */
  maxBackoffMs: number;
  ignoreMediaTypes: string[];
  ignoreActions: EventAction[];
}

export interface NotificationsConfig {
  endpoints: NotificationEndpoint[];
  /** `events.includereferences`: manifest events list the descriptors the manifest references. */
  includeReferences: boolean;
}

export const DEFAULT_TIMEOUT_MS = 1000;
export const DEFAULT_THRESHOLD = 10;
export const DEFAULT_BACKOFF_MS = 1000;
export const DEFAULT_MAX_BACKOFF_MS = 5 * 60 * 1000;

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A Go duration as distribution reads it ("500ms", "1m30s", "1.5s"); a bare number is nanoseconds,
 * as in Go. Returns milliseconds.
 */
export function parseDuration(v: unknown, what: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0) throw new Error(`${what} must be a duration such as 500ms or 2s, got ${JSON.stringify(v)}`);
    return v / 1e6;
  }
  if (typeof v !== 'string' || !/^(\d+(\.\d+)?(ns|us|µs|μs|ms|s|m|h))+$/.test(v)) throw new Error(`${what} must be a duration such as 500ms or 2s, got ${JSON.stringify(v)}`);
  let ms = 0;
  for (const m of v.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|μs|ms|s|m|h)/g)) ms += Number(m[1]) * UNITS[m[2]!]!;
  return ms;
}

function stringList(v: unknown, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error(`${what} must be a list of strings`);
  return v as string[];
}

/** Header values as distribution takes them: a list per name (a lone string is accepted too). */
function headerMap(v: unknown, what: string): Record<string, string[]> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`${what} must be a mapping of header names to lists of values`);
  const out: Record<string, string[]> = {};
  for (const [k, raw] of Object.entries(v as Record<string, unknown>)) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k)) throw new Error(`${what}: ${JSON.stringify(k)} is not a header name`);
    const values = typeof raw === 'string' ? [raw] : stringList(raw, `${what}.${k}`);
    // The value is not quoted in the message: it may be a secret (Authorization).
    if (values.some((x) => /[\r\n\0]/.test(x))) throw new Error(`${what}.${k}: a value holds a line break or NUL`);
    out[k] = values;
  }
  return out;
}

/** Milliseconds of at least 1, else an error naming the key. */
function positiveMs(ms: number | undefined, fallback: number, what: string): number {
  if (ms === undefined) return fallback;
  if (ms < 1) throw new Error(`${what} must be at least 1ms`);
  return ms;
}

export function parseNotificationsSection(raw: unknown, path: string): NotificationsConfig | undefined {
  if (raw === undefined || raw === null) return undefined;
  const o = configMapping(raw, path, 'notifications', ['endpoints', 'events']);
  const events = configMapping(o.events ?? {}, path, 'notifications.events', ['includereferences']);
  if (o.endpoints !== undefined && o.endpoints !== null && !Array.isArray(o.endpoints)) throw new Error(`${path}: notifications.endpoints must be a list`);
  const endpoints: NotificationEndpoint[] = [];
  const names = new Set<string>();
  for (const [i, rawEndpoint] of ((o.endpoints as unknown[] | undefined) ?? []).entries()) {
    const at = `${path}: notifications.endpoints[${i}]`;
    const e = configMapping(rawEndpoint, path, `notifications.endpoints[${i}]`, ['name', 'disabled', 'url', 'headers', 'timeout', 'threshold', 'backoff', 'maxbackoff', 'ignoredmediatypes', 'ignore']);
    const name = configString(e.name, `${at}.name`);
    // The name keys the endpoint's queue in the metadata and labels its metrics.
    if (!name || !/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$/.test(name)) throw new Error(`${at}.name must be 1-100 letters, digits and . _ : @ - (starting with a letter or digit), got ${JSON.stringify(name)}`);
    if (names.has(name)) throw new Error(`${at}.name: ${name} is named twice`);
    names.add(name);
    if (configBool(e.disabled, `${at}.disabled`)) continue;
    const url = configString(e.url, `${at}.url`);
    let parsed: URL | undefined;
    try {
      parsed = url ? new URL(url) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) throw new Error(`${at}.url must be an http:// or https:// URL`);
    const ignore = configMapping(e.ignore ?? {}, path, `notifications.endpoints[${i}].ignore`, ['mediatypes', 'actions']);
    const actions = stringList(ignore.actions, `${at}.ignore.actions`);
    for (const a of actions) if (!EVENT_ACTIONS.includes(a as EventAction)) throw new Error(`${at}.ignore.actions: ${JSON.stringify(a)} is not one of ${EVENT_ACTIONS.join(', ')}`);
    const backoffMs = positiveMs(parseDuration(e.backoff, `${at}.backoff`), DEFAULT_BACKOFF_MS, `${at}.backoff`);
    const maxBackoffMs = positiveMs(parseDuration(e.maxbackoff, `${at}.maxbackoff`), Math.max(DEFAULT_MAX_BACKOFF_MS, backoffMs), `${at}.maxbackoff`);
    if (maxBackoffMs < backoffMs) throw new Error(`${at}.maxbackoff must not be shorter than backoff`);
    const threshold = configNumber(e.threshold, `${at}.threshold`);
    endpoints.push({
      name,
      url: parsed.href,
      headers: headerMap(e.headers, `${at}.headers`),
      timeoutMs: positiveMs(parseDuration(e.timeout, `${at}.timeout`), DEFAULT_TIMEOUT_MS, `${at}.timeout`),
      threshold: threshold === undefined || threshold === 0 ? DEFAULT_THRESHOLD : Math.floor(threshold),
      backoffMs,
      maxBackoffMs,
      ignoreMediaTypes: [...stringList(e.ignoredmediatypes, `${at}.ignoredmediatypes`), ...stringList(ignore.mediatypes, `${at}.ignore.mediatypes`)],
      ignoreActions: actions as EventAction[],
    });
  }
  return { endpoints, includeReferences: configBool(events.includereferences, `${path}: notifications.events.includereferences`) ?? false };
}

/** Where an endpoint is, for logs: scheme, host and path, never credentials or the query string. */
export function describeEndpoint(e: NotificationEndpoint): string {
  const u = new URL(e.url);
  return `${e.name} (${u.protocol}//${u.host}${u.pathname})`;
}

/**
 * The wait after the `attempts`-th failed delivery in a row: `backoff` for the first `threshold`
 * failures, then doubling with each further failure up to `maxBackoff`.
 */
export function retryDelayMs(e: NotificationEndpoint, attempts: number): number {
  const doublings = Math.max(0, attempts - e.threshold);
  return Math.min(e.maxBackoffMs, e.backoffMs * 2 ** Math.min(doublings, 40));
}
