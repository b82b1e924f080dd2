// `berth serve`: flags over environment over config file over defaults (server/config.ts). The
// command line (parsing, help, usage errors) is bin/commands.ts's; this module declares the flags.
import { InvalidArgumentError, type Command } from 'commander';
import { DEFAULT_CONFIG, loadConfig, type ConfigOverrides } from './config.js';
import { parseAuthMode, parseLimit } from './auth/config.js';
import { addStorageOptions, storageOverrides, type StorageFlags } from './storage-options.js';

function byteSize(v: string): number {
  const m = /^(\d+)([kmgt]i?b?)?$/i.exec(v.trim());
  if (!m) throw new InvalidArgumentError('expected a size such as 4194304, 4m or 2g');
  const unit = (m[2] ?? '').toLowerCase()[0];
  const mult = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : unit === 't' ? 1024 ** 4 : 1;
  return Number(m[1]) * mult;
}

function hours(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number of hours');
  return n;
}

/** Declares `berth serve`'s flags and action on `cmd`; its subcommands (user, retention) are bin/commands.ts's. */
export function defineServe(cmd: Command): void {
  addStorageOptions(cmd)
    .description('Run the registry: the OCI Distribution / Docker Registry v2 API, data on this machine.\nUsers of --auth htpasswd|token: berth serve user add|passwd|rm|ls (see berth serve user --help).\nRetention rules of the config file, once: berth serve retention [--dry-run] (see berth serve retention --help).')
    .option('--listen <host:port>', `address to listen on (env BERTH_LISTEN; default ${DEFAULT_CONFIG.listen})`)
    .option('--delete', 'allow DELETE of manifests, tags and blobs (env BERTH_DELETE; default on)')
    .option('--no-delete', 'refuse DELETE with 405 UNSUPPORTED')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (env BERTH_LOG_LEVEL; default info)')
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (env BERTH_TLS_CERT)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert (env BERTH_TLS_KEY)')
    .option('--max-manifest-size <bytes>', 'largest manifest accepted, 413 above (env BERTH_MAX_MANIFEST_BYTES; default 4m)', byteSize)
    .option('--max-blob-size <bytes>', 'largest blob accepted, 413 above; 0 = no limit (env BERTH_MAX_BLOB_BYTES; default 0)', byteSize)
    .option('--upload-purge-hours <hours>', 'remove upload sessions idle this long (env BERTH_UPLOAD_PURGE_HOURS; default 168)', hours)
    .option('--gc-interval-hours <hours>', 'collect unreferenced blobs this often; 0 = never (env BERTH_GC_INTERVAL_HOURS; default 24)', (v) => (v === '0' ? 0 : hours(v)))
    .option('--gc-grace-minutes <minutes>', 'keep unreferenced content committed or linked this recently (env BERTH_GC_GRACE_MINUTES; default 60)', (v) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number of minutes, 0 or more');
      return n;
    })
    .option('--tls-self-signed', 'serve HTTPS with a self-signed certificate for localhost, made in <data>/tls on first start (env BERTH_TLS_SELF_SIGNED)')
    .option('--auth <mode>', 'none|htpasswd|token (env BERTH_AUTH; default none); see docs/server.md#authentication')
    .option('--htpasswd <file>', 'users file, bcrypt (htpasswd -B or berth serve user add) (env BERTH_HTPASSWD)')
    .option('--acl <file>', 'access rules, JSON {"access":[{"account","name","actions"}]} (env BERTH_ACL; default: users may do everything)')
    .option('--anonymous-pull', 'let unauthenticated clients pull (env BERTH_ANONYMOUS_PULL)')
    .option('--auth-limit-failures <n>', 'failed logins from one address within the window before it gets 429; 0 = no limit (env BERTH_AUTH_LIMIT_FAILURES; default 10)')
    .option('--auth-limit-window <seconds>', 'window of --auth-limit-failures (env BERTH_AUTH_LIMIT_WINDOW_SECONDS; default 60)')
    .option('--token-realm <url>', "realm announced in Bearer challenges (default: this server's /token)")
    .option('--token-service <name>', 'service name of Bearer challenges and token audience (default berth)')
    .option('--token-keys <dir>', 'folder of the token signing keys, shared by replicas (env BERTH_TOKEN_KEYS; default <data>/auth/keys)')
    .option('--proxy-remote-url <url>', 'mirror mode: pull-through cache of this registry (env BERTH_PROXY_REMOTE_URL)')
    .option('--proxy-username <user>', 'user name at the upstream registry (env BERTH_PROXY_USERNAME)')
    .option('--proxy-password <password>', 'password at the upstream registry; prefer env BERTH_PROXY_PASSWORD or the config file')
    .option('--proxy-tag-ttl <seconds>', 'serve a cached tag this long before asking upstream again (default 300)', Number)
    .option('--proxy-evict-hours <hours>', 'remove cached content unused this long; 0 keeps it (default 168)', Number)
    .option('--metrics-listen <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics, a listener of their own (env BERTH_METRICS_LISTEN; default off)')
    .option('--quota-default <bytes>', 'bytes every namespace may hold unless the config file (quotas:) gives it a limit of its own; 0 = none (env BERTH_QUOTA_DEFAULT; default none)', byteSize)
    .option('--ui', 'serve the web UI at / (env BERTH_UI; default on)')
    .option('--no-ui', 'no web UI: only the registry API')
    .option('--s3-redirect', 'blob GETs answer 307 to a pre-signed URL (env BERTH_S3_REDIRECT; default on)')
    .option('--no-s3-redirect', 'blob GETs stream the bytes through the registry')
    .action(() => serve(cmd));
}

