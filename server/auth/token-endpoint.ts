// The built-in token service at /token: GET with optional Basic credentials (token.md#requesting-a-token)
// and POST with the OAuth2 password and refresh_token grants (oauth.md). Tokens carry only what
// the policy grants of what was asked; asking for more is not an error (token.md).
import type { Logger } from 'pino';
import type { RegistryContext } from '../context.js';
import { DEFAULT_LIMIT, type AuthConfig } from './config.js';
import { parseBasic, type Policy } from './access-control.js';
import { formatScope, parseScopes, type ResourceScope } from './scope.js';
import { TokenError, type Tokens } from './tokens.js';
import type { FailureLimiter } from './limiter.js';
import { readBoundedBody } from '../request-body.js';

interface Deps {
  cfg: AuthConfig;
  policy: Policy;
  tokens: Tokens;
  log: Logger;
  limiter: FailureLimiter;
}

const MAX_FORM_BYTES = 64 * 1024;

function values(v: unknown): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
}

/** A refusal of the token endpoint, answered with the OAuth 2 error JSON (RFC 6749 §5.2). */
class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly error: 'invalid_request' | 'invalid_client' | 'invalid_grant' | 'unsupported_grant_type' | 'invalid_scope' | 'server_error' | 'slow_down',
    description: string,
  ) {
    super(description);
  }
}

/** Parameters that must not be given twice (RFC 6749 §3.2); `scope` may, as docker sends it. */
const SINGLE = ['grant_type', 'username', 'password', 'refresh_token', 'service', 'client_id', 'access_type'];

async function readForm(ctx: RegistryContext): Promise<URLSearchParams> {
  const type = ctx.get('Content-Type').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw new OAuthError(400, 'invalid_request', `the token request must be a form (Content-Type: application/x-www-form-urlencoded), not ${JSON.stringify(type.slice(0, 80) || 'no Content-Type')}`);
  }
  const raw = await readBoundedBody(ctx, MAX_FORM_BYTES, (n) => new OAuthError(413, 'invalid_request', `the token request form is larger than ${n} bytes`));
  const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let form: URLSearchParams;
  try {
    form = new URLSearchParams(text.decode(raw));
  } catch {
    throw new OAuthError(400, 'invalid_request', 'the token request form is not UTF-8');
  }
  for (const key of SINGLE) {
    if (form.getAll(key).length > 1) throw new OAuthError(400, 'invalid_request', `parameter ${key} is given more than once`);
  }
  return form;
}

function oauthError(ctx: RegistryContext, status: number, error: string, description: string): void {
  ctx.status = status;
  ctx.body = { error, error_description: description };
  if (status === 401) ctx.set('WWW-Authenticate', 'Basic realm="berth"');
}

/**
 * Password checks from an address that failed too often are refused before any bcrypt: 429 with
 * Retry-After. RFC 6749 has no error for this; the body is OAuth JSON (`slow_down`, registered
 * by RFC 8628) and also carries the registry's TOOMANYREQUESTS envelope, which is what
 * distribution's token client parses for a status other than 401.
 */
function throttled(ctx: RegistryContext, limiter: FailureLimiter): boolean {
  const wait = limiter.retryAfter(ctx.req.socket.remoteAddress);
  if (wait === undefined) return false;
  const message = `too many failed authentication attempts from this address: retry in ${wait} s`;
  ctx.status = 429;
  ctx.set('Retry-After', String(wait));
  ctx.body = { error: 'slow_down', error_description: message, errors: [{ code: 'TOOMANYREQUESTS', message, detail: null }] };
  return true;
}

function authFailed(ctx: RegistryContext, { limiter, log, cfg }: Deps, user: string | undefined): void {
  log.info({ user: user?.slice(0, 64) }, 'token request: authentication failed');
  const limit = cfg.limit ?? DEFAULT_LIMIT;
  if (limiter.fail(ctx.req.socket.remoteAddress)) log.warn({ address: ctx.req.socket.remoteAddress, failures: limit.failures, windowSeconds: limit.windowSeconds }, 'authentication failures: this address must wait (429) until the window passes');
  oauthError(ctx, 401, 'invalid_grant', 'invalid username or password');
}

function grantAll(policy: Policy, account: string | undefined, requested: ResourceScope[]): ResourceScope[] {
  return requested.map((s) => policy.grant(account, s)).filter((s): s is ResourceScope => s !== undefined);
}

