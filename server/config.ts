// berth serve configuration: defaults < config file (YAML or JSON) < environment < flags.
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { configBool, configMapping, configNumber, configString } from './config-values.js';
import { mergeAuth, parseAuthMode, parseAuthSection, parseLimit, validateAuth, DEFAULT_AUTH, type AuthConfig, type AuthOverrides } from './auth/config.js';
import { mergeProxy, parseProxySection, validateProxy, type ProxyConfig, type ProxyOverrides } from './proxy/config.js';
import { parseNotificationsSection, type NotificationsConfig } from './notifications/config.js';
import { parseQuotasSection, parseRetentionSection, parseSize } from './policy-config.js';
import type { QuotaConfig } from '../storage/quota.js';
import type { RetentionRule } from '../storage/retention.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface ServerConfig {
  /** HOST:PORT to listen on. */
  listen: string;
  /** Data folder: blobs, uploads and the LevelDB metadata. */
  data: string;
  /** Whether DELETE of manifests, tags and blobs is allowed (405 UNSUPPORTED when not). */
  delete: boolean;
  logLevel: LogLevel;
  /** `selfSigned`: a certificate for localhost is made in <data>/tls on first start (server/tls.ts). */
  tls?: { cert: string; key: string; selfSigned?: boolean };
  /** Access control (server/auth/); absent means none. */
  auth?: AuthConfig;
  /** Mirror mode (server/proxy/): a pull-through cache of this upstream registry. */
  proxy?: ProxyConfig;
  limits: {
    /** Largest manifest accepted (413 above); the spec asks for at least 4 MiB. */
    maxManifestBytes: number;
    /** Largest blob accepted (413 above); 0 means no limit. */
    maxBlobBytes: number;
  };
  uploads: {
    /** Upload sessions idle for longer are removed. */
    purgeAfterHours: number;
  };
  gc: {
    /** Hours between online garbage collections of unreferenced blobs; 0 disables them. */
    intervalHours: number;
    /** Content committed or linked this recently is kept even when unreferenced (it may be about to be). */
    graceMinutes: number;
  };
  /** Where blob content lives: files in `data` (fs), or an S3-compatible bucket. */
  storage: StorageConfig;
  /** PostgreSQL URL of shared metadata; absent: LevelDB in `data`. */
  metadata?: string;
  /** Prometheus metrics on their own listener (server/metrics/); absent: off, prom-client not loaded. */
  metrics?: { listen: string };
  /** The web UI at / (server/extensions/ui/); its modules load on its first request. */
  ui: boolean;
  /** Webhooks (server/notifications/): config file only; absent or no endpoint: off, not loaded. */
  notifications?: NotificationsConfig;
  /** Bytes per namespace (storage/quota.ts): config file only; absent: usage counted per first path segment, no limit. */
  quotas?: QuotaConfig;
  /** Tag retention rules (storage/retention.ts), run before each GC: config file only; absent: none. */
  retention?: RetentionRule[];
}

export type StorageConfig =
  | { driver: 'fs' }
  | {
      driver: 's3';
      bucket: string;
      /** Any S3-compatible endpoint; path-style addressing when given. Absent: AWS. */
      endpoint?: string;
      region: string;
      prefix?: string;
      /** Blob GETs answer 307 to a pre-signed URL (distribution's default) instead of proxying the bytes. */
      redirect: boolean;
    };

export interface StorageOverrides {
  driver?: string | undefined;
  bucket?: string | undefined;
  endpoint?: string | undefined;
  region?: string | undefined;
  prefix?: string | undefined;
  redirect?: boolean | undefined;
}

export const DEFAULT_CONFIG: ServerConfig = {
  listen: '0.0.0.0:5000',
  data: './data',
  delete: true,
  logLevel: 'info',
  limits: { maxManifestBytes: 4 << 20, maxBlobBytes: 0 },
  uploads: { purgeAfterHours: 168 },
  gc: { intervalHours: 24, graceMinutes: 60 },
  storage: { driver: 'fs' },
  ui: true,
};

const DEFAULT_S3_REGION = 'us-east-1';

const LOG_LEVELS: ReadonlySet<string> = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

