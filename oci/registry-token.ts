// A Bearer token from a challenge's realm (docker-registry-api/token.md#requesting-a-token):
// GET realm?service=…&scope=… with Basic credentials when there are any, answered with
// token/access_token, expires_in and issued_at. The caller sends the request (the client and the
// server send it differently), this module decides where it may go and reads the answer.
import type { AccessPolicy } from './access-policy.js';
import { realmRefusal, type Challenge } from './auth-challenge.js';

/** token.md#token-response-fields: a token without expires_in lives 60 seconds. */
export const DEFAULT_TOKEN_SECONDS = 60;

/** What `send` answers with: undici's ResponseData (the server) and the client's http-pool Response both fit. */
export interface TokenResponse {
  statusCode: number;
  body: { text(): Promise<string> };
}

export interface TokenRequest {
  /** The registry's Bearer challenge. */
  challenge: Challenge;
  /** `scheme://host` the registry answered at. */
  registry: string;
  /** Which hosts may be reached over plain HTTP (realmRefusal). */
  policy: AccessPolicy;
  scopes: readonly string[];
  credentials?: { username: string; password: string };
  /** token.md's `account` parameter (a login's verification names the user). */
  account?: string;
  /** Sends the GET; only called for a realm realmRefusal allows. */
  send(url: URL, headers: Record<string, string>): Promise<TokenResponse>;
}

export interface RegistryToken {
  token: string;
  /** Epoch milliseconds at which the token stops being valid (callers renew a little earlier). */
  expiresAt: number;
}

export type TokenFailure =
  | 'no-realm' // the challenge has no (valid) realm
  | 'realm-refused' // realmRefusal: nothing was sent
  | 'unreachable' // the realm could not be reached
  | 'refused' // 401/403: the credentials (or their absence) were not accepted
  | 'status' // another non-200 answer
  | 'invalid'; // 200 without JSON or without a token

export class TokenError extends Error {
  constructor(
    readonly kind: TokenFailure,
    message: string,
    /** The realm's origin, or the raw realm text when it is not a URL. */
    readonly realm: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TokenError';
  }
}

export function basicAuthorization(c: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

export async function requestToken(req: TokenRequest): Promise<RegistryToken> {
  const realm = req.challenge.params.realm;
  if (!realm) throw new TokenError('no-realm', 'Bearer challenge without realm', '');
  let url: URL;
  try {
    url = new URL(realm);
  } catch {
    throw new TokenError('no-realm', `invalid token realm ${JSON.stringify(realm)}`, realm);
  }
  // token.md#requesting-a-token sends Basic credentials to the realm: a refused realm is not asked at all, anonymously or not (the client's rule since it had one).
  const refusal = realmRefusal(url, req.registry, req.policy);
  if (refusal) throw new TokenError('realm-refused', refusal, url.origin);
  if (req.challenge.params.service) url.searchParams.set('service', req.challenge.params.service);
  for (const s of new Set(req.scopes)) url.searchParams.append('scope', s);
  if (req.account) url.searchParams.set('account', req.account);
  let res: TokenResponse;
  try {
    res = await req.send(url, req.credentials ? { authorization: basicAuthorization(req.credentials) } : {});
  } catch (e) {
    throw new TokenError('unreachable', `token service ${url.origin} unreachable: ${describe(e)}`, url.origin, undefined, { cause: e });
  }
  const text = await res.body.text();
  if (res.statusCode === 401 || res.statusCode === 403) throw new TokenError('refused', `token service ${url.origin} refused (HTTP ${res.statusCode})`, url.origin, res.statusCode);
  if (res.statusCode !== 200) throw new TokenError('status', `token service ${url.origin} answered HTTP ${res.statusCode}`, url.origin, res.statusCode);
  let body: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new TokenError('invalid', `token service ${url.origin} returned invalid JSON`, url.origin);
  }
  const token = (typeof body?.token === 'string' && body.token) || (typeof body?.access_token === 'string' && body.access_token);
  if (!token) throw new TokenError('invalid', `token service ${url.origin} returned no token`, url.origin);
  // Lifetime counts from issued_at when given (and not in the future), else from now.
  const issued = typeof body.issued_at === 'string' ? Date.parse(body.issued_at) : NaN;
  const start = Number.isFinite(issued) && issued <= Date.now() ? issued : Date.now();
  const seconds = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_SECONDS;
  return { token, expiresAt: start + seconds * 1000 };
}

function describe(e: unknown): string {
  const err = e as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  return err.cause?.message || err.code || err.message || String(e);
}
