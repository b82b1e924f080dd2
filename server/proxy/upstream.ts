// The upstream registry as the mirror sees it: undici with keep-alive and redirects (blob
// downloads are often redirected to a CDN; undici drops Authorization on a cross-origin hop), and
// the upstream's own auth: Basic, or Bearer tokens fetched from its realm per repository
// (docker-registry-api/token.md), cached until they expire. Challenge parsing, the realm policy
// and the token request are the client's (oci/auth-challenge.ts, oci/registry-token.ts).
import { Agent, interceptors, request, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { AccessPolicy } from '../../oci/access-policy.js';
import { parseChallenge } from '../../oci/auth-challenge.js';
import { RegistryError } from '../../oci/errors.js';
import { basicAuthorization, requestToken, TokenError, type RegistryToken } from '../../oci/registry-token.js';
import { registryTlsOptions } from '../../oci/trusted-cas.js';
import type { ProxyConfig } from './config.js';

/** Upstream could not be reached or answered with a server error: cached content may stand in. */
export class UpstreamUnavailable extends Error {}

export type UpstreamResponse = Dispatcher.ResponseData;

const TOKEN_MARGIN_MS = 10_000;

export class Upstream {
  readonly base: string;
  private readonly cfg: ProxyConfig;
  private readonly log: Logger;
  private readonly dispatcher: Dispatcher;
  private readonly agent: Agent;
  /** Plain HTTP is allowed to loopback, and to the upstream's host:port when remoteUrl is http:// (configured insecure). */
  private readonly policy: AccessPolicy;
  private basic = false;
  /** repository → bearer token for pulling it. */
  private readonly tokens = new Map<string, { header: string; expires: number }>();

  constructor(cfg: ProxyConfig, log: Logger) {
    this.cfg = cfg;
    this.log = log;
    this.base = cfg.remoteUrl.replace(/\/+$/, '');
    const remote = new URL(this.base);
    this.policy = new AccessPolicy(remote.protocol === 'http:' ? [remote.host] : []);
    this.agent = new Agent({ keepAliveTimeout: 30_000, connections: 64, connectTimeout: 10_000, headersTimeout: 60_000, bodyTimeout: 120_000, connect: registryTlsOptions() });
    this.dispatcher = this.agent.compose(interceptors.redirect({ maxRedirections: 5 }));
  }

  private basicHeader(): string | undefined {
    const creds = this.credentials();
    return creds && basicAuthorization(creds);
  }

  private credentials(): { username: string; password: string } | undefined {
    return this.cfg.username === undefined ? undefined : { username: this.cfg.username, password: this.cfg.password ?? '' };
  }

  private authHeader(name: string): string | undefined {
    const t = this.tokens.get(name);
    if (t && t.expires > Date.now()) return t.header;
    return this.basic ? this.basicHeader() : undefined;
  }

  private async send(method: 'GET' | 'HEAD', path: string, headers: Record<string, string>): Promise<UpstreamResponse> {
    try {
      return await request(this.base + path, { method, headers, dispatcher: this.dispatcher });
    } catch (e) {
      throw new UpstreamUnavailable(`upstream ${this.base} unreachable: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }

  /** A request for repository `name`, authenticating once when challenged. 5xx answers throw UpstreamUnavailable. */
  async fetch(method: 'GET' | 'HEAD', name: string, path: string, headers: Record<string, string> = {}): Promise<UpstreamResponse> {
    const auth = this.authHeader(name);
    let res = await this.send(method, path, auth ? { ...headers, authorization: auth } : headers);
    if (res.statusCode === 401) {
      const challenge = res.headers['www-authenticate'];
      await res.body.dump();
      const retryAuth = await this.answerChallenge(challenge, name);
      res = await this.send(method, path, { ...headers, authorization: retryAuth });
    }
    if (res.statusCode >= 500) {
      await res.body.dump();
      throw new UpstreamUnavailable(`upstream ${this.base} answered ${res.statusCode}`);
    }
    if (res.statusCode === 401 || res.statusCode === 403) {
      await res.body.dump();
      throw new RegistryError('DENIED', `upstream ${this.base} refused access to ${name} (HTTP ${res.statusCode}): check --proxy-username/--proxy-password`, { status: 403 });
    }
    if (res.statusCode === 429) {
      await res.body.dump();
      throw new RegistryError('TOOMANYREQUESTS', `upstream ${this.base} is rate-limiting this mirror`);
    }
    return res;
  }

  private async answerChallenge(wwwAuthenticate: string | string[] | undefined, name: string): Promise<string> {
    const challenge = parseChallenge(wwwAuthenticate);
    if (challenge?.scheme === 'basic') {
      const h = this.basicHeader();
      if (!h) throw new RegistryError('DENIED', `upstream ${this.base} needs credentials: set --proxy-username and --proxy-password`, { status: 403 });
      this.basic = true;
      return h;
    }
    if (!challenge?.params.realm) throw new UpstreamUnavailable(`upstream ${this.base} sent an unusable challenge`);
    let issued: RegistryToken;
    try {
      issued = await requestToken({
        challenge,
        registry: new URL(this.base).origin,
        policy: this.policy,
        scopes: [`repository:${name}:pull`],
        credentials: this.credentials(),
        send: (url, headers) => request(url, { method: 'GET', headers, dispatcher: this.dispatcher }),
      });
    } catch (e) {
      if (!(e instanceof TokenError)) throw e;
      // Mapped like the other upstream auth failures: a refusal is DENIED, an outage lets cached content stand in.
      if (e.kind === 'refused') throw new RegistryError('DENIED', `upstream ${this.base}: ${e.message}: check --proxy-username/--proxy-password`, { status: 403 });
      if (e.kind === 'realm-refused' || e.kind === 'status') throw new RegistryError('DENIED', `upstream ${this.base}: ${e.message}`, { status: 403 });
      throw new UpstreamUnavailable(`upstream ${this.base}: ${e.message}`);
    }
    const header = `Bearer ${issued.token}`;
    this.tokens.set(name, { header, expires: issued.expiresAt - TOKEN_MARGIN_MS });
    this.log.debug({ upstream: this.base, repository: name }, 'upstream token obtained');
    return header;
  }

  /** Aborts downloads still running (a stopping server does not wait for a large blob). */
  async close(): Promise<void> {
    await this.agent.destroy();
  }
}