export type ConfigOverrides = {
  listen?: string | undefined;
  data?: string | undefined;
  delete?: boolean | undefined;
  logLevel?: string | undefined;
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  maxManifestBytes?: number | undefined;
  maxBlobBytes?: number | undefined;
  purgeAfterHours?: number | undefined;
  gcIntervalHours?: number | undefined;
  gcGraceMinutes?: number | undefined;
  tlsSelfSigned?: boolean | undefined;
  auth?: AuthOverrides | undefined;
  proxy?: ProxyOverrides | undefined;
  storage?: StorageOverrides | undefined;
  metadata?: string | undefined;
  metricsListen?: string | undefined;
  ui?: boolean | undefined;
  notifications?: NotificationsConfig | undefined;
  quotas?: QuotaConfig | undefined;
  /** Flag and environment form of `quotas.default`; 0 removes it. */
  quotaDefault?: number | undefined;
  retention?: RetentionRule[] | undefined;
};

function mergeStorage(base: StorageConfig, o: StorageOverrides | undefined, source: string): StorageConfig {
  if (!o) return base;
  const driver = o.driver ?? base.driver;
  if (driver !== 'fs' && driver !== 's3') throw new Error(`${source}: storage must be fs or s3, got ${JSON.stringify(driver)}`);
  if (driver === 'fs') return { driver };
  const prev = base.driver === 's3' ? base : undefined;
  const c: StorageConfig = { driver, bucket: o.bucket ?? prev?.bucket ?? '', region: o.region ?? prev?.region ?? DEFAULT_S3_REGION, redirect: o.redirect ?? prev?.redirect ?? true };
  const endpoint = o.endpoint ?? prev?.endpoint;
  if (endpoint) c.endpoint = endpoint;
  const prefix = o.prefix ?? prev?.prefix;
  if (prefix) c.prefix = prefix;
  return c;
}

/** Keys of the config file, the environment and flags, in one shape so they layer. */
function applyOverrides(base: ServerConfig, o: ConfigOverrides, source: string): ServerConfig {
  const c: ServerConfig = { ...base, limits: { ...base.limits }, uploads: { ...base.uploads }, gc: { ...base.gc }, ...(base.tls ? { tls: { ...base.tls } } : {}) };
  if (o.listen !== undefined) c.listen = o.listen;
  if (o.data !== undefined) c.data = o.data;
  if (o.delete !== undefined) c.delete = o.delete;
  if (o.logLevel !== undefined) {
    if (!LOG_LEVELS.has(o.logLevel)) throw new Error(`${source}: log level must be one of ${[...LOG_LEVELS].join(', ')}`);
    c.logLevel = o.logLevel as LogLevel;
  }
  if (o.tlsCert !== undefined || o.tlsKey !== undefined) {
    c.tls = { cert: o.tlsCert ?? c.tls?.cert ?? '', key: o.tlsKey ?? c.tls?.key ?? '' };
  }
  if (o.maxManifestBytes !== undefined) c.limits.maxManifestBytes = o.maxManifestBytes;
  if (o.maxBlobBytes !== undefined) c.limits.maxBlobBytes = o.maxBlobBytes;
  if (o.purgeAfterHours !== undefined) c.uploads.purgeAfterHours = o.purgeAfterHours;
  if (o.gcIntervalHours !== undefined) c.gc.intervalHours = o.gcIntervalHours;
  if (o.gcGraceMinutes !== undefined) c.gc.graceMinutes = o.gcGraceMinutes;
  if (o.tlsSelfSigned) c.tls = { cert: c.tls?.cert ?? '', key: c.tls?.key ?? '', selfSigned: true };
  if (o.auth) c.auth = mergeAuth(c.auth ?? DEFAULT_AUTH, o.auth);
  const proxy = mergeProxy(c.proxy, o.proxy);
  if (proxy) c.proxy = proxy;
  // s3 settings given without --storage still mean s3 only when the driver says so.
  const storageGiven = o.storage && Object.values(o.storage).some((v) => v !== undefined);
  if (storageGiven) c.storage = mergeStorage(c.storage, { ...o.storage, driver: o.storage?.driver ?? c.storage.driver }, source);
  if (o.metadata !== undefined) c.metadata = o.metadata;
  if (o.metricsListen !== undefined) c.metrics = { listen: o.metricsListen };
  if (o.ui !== undefined) c.ui = o.ui;
  if (o.notifications !== undefined) c.notifications = o.notifications;
  if (o.quotas !== undefined) c.quotas = o.quotas;
  if (o.quotaDefault !== undefined) {
    const { default: _old, ...rest } = c.quotas ?? { namespaces: [] };
    c.quotas = o.quotaDefault > 0 ? { ...rest, default: o.quotaDefault } : rest;
  }
  if (o.retention !== undefined) c.retention = o.retention;
  return c;
}

const num = configNumber;
const bool = configBool;
const str = configString;