/** Answers /token; every refusal, whatever its cause, is OAuth 2 error JSON, never the registry's envelope. */
export async function handleTokenRequest(ctx: RegistryContext, deps: Deps): Promise<void> {
  ctx.set('Cache-Control', 'no-store');
  try {
    await answer(ctx, deps);
  } catch (e) {
    if (e instanceof OAuthError) return oauthError(ctx, e.status, e.error, e.message);
    if (ctx.req.destroyed || (e as NodeJS.ErrnoException)?.code === 'ECONNRESET' || (e as Error)?.message === 'aborted') throw e; // the client went away
    deps.log.error({ err: e, method: ctx.method }, 'token request failed');
    return oauthError(ctx, 500, 'server_error', 'internal error: see the server log');
  }
}

async function answer(ctx: RegistryContext, deps: Deps): Promise<void> {
  const { cfg, policy, tokens, log, limiter } = deps;
  if (ctx.method === 'GET') {
    const service = ctx.query.service;
    if (typeof service === 'string' && service !== cfg.token.service) return oauthError(ctx, 400, 'invalid_request', `this token service issues tokens for service ${cfg.token.service}`);
    let account: string | undefined;
    const header = ctx.get('Authorization');
    if (header) {
      if (throttled(ctx, limiter)) return;
      const creds = parseBasic(header);
      if (!creds || !policy.users || !(await policy.users.verify(creds.user, creds.password))) return authFailed(ctx, deps, creds?.user);
      account = creds.user;
    }
    const granted = grantAll(policy, account, parseScopes(values(ctx.query.scope)));
    const t = tokens.issueAccess(account ?? '', granted);
    const body: Record<string, unknown> = { token: t.token, access_token: t.token, expires_in: t.expiresIn, issued_at: t.issuedAt.toISOString() };
    if (account !== undefined && ctx.query.offline_token === 'true') body.refresh_token = tokens.issueRefresh(account);
    ctx.body = body;
    return;
  }
  if (ctx.method === 'POST') {
    const form = await readForm(ctx);
    const service = form.get('service');
    if (service !== null && service !== cfg.token.service) return oauthError(ctx, 400, 'invalid_request', `this token service issues tokens for service ${cfg.token.service}`);
    const grantType = form.get('grant_type');
    if (!grantType) return oauthError(ctx, 400, 'invalid_request', 'grant_type is required (password or refresh_token)');
    let account: string;
    let refresh: string | undefined;
    if (grantType === 'password') {
      const user = form.get('username') ?? '';
      const password = form.get('password');
      if (!user || password === null) return oauthError(ctx, 400, 'invalid_request', 'the password grant needs username and password');
      if (throttled(ctx, limiter)) return;
      if (!policy.users || !(await policy.users.verify(user, password))) return authFailed(ctx, deps, user);
      account = user;
      if (form.get('access_type') === 'offline') refresh = tokens.issueRefresh(account);
    } else if (grantType === 'refresh_token') {
      if (!form.get('refresh_token')) return oauthError(ctx, 400, 'invalid_request', 'the refresh_token grant needs refresh_token');
      try {
        await tokens.prepare(form.get('refresh_token') ?? '');
        account = tokens.verifyRefresh(form.get('refresh_token') ?? '');
      } catch (e) {
        if (!(e instanceof TokenError)) throw e;
        return oauthError(ctx, 401, 'invalid_grant', `refresh token refused: ${e.message}`);
      }
      // A user removed from the users file loses access at the next refresh.
      if (!policy.users || !(await policy.users.has(account))) return oauthError(ctx, 401, 'invalid_grant', 'the account of this refresh token no longer exists');
      refresh = form.get('refresh_token')!;
    } else {
      return oauthError(ctx, 400, 'unsupported_grant_type', 'grant_type must be password or refresh_token');
    }
    const granted = grantAll(policy, account, parseScopes(form.getAll('scope')));
    const t = tokens.issueAccess(account, granted);
    ctx.body = {
      access_token: t.token,
      token: t.token,
      scope: granted.map(formatScope).join(' '),
      expires_in: t.expiresIn,
      issued_at: t.issuedAt.toISOString(),
      ...(refresh ? { refresh_token: refresh } : {}),
    };
    return;
  }
  ctx.status = 405;
  ctx.body = { error: 'invalid_request', error_description: 'use GET or POST' };
}
