// The access-control middleware: who is calling (Basic against the users file, or a Bearer token),
// what the request needs (scope.ts), whether the caller has it (acl.ts or the token's claims), and
// the challenge when not (docker-registry-api/token.md#how-to-authenticate).
import { join } from 'node:path';
import type { Middleware } from 'koa';
import type { Logger } from 'pino';
import { RegistryError } from '../../oci/errors.js';
import type { RegistryContext, RegistryState, Viewer } from '../context.js';
import type { ServerConfig } from '../config.js';
import { Acl, ALL_ACTIONS, type Action } from './acl.js';
import { DEFAULT_AUTH, DEFAULT_LIMIT, type AuthConfig } from './config.js';
import { FailureLimiter } from './limiter.js';
import { Htpasswd } from './htpasswd.js';
import { formatScope, requiredAccess, type ResourceScope } from './scope.js';
import { KeyRing } from './token-keys.js';
import { loadVerificationKey, TokenError, Tokens, type AccessClaim } from './tokens.js';
import { handleTokenRequest } from './token-endpoint.js';

export interface AccessControl {
  middleware: Middleware<RegistryState>;
  /** Rotates signing keys when due (called periodically by the server). */
  maintain(): Promise<void>;
  /**
   * Who a request outside /v2 (docker's /v1/search) is from: Basic credentials (both modes:
   * docker sends the `docker login` password there) or, in token mode, a Bearer token. Bad
   * credentials throw UNAUTHORIZED with the challenge, a throttled address TOOMANYREQUESTS; no
   * credentials give an anonymous viewer, or throw UNAUTHORIZED when anonymous pull is off.
   */
  caller(ctx: RegistryContext): Promise<Viewer>;
  /** Checks a password of the users file (the web UI's login form), throttled as every password check. */
  login(address: string | undefined, user: string, password: string): Promise<boolean>;
  /** What an account (undefined: anonymous) may see and delete, by the same rules as the API. */
  viewer(account: string | undefined): Viewer;
  /** Whether the users file still holds `account` (a web UI session of a removed user ends). */
  knows(account: string): Promise<boolean>;
}


/** What an account may do: the policy behind both htpasswd mode and the token service. */
export class Policy {
  constructor(
    readonly cfg: AuthConfig,
    readonly users: Htpasswd | undefined,
    readonly acl: Acl | undefined,
  ) {}

  actions(account: string | undefined, name: string): Set<Action> {
    if (account === undefined) return new Set(this.cfg.anonymousPull ? ['pull'] : []);
    if (!this.acl) return new Set(ALL_ACTIONS);
    const a = this.acl.actionsFor(account, name);
    if (this.cfg.anonymousPull) a.add('pull');
    return a;
  }

  /** The part of `requested` granted to `account` (token.md: grant what is allowed, drop the rest). */
  grant(account: string | undefined, requested: ResourceScope): ResourceScope | undefined {
    if (requested.type === 'registry') {
      return account !== undefined || this.cfg.anonymousPull ? { ...requested, actions: requested.actions.filter((a) => a === '*') } : undefined;
    }
    const allowed = this.actions(account, requested.name);
    const actions = requested.actions.filter((a) => (a === '*' ? ALL_ACTIONS.every((x) => allowed.has(x)) : allowed.has(a as Action)));
    return actions.length > 0 ? { ...requested, actions } : undefined;
  }
}