/** Reads a config file: `.yaml`/`.yml` as YAML, anything else as JSON. Same keys as the flags. */
export async function readConfigFile(path: string): Promise<ConfigOverrides> {
  const text = await readFile(path, 'utf8');
  let raw: unknown;
  if (/\.ya?ml$/i.test(path)) {
    const { parse } = await import('yaml');
    raw = parse(text);
  } else {
    raw = JSON.parse(text);
  }
  if (raw === null || raw === undefined) return {};
  const o = configMapping(raw, path, '', ['listen', 'data', 'delete', 'logLevel', 'tls', 'limits', 'uploads', 'gc', 'auth', 'proxy', 'storage', 's3', 'metadata', 'metrics', 'ui', 'notifications', 'quotas', 'retention']);
  const metrics = configMapping(o.metrics ?? {}, path, 'metrics', ['listen']);
  const s3 = configMapping(o.s3 ?? {}, path, 's3', ['bucket', 'endpoint', 'region', 'prefix', 'redirect']);
  const tls = (o.tls ?? {}) as Record<string, unknown>;
  const limits = (o.limits ?? {}) as Record<string, unknown>;
  const uploads = (o.uploads ?? {}) as Record<string, unknown>;
  const gc = (o.gc ?? {}) as Record<string, unknown>;
  return {
    listen: str(o.listen, `${path}: listen`),
    data: str(o.data, `${path}: data`),
    delete: bool(o.delete, `${path}: delete`),
    logLevel: str(o.logLevel, `${path}: logLevel`),
    tlsCert: str(tls.cert, `${path}: tls.cert`),
    tlsKey: str(tls.key, `${path}: tls.key`),
    maxManifestBytes: num(limits.maxManifestBytes, `${path}: limits.maxManifestBytes`),
    maxBlobBytes: num(limits.maxBlobBytes, `${path}: limits.maxBlobBytes`),
    purgeAfterHours: num(uploads.purgeAfterHours, `${path}: uploads.purgeAfterHours`),
    gcIntervalHours: num(gc.intervalHours, `${path}: gc.intervalHours`),
    gcGraceMinutes: num(gc.graceMinutes, `${path}: gc.graceMinutes`),
    tlsSelfSigned: bool(tls.selfSigned, `${path}: tls.selfSigned`),
    auth: parseAuthSection(o.auth, path),
    proxy: parseProxySection(o.proxy, path),
    storage: {
      driver: str(o.storage, `${path}: storage`),
      bucket: str(s3.bucket, `${path}: s3.bucket`),
      endpoint: str(s3.endpoint, `${path}: s3.endpoint`),
      region: str(s3.region, `${path}: s3.region`),
      prefix: str(s3.prefix, `${path}: s3.prefix`),
      redirect: bool(s3.redirect, `${path}: s3.redirect`),
    },
    metadata: str(o.metadata, `${path}: metadata`),
    metricsListen: str(metrics.listen, `${path}: metrics.listen`),
    ui: bool(o.ui, `${path}: ui`),
    notifications: parseNotificationsSection(o.notifications, path),
    quotas: parseQuotasSection(o.quotas, path),
    retention: parseRetentionSection(o.retention, path),
  };
}

