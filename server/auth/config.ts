import { configMapping, configNumber, configString, definedOnly } from '../config-values.js';
// Settings of access control (`auth:` in the config file) and how they layer over each other.

export type AuthMode = 'none' | 'htpasswd' | 'token';

export interface AuthConfig {
  mode: AuthMode;
  /** bcrypt users file, as written by `htpasswd -B` or `berth serve user add`. */
  htpasswd?: string;
  /** ACL JSON file; without it an authenticated user may do everything. */
  acl?: string;
  /** Unauthenticated clients may pull every repository (and list the catalog). */
  anonymousPull: boolean;
  /**
   * Repeated authentication failures from one client address (the socket's; X-Forwarded-For is
   * not trusted) are answered 429 until the window passes (server/auth/limiter.ts). Absent:
   * DEFAULT_AUTH's (on).
   */
  limit?: {
    /** Failed password checks within the window after which the address must wait; 0: no limit. */
    failures: number;
    windowSeconds: number;
    /** Addresses remembered at most (least recently failing forgotten first). */
    addresses: number;
  };
  token: {
    /** The `realm` of Bearer challenges; default: this server's own `/token`, from the request's Host. */
    realm?: string;
    /** `service` of challenges and `aud` of tokens (docker-registry-api/scope.md#audience). */
    service: string;
    /** `iss` of the tokens this server issues. */
    issuer: string;
    /** Lifetime of access tokens. */
    ttlSeconds: number;
    /** Lifetime of refresh tokens (OAuth2 `access_type=offline`, docker-registry-api/oauth.md). */
    refreshTtlSeconds: number;
    /** A new signing key is made when the newest is older; older keys stay valid while tokens they signed can live. */
    keyRotationDays: number;
    /**
     * Folder of the signing keys; default `<data>/auth/keys`. Replicas behind one load balancer
     * point it at one shared folder, so a token any of them issued verifies on every other.
     */
    keysDir?: string;
    /** Tokens of an external issuer are accepted too: its `iss` and a PEM public key or certificate file. */
    external?: { issuer: string; publicKey: string };
  };
}

export const DEFAULT_LIMIT: NonNullable<AuthConfig['limit']> = { failures: 10, windowSeconds: 60, addresses: 10_000 };

export const DEFAULT_AUTH: AuthConfig = {
  mode: 'none',
  anonymousPull: false,
  limit: DEFAULT_LIMIT,
  token: { service: 'berth', issuer: 'berth-token-service', ttlSeconds: 300, refreshTtlSeconds: 7 * 24 * 3600, keyRotationDays: 30 },
};

export type AuthOverrides = Partial<Omit<AuthConfig, 'token' | 'limit'>> & { token?: Partial<AuthConfig['token']>; limit?: Partial<NonNullable<AuthConfig['limit']>> };


export function mergeAuth(base: AuthConfig, o: AuthOverrides | undefined): AuthConfig {
  if (!o) return base;
  const { token, limit, ...rest } = o;
  return { ...base, ...definedOnly(rest), limit: { ...(base.limit ?? DEFAULT_LIMIT), ...definedOnly(limit ?? {}) }, token: { ...base.token, ...definedOnly(token ?? {}) } };
}

const MODES: ReadonlySet<string> = new Set(['none', 'htpasswd', 'token']);

export function parseAuthMode(v: string, source: string): AuthMode {
  if (!MODES.has(v)) throw new Error(`${source}: auth must be one of none, htpasswd, token; got ${JSON.stringify(v)}`);
  return v as AuthMode;
}


const str = configString;
const num = (v: unknown, what: string): number | undefined => configNumber(v, what, { positive: true });
const count = (v: unknown, what: string): number | undefined => {
  const n = configNumber(v, what);
  if (n !== undefined && !Number.isInteger(n)) throw new Error(`${what} must be a whole number, got ${JSON.stringify(v)}`);
  return n;
};

/** auth.limit values from the environment or flags (BERTH_AUTH_LIMIT_*, --auth-limit-*). */
export function parseLimit(o: { failures?: unknown; windowSeconds?: unknown; addresses?: unknown }, names: { failures: string; windowSeconds: string; addresses: string }): Partial<NonNullable<AuthConfig['limit']>> {
  return {
    failures: count(o.failures, names.failures),
    windowSeconds: num(o.windowSeconds, names.windowSeconds),
    addresses: count(o.addresses, names.addresses),
  };
}

/** The `auth:` mapping of a config file. */
export function parseAuthSection(raw: unknown, source: string): AuthOverrides | undefined {
  if (raw === undefined || raw === null) return undefined;
  const o = configMapping(raw, source, 'auth', ['mode', 'htpasswd', 'acl', 'anonymousPull', 'limit', 'token']);
  const l = configMapping(o.limit ?? {}, source, 'auth.limit', ['failures', 'windowSeconds', 'addresses']);
  const t = (o.token ?? {}) as Record<string, unknown>;
  const ext = t.external as Record<string, unknown> | undefined;
  const mode = str(o.mode, `${source}: auth.mode`);
  if (o.anonymousPull !== undefined && typeof o.anonymousPull !== 'boolean') throw new Error(`${source}: auth.anonymousPull must be true or false`);
  return {
    mode: mode === undefined ? undefined : parseAuthMode(mode, source),
    htpasswd: str(o.htpasswd, `${source}: auth.htpasswd`),
    acl: str(o.acl, `${source}: auth.acl`),
    anonymousPull: o.anonymousPull as boolean | undefined,
    limit: parseLimit(l, { failures: `${source}: auth.limit.failures`, windowSeconds: `${source}: auth.limit.windowSeconds`, addresses: `${source}: auth.limit.addresses` }),
    token: {
      realm: str(t.realm, `${source}: auth.token.realm`),
      service: str(t.service, `${source}: auth.token.service`),
      issuer: str(t.issuer, `${source}: auth.token.issuer`),
      ttlSeconds: num(t.ttlSeconds, `${source}: auth.token.ttlSeconds`),
      refreshTtlSeconds: num(t.refreshTtlSeconds, `${source}: auth.token.refreshTtlSeconds`),
      keyRotationDays: num(t.keyRotationDays, `${source}: auth.token.keyRotationDays`),
      keysDir: str(t.keysDir, `${source}: auth.token.keysDir`),
      external: ext ? { issuer: str(ext.issuer, `${source}: auth.token.external.issuer`) ?? '', publicKey: str(ext.publicKey, `${source}: auth.token.external.publicKey`) ?? '' } : undefined,
    },
  };
}

export function validateAuth(a: AuthConfig): void {
  if (a.mode !== 'none' && !a.htpasswd && !(a.mode === 'token' && a.token.external)) {
    throw new Error(`--auth ${a.mode} needs a users file: --htpasswd FILE (create it with 'berth serve user add NAME --htpasswd FILE' or 'htpasswd -B -c FILE NAME')`);
  }
  if (a.limit && a.limit.failures > 0 && a.limit.addresses < 1) throw new Error('auth.limit.addresses must be at least 1');
  if (a.token.external && (!a.token.external.issuer || !a.token.external.publicKey)) throw new Error('auth.token.external needs both issuer and publicKey');
}