/** Parses `Authorization`; anything not of the expected shape counts as bad credentials, never a crash. */
export function parseBasic(header: string): { user: string; password: string } | undefined {
  const m = /^Basic[ ]+([A-Za-z0-9+/=]+)$/i.exec(header.trim());
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i <= 0) return undefined;
  return { user: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

function bearer(header: string): string | undefined {
  const m = /^Bearer[ ]+([A-Za-z0-9._~+/=-]+)$/i.exec(header.trim());
  return m?.[1];
}

const SAFE_HOST_RE = /^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;

export function realmOf(ctx: RegistryContext, cfg: AuthConfig): string {
  if (cfg.token.realm) return cfg.token.realm;
  // The Host header is the client's own; an odd one must not break the header's quoting.
  const host = SAFE_HOST_RE.test(ctx.host) ? ctx.host : 'localhost';
  return `${ctx.protocol}://${host}/token`;
}

function challenge(ctx: RegistryContext, cfg: AuthConfig, scopes: ResourceScope[], error?: 'invalid_token' | 'insufficient_scope'): void {
  if (cfg.mode === 'htpasswd') {
    ctx.set('WWW-Authenticate', 'Basic realm="berth"');
    return;
  }
  const parts = [`realm="${realmOf(ctx, cfg)}"`, `service="${cfg.token.service}"`];
  if (scopes.length > 0) parts.push(`scope="${scopes.map(formatScope).join(' ')}"`);
  if (error) parts.push(`error="${error}"`);
  ctx.set('WWW-Authenticate', `Bearer ${parts.join(',')}`);
}

function claimCovers(claims: AccessClaim[], need: ResourceScope): boolean {
  return need.actions.every((action) =>
    claims.some((c) => c.type === need.type && c.name === need.name && (c.actions.includes(action) || c.actions.includes('*'))),
  );
}

/** Drops a mount the caller may not read from: the upload proceeds as a plain session, as the reference registry does. */
function dropMount(ctx: RegistryContext): void {
  const q = { ...ctx.query };
  delete q.mount;
  delete q.from;
  ctx.query = q;
}

export interface AccessControlHooks {
  /** Credentials given and refused: a wrong password, an invalid token, a refused /token request. */
  authFailure(mode: 'htpasswd' | 'token'): void;
}

export async function createAccessControl(config: ServerConfig, log: Logger, hooks?: AccessControlHooks): Promise<AccessControl> {
  const cfg = config.auth ?? DEFAULT_AUTH;
  const users = cfg.htpasswd
    ? new Htpasswd(cfg.htpasswd, {
        onSkipped: (skipped) => log.warn({ users: skipped }, 'users file: entries that are not bcrypt are ignored (use htpasswd -B)'),
        onReloadError: (err) => log.warn({ file: cfg.htpasswd, err: err.message }, 'users file unreadable: keeping the users read before'),
      })
    : undefined;
  await users?.load();
  const acl = cfg.acl ? await Acl.load(cfg.acl) : undefined;
  const policy = new Policy(cfg, users, acl);
  const limit = cfg.limit ?? DEFAULT_LIMIT;
  const limiter = new FailureLimiter({ failures: limit.failures, windowMs: limit.windowSeconds * 1000, maxAddresses: limit.addresses });

  let tokens: Tokens | undefined;
  let keys: KeyRing | undefined;
  if (cfg.mode === 'token') {
    keys = new KeyRing(cfg.token.keysDir ?? join(config.data, 'auth', 'keys'), { rotateMs: cfg.token.keyRotationDays * 86_400_000, keepMs: Math.max(cfg.token.ttlSeconds, cfg.token.refreshTtlSeconds) * 1000 });
    await keys.load();
    const external = cfg.token.external ? { issuer: cfg.token.external.issuer, key: await loadVerificationKey(cfg.token.external.publicKey) } : undefined;
    tokens = new Tokens(cfg.token, keys, external);
  }

  const denied = (ctx: RegistryContext, need: ResourceScope[], account: string | undefined): never => {
    if (account === undefined) {
      challenge(ctx, cfg, need);
      throw new RegistryError('UNAUTHORIZED', 'authentication required', { detail: need.map((s) => ({ Type: s.type, Name: s.name, Action: s.actions.join(',') })) });
    }
    throw new RegistryError('DENIED', `${account} may not ${need.map((s) => `${s.actions.join(',')} ${s.name}`).join('; ')}`);
  };

  /** Refuses an attempt with credentials from an address that failed too often (limiter.ts), before any bcrypt. */
  const throttle = (ctx: RegistryContext): void => {
    const wait = limiter.retryAfter(ctx.req.socket.remoteAddress);
    if (wait === undefined) return;
    ctx.set('Retry-After', String(wait));
    throw new RegistryError('TOOMANYREQUESTS', `too many failed authentication attempts from this address: retry in ${wait} s`);
  };
  const failed = (ctx: RegistryContext): void => {
    if (limiter.fail(ctx.req.socket.remoteAddress)) log.warn({ address: ctx.req.socket.remoteAddress, failures: limit.failures, windowSeconds: limit.windowSeconds }, 'authentication failures: this address must wait (429) until the window passes');
  };

  const htpasswdMode = async (ctx: RegistryContext, next: () => Promise<unknown>): Promise<void> => {
    const need = requiredAccess(ctx.method, ctx.path, ctx.query);
    const header = ctx.get('Authorization');
    let account: string | undefined;
    if (header) {
      throttle(ctx);
      const creds = parseBasic(header);
      if (!creds || !users || !(await users.verify(creds.user, creds.password))) {
        log.info({ user: creds?.user.slice(0, 64), path: ctx.path }, 'authentication failed');
        failed(ctx);
        hooks?.authFailure('htpasswd');
        challenge(ctx, cfg, need.scopes);
        throw new RegistryError('UNAUTHORIZED', 'invalid username or password');
      }
      account = creds.user;
      ctx.state.user = account;
    }
    if (account === undefined && need.scopes.length === 0) denied(ctx, [], undefined);
    for (const s of need.scopes) {
      const granted = policy.grant(account, s);
      if (!granted || granted.actions.length !== s.actions.length) denied(ctx, [s], account);
    }
    if (need.mountFrom && !policy.actions(account, need.mountFrom).has('pull')) dropMount(ctx);
    await next();
    if (need.catalog) filterCatalog(ctx, (name) => policy.actions(account, name).has('pull'));
  };

  const tokenMode = async (ctx: RegistryContext, next: () => Promise<unknown>): Promise<void> => {
    const need = requiredAccess(ctx.method, ctx.path, ctx.query);
    const header = ctx.get('Authorization');
    const raw = bearer(header);
    if (!raw) {
      // A Bearer credential that is not token68 is a malformed token (RFC 6750 §3.1); no Bearer credential at all gets the bare challenge.
      const malformed = /^\s*Bearer(\s|$)/i.test(header);
      if (malformed) log.info({ reason: 'malformed Authorization header', path: ctx.path }, 'bearer token refused');
      challenge(ctx, cfg, need.scopes, malformed ? 'invalid_token' : undefined);
      throw new RegistryError('UNAUTHORIZED', malformed ? 'invalid token: malformed Authorization header' : 'authentication required: get a token from the realm of the WWW-Authenticate header');
    }
    let token;
    try {
      await tokens!.prepare(raw);
      token = tokens!.verifyAccess(raw);
    } catch (e) {
      if (!(e instanceof TokenError)) throw e;
      log.info({ reason: e.message, path: ctx.path }, 'bearer token refused');
      hooks?.authFailure('token');
      challenge(ctx, cfg, need.scopes, 'invalid_token');
      throw new RegistryError('UNAUTHORIZED', `invalid token: ${e.message}`);
    }
    if (token.sub !== '') ctx.state.user = token.sub;
    const missing = need.scopes.filter((s) => !claimCovers(token.access, s));
    if (missing.length > 0) {
      challenge(ctx, cfg, need.scopes, 'insufficient_scope');
      throw new RegistryError('UNAUTHORIZED', 'the token does not grant the access this request needs (insufficient_scope)', {
        detail: missing.map((s) => ({ Type: s.type, Name: s.name, Action: s.actions.join(',') })),
      });
    }
    if (need.mountFrom && !claimCovers(token.access, { type: 'repository', name: need.mountFrom, actions: ['pull'] })) dropMount(ctx);
    await next();
    if (need.catalog) {
      // Our tokens name a user of our policy; an external issuer's speak only through their claims.
      const account = token.sub === '' ? undefined : token.sub;
      filterCatalog(ctx, token.local ? (name) => policy.actions(account, name).has('pull') : (name) => claimCovers(token.access, { type: 'repository', name, actions: ['pull'] }));
    }
  };

  const middleware: Middleware<RegistryState> = async (ctx, next) => {
    if (cfg.mode === 'none') return next();
    if (ctx.path === '/token') {
      if (cfg.mode !== 'token' || !tokens) return next();
      await handleTokenRequest(ctx as RegistryContext, { cfg, policy, tokens, log, limiter });
      if (ctx.status === 401) hooks?.authFailure('token');
      return;
    }
    if (!ctx.path.startsWith('/v2')) return next();
    return cfg.mode === 'htpasswd' ? htpasswdMode(ctx as RegistryContext, next) : tokenMode(ctx as RegistryContext, next);
  };

  /** Undefined when the account may pull every repository (no ACL to consult). */
  const pullFilter = (account: string | undefined): ((name: string) => boolean) | undefined => {
    if (cfg.anonymousPull || (account !== undefined && !acl)) return undefined;
    if (account === undefined) return () => false;
    return (name) => policy.actions(account, name).has('pull');
  };
  const viewer = (account: string | undefined): Viewer => {
    const canPull = pullFilter(account);
    const prefixes = !canPull ? undefined : account === undefined ? [] : acl?.pullPrefixes(account);
    return {
      ...(account !== undefined ? { account } : {}),
      ...(canPull ? { canPull } : {}),
      ...(prefixes ? { pullPrefixes: prefixes } : {}),
      mayDelete: (name) => policy.actions(account, name).has('delete'),
    };
  };

  const login = async (address: string | undefined, user: string, password: string): Promise<boolean> => {
    const wait = limiter.retryAfter(address);
    if (wait !== undefined) throw Object.assign(new RegistryError('TOOMANYREQUESTS', `too many failed authentication attempts from this address: retry in ${wait} s`), { retryAfter: wait });
    if (users && (await users.verify(user, password))) return true;
    log.info({ user: user.slice(0, 64), path: 'login' }, 'authentication failed');
    if (limiter.fail(address)) log.warn({ address, failures: limit.failures, windowSeconds: limit.windowSeconds }, 'authentication failures: this address must wait (429) until the window passes');
    hooks?.authFailure(cfg.mode === 'token' ? 'token' : 'htpasswd');
    return false;
  };

  // registry:catalog:search is what docker's v2 client asks a token for before it searches.
  const SEARCH_SCOPE: ResourceScope = { type: 'registry', name: 'catalog', actions: ['search'] };
  const caller = async (ctx: RegistryContext): Promise<Viewer> => {
    if (cfg.mode === 'none') return { mayDelete: () => true };
    const header = ctx.get('Authorization');
    const raw = cfg.mode === 'token' ? bearer(header) : undefined;
    if (raw) {
      let token;
      try {
        await tokens!.prepare(raw);
        token = tokens!.verifyAccess(raw);
      } catch (e) {
        if (!(e instanceof TokenError)) throw e;
        hooks?.authFailure('token');
        challenge(ctx, cfg, [SEARCH_SCOPE], 'invalid_token');
        throw new RegistryError('UNAUTHORIZED', `invalid token: ${e.message}`);
      }
      const account = token.sub === '' ? undefined : token.sub;
      if (token.local) return viewer(account);
      // An external issuer's token speaks only through its claims.
      return { ...(account !== undefined ? { account } : {}), canPull: (name) => claimCovers(token.access, { type: 'repository', name, actions: ['pull'] }), mayDelete: (name) => claimCovers(token.access, { type: 'repository', name, actions: ['delete'] }) };
    }
    if (header) {
      throttle(ctx);
      const creds = parseBasic(header);
      if (!creds || !users || !(await users.verify(creds.user, creds.password))) {
        log.info({ user: creds?.user.slice(0, 64), path: ctx.path }, 'authentication failed');
        failed(ctx);
        hooks?.authFailure(cfg.mode === 'token' ? 'token' : 'htpasswd');
        challenge(ctx, cfg, [SEARCH_SCOPE]);
        throw new RegistryError('UNAUTHORIZED', 'invalid username or password');
      }
      ctx.state.user = creds.user;
      return viewer(creds.user);
    }
    if (!cfg.anonymousPull) {
      challenge(ctx, cfg, [SEARCH_SCOPE]);
      throw new RegistryError('UNAUTHORIZED', 'authentication required: docker login first');
    }
    return viewer(undefined);
  };

  return { middleware, maintain: async () => keys?.rotate(), caller, login, viewer, knows: async (account) => (users ? users.has(account) : false) };
}

/** `_catalog` lists only what the caller may pull (a page may come out shorter than `n`; the Link still leads on). */
function filterCatalog(ctx: RegistryContext, canPull: (name: string) => boolean): void {
  const body = ctx.body as { repositories?: unknown } | undefined;
  if (ctx.status === 200 && body && Array.isArray(body.repositories)) {
    ctx.body = { ...body, repositories: (body.repositories as string[]).filter(canPull) };
  }
}