async function serve(program: Command): Promise<number> {
  const o = program.opts<StorageFlags & {
    listen?: string;
    delete?: boolean;
    logLevel?: string;
    tlsCert?: string;
    tlsKey?: string;
    maxManifestSize?: number;
    maxBlobSize?: number;
    uploadPurgeHours?: number;
    gcIntervalHours?: number;
    gcGraceMinutes?: number;
    tlsSelfSigned?: boolean;
    auth?: string;
    htpasswd?: string;
    acl?: string;
    anonymousPull?: boolean;
    authLimitFailures?: string;
    authLimitWindow?: string;
    tokenRealm?: string;
    tokenService?: string;
    tokenKeys?: string;
    proxyRemoteUrl?: string;
    proxyUsername?: string;
    proxyPassword?: string;
    proxyTagTtl?: number;
    proxyEvictHours?: number;
    metricsListen?: string;
    quotaDefault?: number;
  }>();
  // commander defaults --delete to true because of --no-delete; only an explicit flag overrides.
  const given = (key: 'delete' | 'ui' | 's3Redirect') => (program.getOptionValueSource(key) === 'cli' ? (program.getOptionValue(key) as boolean) : undefined);
  const s3RedirectFlag = given('s3Redirect');
  const deleteFlag = given('delete');
  const uiFlag = given('ui');
  const flags: ConfigOverrides = {
    ...storageOverrides(o, { s3Redirect: s3RedirectFlag }),
    listen: o.listen,
    delete: deleteFlag,
    logLevel: o.logLevel,
    tlsCert: o.tlsCert,
    tlsKey: o.tlsKey,
    maxManifestBytes: o.maxManifestSize,
    maxBlobBytes: o.maxBlobSize,
    purgeAfterHours: o.uploadPurgeHours,
    gcIntervalHours: o.gcIntervalHours,
    gcGraceMinutes: o.gcGraceMinutes,
    tlsSelfSigned: o.tlsSelfSigned,
    auth: {
      mode: o.auth === undefined ? undefined : parseAuthMode(o.auth, '--auth'),
      htpasswd: o.htpasswd,
      acl: o.acl,
      anonymousPull: o.anonymousPull,
      limit: parseLimit({ failures: o.authLimitFailures, windowSeconds: o.authLimitWindow }, { failures: '--auth-limit-failures', windowSeconds: '--auth-limit-window', addresses: '' }),
      token: { realm: o.tokenRealm, service: o.tokenService, keysDir: o.tokenKeys },
    },
    metricsListen: o.metricsListen,
    quotaDefault: o.quotaDefault,
    ui: uiFlag,
    proxy: { remoteUrl: o.proxyRemoteUrl, username: o.proxyUsername, password: o.proxyPassword, tagTtlSeconds: o.proxyTagTtl, evictAfterHours: o.proxyEvictHours },
  };
  let registry;
  try {
    const config = await loadConfig({ file: o.config, flags });
    const { startRegistry } = await import('./serve.js');
    registry = await startRegistry(config);
  } catch (e) {
    // Bad configuration (a missing bucket, wrong credentials, an unreachable database, a bad
    // flag value) is one line and exit code 1, never a stack trace.
    process.stderr.write(`berth serve: ${(e as Error).message.split('\n')[0]}\n`);
    return 1;
  }
  const config = registry.config;
  registry.log.info({ url: registry.url, listen: config.listen, data: config.data, delete: config.delete, tls: Boolean(config.tls), auth: config.auth?.mode ?? 'none', mirrorOf: config.proxy?.remoteUrl, storage: config.storage.driver, metadata: registry.store.meta.kind, metrics: registry.metricsUrl }, 'berth registry listening');

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      registry.log.info({ signal }, 'stopping: finishing in-flight requests');
      registry.close().then(
        () => resolve(0),
        (err) => {
          registry.log.error({ err }, 'error while stopping');
          resolve(1);
        },
      );
    };
    // An operator (or a test) asks for one garbage collection now: kill -USR2 <pid>.
    process.on('SIGUSR2', () => registry.collectGarbage());
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
