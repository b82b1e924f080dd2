// Bearer tokens (docker-registry-api/jwt.md): issuing with the key ring, verifying ours and an
// external issuer's. Access tokens carry the granted scopes in `access`; refresh tokens
// (oauth.md) carry none and are told apart by `berth_refresh`, so one never passes for the other.
import { createPublicKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import jwt from 'jsonwebtoken';
import type { AuthConfig } from './config.js';
import type { KeyRing } from './token-keys.js';
import type { ResourceScope } from './scope.js';

export interface AccessClaim {
  type: string;
  name: string;
  actions: string[];
}

export interface VerifiedToken {
  sub: string;
  access: AccessClaim[];
  /** Our own token (its subject is a user of our users file) or an external issuer's. */
  local: boolean;
}

export class TokenError extends Error {}

/** Clock skew between the token service and a registry (or an external issuer) tolerated, in seconds. */
const CLOCK_TOLERANCE_S = 30;
const VERIFIED_CACHE_MS = 60_000;
const VERIFIED_CACHE_ENTRIES = 10_000;
const EXTERNAL_ALGORITHMS: jwt.Algorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'];

export async function loadVerificationKey(path: string): Promise<KeyObject> {
  const pem = await readFile(path, 'utf8');
  return pem.includes('BEGIN CERTIFICATE') ? new X509Certificate(pem).publicKey : createPublicKey(pem);
}

export class Tokens {
  private readonly cfg: AuthConfig['token'];
  private readonly keys: KeyRing;
  private readonly external: { issuer: string; key: KeyObject } | undefined;
  /** Verified access tokens (the exact string) until their expiry, at most a minute. */
  private readonly verified = new Map<string, { token: VerifiedToken; kid: string | undefined; until: number }>();

  constructor(cfg: AuthConfig['token'], keys: KeyRing, external?: { issuer: string; key: KeyObject }) {
    this.cfg = cfg;
    this.keys = keys;
    this.external = external;
  }

  private sign(payload: object, ttl: number): { token: string; issuedAt: Date } {
    const key = this.keys.current();
    const now = Math.floor(Date.now() / 1000);
    const token = jwt.sign({ ...payload, iat: now, nbf: now, exp: now + ttl, jti: randomBytes(16).toString('base64url') }, key.privateKey, {
      algorithm: 'ES256',
      keyid: key.kid,
      issuer: this.cfg.issuer,
      audience: this.cfg.service,
      header: { alg: 'ES256', typ: 'JWT', kid: key.kid },
    });
    return { token, issuedAt: new Date(now * 1000) };
  }

  issueAccess(sub: string, access: ResourceScope[]): { token: string; expiresIn: number; issuedAt: Date } {
    const claims: AccessClaim[] = access.map((s) => ({ type: s.type, name: s.name, actions: s.actions }));
    return { ...this.sign({ sub, access: claims }, this.cfg.ttlSeconds), expiresIn: this.cfg.ttlSeconds };
  }

  issueRefresh(sub: string): string {
    return this.sign({ sub, berth_refresh: true }, this.cfg.refreshTtlSeconds).token;
  }

  private verify(token: string): { payload: jwt.JwtPayload; local: boolean; kid?: string } {
    // Node decodes base64 leniently ('+' for '-', padding, the unused bits of the last character):
    // only the canonical base64url spelling of each part is accepted, so a token that verifies is
    // byte for byte the one that was signed.
    const parts = token.split('.');
    if (parts.length !== 3 || !parts.every(isCanonicalBase64Url)) throw new TokenError('malformed token');
    const decoded = decode(token);
    if (!decoded || typeof decoded.payload !== 'object') throw new TokenError('malformed token');
    const kid = decoded.header.kid;
    const own = kid !== undefined ? this.keys.byKid(kid) : undefined;
    try {
      if (own) {
        const payload = jwt.verify(token, own.publicKey, { algorithms: ['ES256'], audience: this.cfg.service, issuer: this.cfg.issuer, clockTolerance: CLOCK_TOLERANCE_S });
        return { payload: payload as jwt.JwtPayload, local: true, kid: own.kid };
      }
      if (this.external) {
        const payload = jwt.verify(token, this.external.key, { algorithms: EXTERNAL_ALGORITHMS, audience: this.cfg.service, issuer: this.external.issuer, clockTolerance: CLOCK_TOLERANCE_S });
        return { payload: payload as jwt.JwtPayload, local: false };
      }
    } catch (e) {
      // jsonwebtoken's messages name the failed check (expired, audience, signature) without token content.
      throw new TokenError((e as Error).message);
    }
    throw new TokenError('token signed by an unknown key');
  }

  /** jsonwebtoken checks exp and nbf only when present, and never a future iat (go-jose does). */
  private static checkTimes(p: jwt.JwtPayload): void {
    const now = Date.now() / 1000;
    if (typeof p.exp !== 'number') throw new TokenError('token has no expiry (exp)');
    if (p.iat !== undefined && (typeof p.iat !== 'number' || p.iat > now + CLOCK_TOLERANCE_S)) throw new TokenError('token issued in the future (iat)');
    if (p.nbf !== undefined && typeof p.nbf !== 'number') throw new TokenError('malformed nbf');
  }

  /** Before verifying: lets the key ring learn a key another replica made (KeyRing.learn). */
  async prepare(token: string): Promise<void> {
    const kid = (decode(token)?.header as { kid?: unknown } | undefined)?.kid;
    if (typeof kid === 'string') await this.keys.learn(kid);
  }

  verifyAccess(token: string): VerifiedToken {
    const hit = this.verified.get(token);
    // A retired signing key takes its cached tokens with it.
    if (hit && hit.until > Date.now() && (hit.kid === undefined || this.keys.byKid(hit.kid))) return hit.token;
    const { payload, local, kid } = this.verify(token);
    Tokens.checkTimes(payload);
    if (payload.berth_refresh) throw new TokenError('a refresh token is not an access token');
    if (typeof payload.sub !== 'string') throw new TokenError('token has no subject');
    // A malformed access claim makes the token malformed (RFC 6750 invalid_token), not merely narrower.
    if (payload.access !== undefined && !(Array.isArray(payload.access) && (payload.access as unknown[]).every(isAccessClaim))) throw new TokenError('malformed access claim');
    const access = (payload.access ?? []) as AccessClaim[];
    const result = { sub: payload.sub, access, local };
    // A client sends the same token with every request of a pull: one signature check per token.
    if (this.verified.size >= VERIFIED_CACHE_ENTRIES) this.verified.clear();
    this.verified.set(token, { token: result, kid: local ? kid : undefined, until: Math.min((payload.exp ?? 0) * 1000, Date.now() + VERIFIED_CACHE_MS) });
    return result;
  }

  /** The subject of one of our refresh tokens. */
  verifyRefresh(token: string): string {
    const { payload, local } = this.verify(token);
    Tokens.checkTimes(payload);
    if (!local || payload.berth_refresh !== true || typeof payload.sub !== 'string') throw new TokenError('not a refresh token of this service');
    return payload.sub;
  }
}

/** jsonwebtoken's decode throws (SyntaxError) when a `typ: JWT` header comes with a payload that is not JSON: that is a malformed token, not a server error. */
function decode(token: string): jwt.Jwt | null {
  try {
    return jwt.decode(token, { complete: true });
  } catch {
    return null;
  }
}

function isCanonicalBase64Url(part: string): boolean {
  return /^[A-Za-z0-9_-]*$/.test(part) && Buffer.from(part, 'base64url').toString('base64url') === part;
}

function isAccessClaim(v: unknown): v is AccessClaim {
  const c = v as AccessClaim;
  return typeof c === 'object' && c !== null && typeof c.type === 'string' && typeof c.name === 'string' && Array.isArray(c.actions) && c.actions.every((a) => typeof a === 'string');
}
