// The upstream registry as the mirror sees it: undici with keep-alive and redirects (blob
// downloads are often redirected to a CDN; undici drops Authorization on a cross-origin hop), and
// the upstream's own auth: Basic, or Bearer tokens fetched from its realm per repository
// (docker-registry-api/token.md), cached until they expire.
import { Agent, interceptors, request, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { RegistryError } from '../../oci/errors.js';
import { registryTlsOptions } from '../../oci/trusted-cas.js';
import type { ProxyConfig } from './config.js';

/** Upstream could not be reached or answered with a server error: cached content may stand in. */
export class UpstreamUnavailable extends Error {}

export type UpstreamResponse = Dispatcher.ResponseData;

const TOKEN_MARGIN_MS = 10_000;

/** `key="value"` pairs of a WWW-Authenticate challenge. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const scheme = (/^\s*(\w+)/.exec(header)?.[1] ?? '').toLowerCase();
  const params: Record<string, string> = {};
  for (const m of header.matchAll(/(\w+)="([^"]*)"/g)) params[m[1]!.toLowerCase()] = m[2]!;
  return { scheme, params };
}

export class Upstream {
  readonly base: string;
  private readonly cfg: ProxyConfig;
  private readonly log: Logger;
  private readonly dispatcher: Dispatcher;
  private readonly agent: Agent;
  private basic = false;
  /** repository → bearer token for pulling it. */
  private readonly tokens = new Map<string, { header: string; expires: number }>();

  constructor(cfg: ProxyConfig, log: Logger) {
    this.cfg = cfg;
    this.log = log;
    this.base = cfg.remoteUrl.replace(/\/+$/, '');
    this.agent = new Agent({ keepAliveTimeout: 30_000, connections: 64, connectTimeout: 10_000, headersTimeout: 60_000, bodyTimeout: 120_000, connect: registryTlsOptions() });
    this.dispatcher = this.agent.compose(interceptors.redirect({ maxRedirections: 5 }));
  }

  private basicHeader(): string | undefined {
    if (this.cfg.username === undefined) return undefined;
    return `Basic ${Buffer.from(`${this.cfg.username}:${this.cfg.password ?? ''}`).toString('base64')}`;
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
      const challenge = String(res.headers['www-authenticate'] ?? '');
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

  private async answerChallenge(challenge: string, name: string): Promise<string> {
    const { scheme, params } = parseChallenge(challenge);
    if (scheme === 'basic') {
      const h = this.basicHeader();
      if (!h) throw new RegistryError('DENIED', `upstream ${this.base} needs credentials: set --proxy-username and --proxy-password`, { status: 403 });
      this.basic = true;
      return h;
    }
    if (scheme !== 'bearer' || !params.realm) throw new UpstreamUnavailable(`upstream ${this.base} sent an unusable challenge`);
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set('service', params.service);
    url.searchParams.set('scope', `repository:${name}:pull`);
    const basic = this.basicHeader();
    let res;
    try {
      res = await request(url, { method: 'GET', headers: basic ? { authorization: basic } : {}, dispatcher: this.dispatcher });
    } catch (e) {
      throw new UpstreamUnavailable(`token service ${url.origin} unreachable: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new RegistryError('DENIED', `upstream token service ${url.origin} refused the mirror (HTTP ${res.statusCode})`, { status: 403 });
    }
    const body = (await res.body.json()) as { token?: string; access_token?: string; expires_in?: number };
    const token = body.token ?? body.access_token;
    if (!token) throw new UpstreamUnavailable(`upstream token service ${url.origin} returned no token`);
    const header = `Bearer ${token}`;
    // token.md: a token without expires_in lives 60 seconds.
    this.tokens.set(name, { header, expires: Date.now() + (body.expires_in ?? 60) * 1000 - TOKEN_MARGIN_MS });
    this.log.debug({ upstream: this.base, repository: name }, 'upstream token obtained');
    return header;
  }

  /** Aborts downloads still running (a stopping server does not wait for a large blob). */
  async close(): Promise<void> {
    await this.agent.destroy();
  }
}