export function envOverrides(env: NodeJS.ProcessEnv): ConfigOverrides {
  return {
    listen: env.BERTH_LISTEN || undefined,
    data: env.BERTH_DATA || undefined,
    delete: bool(env.BERTH_DELETE, 'BERTH_DELETE'),
    logLevel: env.BERTH_LOG_LEVEL || undefined,
    tlsCert: env.BERTH_TLS_CERT || undefined,
    tlsKey: env.BERTH_TLS_KEY || undefined,
    maxManifestBytes: num(env.BERTH_MAX_MANIFEST_BYTES, 'BERTH_MAX_MANIFEST_BYTES'),
    maxBlobBytes: num(env.BERTH_MAX_BLOB_BYTES, 'BERTH_MAX_BLOB_BYTES'),
    purgeAfterHours: num(env.BERTH_UPLOAD_PURGE_HOURS, 'BERTH_UPLOAD_PURGE_HOURS'),
    gcIntervalHours: num(env.BERTH_GC_INTERVAL_HOURS, 'BERTH_GC_INTERVAL_HOURS'),
    gcGraceMinutes: num(env.BERTH_GC_GRACE_MINUTES, 'BERTH_GC_GRACE_MINUTES'),
    tlsSelfSigned: bool(env.BERTH_TLS_SELF_SIGNED, 'BERTH_TLS_SELF_SIGNED'),
    auth: {
      mode: env.BERTH_AUTH ? parseAuthMode(env.BERTH_AUTH, 'BERTH_AUTH') : undefined,
      htpasswd: env.BERTH_HTPASSWD || undefined,
      acl: env.BERTH_ACL || undefined,
      anonymousPull: bool(env.BERTH_ANONYMOUS_PULL, 'BERTH_ANONYMOUS_PULL'),
      limit: parseLimit(
        { failures: env.BERTH_AUTH_LIMIT_FAILURES, windowSeconds: env.BERTH_AUTH_LIMIT_WINDOW_SECONDS, addresses: env.BERTH_AUTH_LIMIT_ADDRESSES },
        { failures: 'BERTH_AUTH_LIMIT_FAILURES', windowSeconds: 'BERTH_AUTH_LIMIT_WINDOW_SECONDS', addresses: 'BERTH_AUTH_LIMIT_ADDRESSES' },
      ),
      token: { keysDir: env.BERTH_TOKEN_KEYS || undefined },
    },
    proxy: {
      remoteUrl: env.BERTH_PROXY_REMOTE_URL || undefined,
      username: env.BERTH_PROXY_USERNAME || undefined,
      password: env.BERTH_PROXY_PASSWORD || undefined,
    },
    storage: {
      driver: env.BERTH_STORAGE || undefined,
      bucket: env.BERTH_S3_BUCKET || undefined,
      endpoint: env.BERTH_S3_ENDPOINT || undefined,
      region: env.BERTH_S3_REGION || undefined,
      prefix: env.BERTH_S3_PREFIX || undefined,
      redirect: bool(env.BERTH_S3_REDIRECT, 'BERTH_S3_REDIRECT'),
    },
    metadata: env.BERTH_METADATA || undefined,
    metricsListen: env.BERTH_METRICS_LISTEN || undefined,
    ui: bool(env.BERTH_UI, 'BERTH_UI'),
    quotaDefault: parseSize(env.BERTH_QUOTA_DEFAULT || undefined, 'BERTH_QUOTA_DEFAULT'),
  };
}

export async function loadConfig(opts: { file?: string | undefined; env?: NodeJS.ProcessEnv; flags?: ConfigOverrides }): Promise<ServerConfig> {
  let c = DEFAULT_CONFIG;
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.BERTH_SERVE_CONFIG;
  if (file) c = applyOverrides(c, await readConfigFile(file), file);
  c = applyOverrides(c, envOverrides(env), 'environment');
  if (opts.flags) c = applyOverrides(c, opts.flags, 'flags');
  return validateConfig({ ...c, data: resolve(c.data) });
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`listen address must be HOST:PORT (e.g. 0.0.0.0:5000 or 127.0.0.1:0), got ${JSON.stringify(listen)}`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export function validateConfig(c: ServerConfig): ServerConfig {
  parseListen(c.listen);
  if (c.metrics) {
    try {
      parseListen(c.metrics.listen);
    } catch (e) {
      throw new Error(`metrics: ${(e as Error).message}`);
    }
  }
  if (c.tls?.selfSigned) c = { ...c, tls: { selfSigned: true, cert: c.tls.cert || join(c.data, 'tls', 'self-signed.crt'), key: c.tls.key || join(c.data, 'tls', 'self-signed.key') } };
  if (c.auth) validateAuth(c.auth);
  if (c.proxy) validateProxy(c.proxy);
  if (c.tls && (!c.tls.cert || !c.tls.key)) throw new Error('TLS needs both a certificate and a key (--tls-cert and --tls-key)');
  if (c.limits.maxManifestBytes < 1024) throw new Error('limits.maxManifestBytes must be at least 1024');
  if (c.storage.driver === 's3') {
    if (!c.storage.bucket) throw new Error('--storage s3 needs a bucket (--s3-bucket, BERTH_S3_BUCKET or s3.bucket)');
    if (c.storage.endpoint && !/^https?:\/\/[^/]+/.test(c.storage.endpoint)) throw new Error(`--s3-endpoint must be an http:// or https:// URL, got ${JSON.stringify(c.storage.endpoint)}`);
    if (c.storage.prefix !== undefined && !/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(c.storage.prefix)) throw new Error(`--s3-prefix must be key segments of letters, digits, '.', '_', '-' joined by '/', got ${JSON.stringify(c.storage.prefix)}`);
  }
  if (c.metadata !== undefined && !/^postgres(ql)?:\/\//.test(c.metadata)) throw new Error('--metadata must be a postgres:// URL (LevelDB in the data folder is the default)');
  return c;
}
