// The built-in token service at /token: GET with optional Basic credentials (token.md#requesting-a-token)
// and POST with the OAuth2 password and refresh_token grants (oauth.md). Tokens carry only what
// the policy grants of what was asked; asking for more is not an error (token.md).
import type { Logger } from 'pino';
import type { RegistryContext } from '../context.js';
import type { AuthConfig } from './config.js';
import { parseBasic, type Policy } from './access-control.js';
import { formatScope, parseScopes, type ResourceScope } from './scope.js';
import { TokenError, type Tokens } from './tokens.js';

interface Deps {
  cfg: AuthConfig;
  policy: Policy;
  tokens: Tokens;
  log: Logger;
}

const MAX_FORM_BYTES = 64 * 1024;

function values(v: unknown): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
}

async function readForm(ctx: RegistryContext): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const c of ctx.req) {
    total += (c as Buffer).length;
    if (total > MAX_FORM_BYTES) throw Object.assign(new Error('form too large'), { status: 413 });
    chunks.push(c as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function oauthError(ctx: RegistryContext, status: number, error: string, description: string): void {
  ctx.status = status;
  ctx.body = { error, error_description: description };
  if (status === 401) ctx.set('WWW-Authenticate', 'Basic realm="berth"');
}

function grantAll(policy: Policy, account: string | undefined, requested: ResourceScope[]): ResourceScope[] {
  return requested.map((s) => policy.grant(account, s)).filter((s): s is ResourceScope => s !== undefined);
}

export async function handleTokenRequest(ctx: RegistryContext, { cfg, policy, tokens, log }: Deps): Promise<void> {
  ctx.set('Cache-Control', 'no-store');
  if (ctx.method === 'GET') {
    const service = ctx.query.service;
    if (typeof service === 'string' && service !== cfg.token.service) return oauthError(ctx, 400, 'invalid_request', `this token service issues tokens for service ${cfg.token.service}`);
    let account: string | undefined;
    const header = ctx.get('Authorization');
    if (header) {
      const creds = parseBasic(header);
      if (!creds || !policy.users || !(await policy.users.verify(creds.user, creds.password))) {
        log.info({ user: creds?.user.slice(0, 64) }, 'token request: authentication failed');
        return oauthError(ctx, 401, 'invalid_grant', 'invalid username or password');
      }
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
    let account: string;
    let refresh: string | undefined;
    if (grantType === 'password') {
      const user = form.get('username') ?? '';
      const password = form.get('password') ?? '';
      if (!policy.users || !user || !(await policy.users.verify(user, password))) {
        log.info({ user: user.slice(0, 64) }, 'token request: authentication failed');
        return oauthError(ctx, 401, 'invalid_grant', 'invalid username or password');
      }
      account = user;
      if (form.get('access_type') === 'offline') refresh = tokens.issueRefresh(account);
    } else if (grantType === 'refresh_token') {
      try {
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
