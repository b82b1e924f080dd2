// HTTP to one registry endpoint over Node's node:http/node:https (keep-alive pools, http-pool.ts), with the challenge
// flow of docker-registry-api/token.md: ping /v2/, then Basic, or Bearer tokens fetched from the
// realm with service + scope and cached per scope until they expire.
import { registryTlsOptions } from '../../oci/trusted-cas.js';
import { HttpPool, request, type HttpMethod, type Response } from './http-pool.js';
import type { LookupFunction } from 'node:net';
import type { Readable } from 'node:stream';
import { RegistryError } from '../../oci/errors.js';
import { DOCKER_HUB, DOCKER_HUB_API_HOST, DOCKER_HUB_INDEX_HOST } from '../../oci/reference.js';
import { AccessPolicy, isLoopbackRegistry } from '../../oci/access-policy.js';
import type { Challenge } from '../../oci/auth-challenge.js';
import type { RegistryToken } from '../../oci/registry-token.js';
import type { Credentials } from '../credentials.js';
import type { BodySink } from './plain-get.js';
import type { ClientConfig } from '../config.js';

// Imported when first needed: a registry without auth never loads the challenge, token and
// credentials modules, and a push never loads the blob reader (each ESM module costs ~0.4-0.7 ms
// of start-up; docs/performance.md, "Start-up").
const authChallenge = () => import('../../oci/auth-challenge.js');
const registryToken = () => import('../../oci/registry-token.js');

export type { Response };
type Body = string | Buffer | Readable | null;

export interface RequestOptions {
  method?: HttpMethod;
  /** Path starting with /v2/, or an absolute URL (upload Locations). */
  path: string;
  headers?: Record<string, string>;
  /** A factory, so a request answered 401 can be sent again with a fresh body. */
  body?: () => Body;
  /** Token scopes this request needs: `repository:team/app:pull`. */
  scopes?: string[];
  /** Statuses returned to the caller; any other status throws the registry's error. */
  ok?: number[];
  /** Follow 3xx (blob GETs redirected to storage); Authorization is kept on the same origin only. */
  followRedirects?: boolean;
}

/** A failure to reach a registry at all (as opposed to an HTTP error it answered with). */
export class UnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnreachableError';
  }
}

/** A blob GET's answer whose body is read into a BodySink (RegistryClient.getBlob). */
export interface BlobResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  /** Streams the body into `sink`, discarding its first `skip` bytes; resolves at its end. */
  pipeTo(sink: BodySink, skip: number): Promise<void>;
  destroy(): void;
}

/** The same over http-pool.ts: body chunks are copied into the sink. */
function pooledBlobResponse(res: Response): BlobResponse {
  return {
    statusCode: res.statusCode,
    headers: res.headers,
    async pipeTo(sink, skip) {
      const { bodyChunks } = await import('./body-chunks.js');
      for await (const raw of bodyChunks(res.body)) {
        let c = raw;
        if (skip > 0) {
          const k = Math.min(skip, c.length);
          skip -= k;
          c = c.subarray(k);
        }
        if (c.length > 0) sink.push(c);
        if (!sink.writable) await sink.whenWritable();
      }
    },
    destroy: () => res.body.destroy(),
  };
}

const HEADERS_TIMEOUT = 60_000;
const BODY_TIMEOUT = 120_000;

export interface TransportOptions {
  /** DNS override (tests use it to give a name to a loopback registry). */
  lookup?: LookupFunction;
  /** Credentials to use instead of the stored ones (`berth login` verifies these). */
  credentials?: (host: string) => Credentials | undefined;
}

/** Connection pools, the access policy and a RegistryClient per endpoint, shared by one command. */
export class Transport {
  readonly policy: AccessPolicy;
  readonly config: ClientConfig;
  private verifiedAgent: HttpPool | undefined;
  private unverifiedAgent: HttpPool | undefined;
  private readonly clients = new Map<string, RegistryClient>();
  readonly options: TransportOptions;

  constructor(config: ClientConfig, options: TransportOptions = {}) {
    this.config = config;
    this.options = options;
    this.policy = new AccessPolicy(config.insecureRegistries);
  }

  private pool(tls: HttpPool['options']['tls']): HttpPool {
    const { lookup } = this.options;
    return new HttpPool({ tls, ...(lookup ? { lookup } : {}), keepAliveTimeout: 30_000, connections: 16, headersTimeout: HEADERS_TIMEOUT, bodyTimeout: BODY_TIMEOUT });
  }

  /** Pools are made on first use: the verified one reads the extra CAs (oci/trusted-cas.ts). */
  agentFor(host: string): HttpPool {
    if (this.policy.isInsecure(host)) {
      // `ca: []`: nothing is verified, so the TLS context need not parse Node's ~140 bundled roots
      // (28 ms of every push or pull to a loopback registry, which tries HTTPS before HTTP).
      return (this.unverifiedAgent ??= this.pool({ rejectUnauthorized: false, ca: [] }));
    }
    return (this.verifiedAgent ??= this.pool(registryTlsOptions()));
  }

  /** The client of `host`; `scheme` pins http/https (mirrors written with a scheme). */
  client(host: string, scheme?: 'http' | 'https'): RegistryClient {
    const key = `${scheme ?? ''}://${host}`;
    let c = this.clients.get(key);
    if (!c) {
      c = new RegistryClient(this, host, scheme);
      this.clients.set(key, c);
    }
    return c;
  }

  async close(): Promise<void> {
    this.verifiedAgent?.close();
    this.unverifiedAgent?.close();
  }
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

function tlsProtocolError(e: unknown): boolean {
  const err = e as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const text = `${err.code ?? ''} ${err.message ?? ''} ${err.cause?.code ?? ''} ${err.cause?.message ?? ''}`;
  return /ERR_SSL|wrong version number|packet length too long|EPROTO|SSL routines/i.test(text);
}

function certificateError(e: unknown): string | undefined {
  const err = e as { code?: string; cause?: { code?: string } };
  const code = err.code ?? err.cause?.code ?? '';
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT/.test(code) ? code : undefined;
}

function describe(e: unknown): string {
  const err = e as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const msg = err.cause?.message || err.message || String(e);
  return msg;
}

export class RegistryClient {
  readonly host: string;
  private readonly transport: Transport;
  private readonly pinnedScheme: 'http' | 'https' | undefined;
  private base: string | undefined;
  private pinging: Promise<void> | undefined;
  private challenge: Challenge | undefined;
  private credentials: Credentials | undefined | null = null;
  private readonly tokens = new Map<string, CachedToken>();

  constructor(transport: Transport, host: string, scheme?: 'http' | 'https') {
    this.transport = transport;
    this.host = host;
    this.pinnedScheme = scheme;
  }

  private get agent(): HttpPool {
    return this.pinnedScheme === 'http' ? this.transport.agentFor('127.0.0.1') : this.transport.agentFor(this.host);
  }

  /** `scheme://host`, once the ping chose the scheme. */
  get baseUrl(): string {
    if (!this.base) throw new Error('registry client used before ping');
    return this.base;
  }

  private async creds(): Promise<Credentials | undefined> {
    if (this.credentials === null) {
      // Credentials are filed under the registry's name: Docker Hub's API host is docker.io's.
      const registry = this.host === DOCKER_HUB_API_HOST || this.host === DOCKER_HUB_INDEX_HOST ? DOCKER_HUB : this.host;
      this.credentials = this.transport.options.credentials ? this.transport.options.credentials(registry) : await (await import('../credentials.js')).findCredentials(registry);
    }
    return this.credentials ?? undefined;
  }

  /**
   * GET /v2/ to choose the scheme and learn the auth challenge. HTTPS is tried first; plain HTTP
   * only for insecure registries (docker-registry-api/api.md#api-version-check). A registry on
   * this machine (localhost, 127.0.0.0/8, ::1) is asked over plain HTTP first: a port speaks one
   * of the two, so the order decides only the cost, and Node's failed TLS attempt (loading
   * node:https and OpenSSL's context, the handshake) cost 40-150 ms of every push or pull to a
   * plain-HTTP local registry (docs/performance.md, "Client"); Go's, in docker and skopeo, costs
   * ~1 ms. Nothing leaves the machine in clear. The HTTP answer is taken only if it is a
   * registry's (200 or 401); anything else is kept until HTTPS has been tried too.
   */
  ping(): Promise<void> {
    this.pinging ??= this.doPing().catch((e) => {
      this.pinging = undefined;
      throw e;
    });
    return this.pinging;
  }

  private async doPing(): Promise<void> {
    const insecure = this.transport.policy.isInsecure(this.host);
    const local = insecure && !this.pinnedScheme && isLoopbackRegistry(this.host);
    const schemes: Array<'https' | 'http'> = this.pinnedScheme ? [this.pinnedScheme] : local ? ['http', 'https'] : insecure ? ['https', 'http'] : ['https'];
    let lastError: unknown;
    let httpAnswer: { base: string; res: Response } | undefined;
    const accept = async (base: string, res: Response): Promise<void> => {
      if (res.statusCode >= 500) throw new UnreachableError(`registry ${this.host} answered /v2/ with HTTP ${res.statusCode}`);
      this.base = base;
      if (res.statusCode === 401) this.challenge = (await authChallenge()).parseChallenge(res.headers['www-authenticate']);
    };
    for (const scheme of schemes) {
      const base = `${scheme}://${this.host}`;
      try {
        const res = await request(`${base}/v2/`, { method: 'GET', dispatcher: this.agent, headersTimeout: 30_000 });
        await res.body.dump();
        if (local && scheme === 'http' && res.statusCode !== 200 && res.statusCode !== 401) {
          // Perhaps a TLS server's "client sent an HTTP request to an HTTPS server": ask HTTPS.
          httpAnswer = { base, res };
          continue;
        }
        return await accept(base, res);
      } catch (e) {
        if (e instanceof UnreachableError) throw e;
        lastError = e;
      }
    }
    if (httpAnswer) return accept(httpAnswer.base, httpAnswer.res);
    if (!insecure && !this.pinnedScheme) {
      if (tlsProtocolError(lastError)) {
        throw new UnreachableError(
          `registry ${this.host} does not speak HTTPS (server gave an HTTP response to an HTTPS client?); to allow plain HTTP, add "${this.host}" to "insecure-registries" in ${this.transport.config.source}`,
        );
      }
      const cert = certificateError(lastError);
      if (cert) {
        throw new UnreachableError(`TLS certificate of registry ${this.host} is not trusted (${cert}); install its CA, or add "${this.host}" to "insecure-registries" in ${this.transport.config.source} to skip verification`);
      }
    }
    throw new UnreachableError(`cannot reach registry ${this.host}: ${describe(lastError)}`);
  }

  /** Verifies credentials as `berth login` does: a Basic ping, or a token fetched with them. */
  async verifyLogin(): Promise<void> {
    await this.ping();
    const creds = await this.creds();
    if (!this.challenge) return;
    if (this.challenge.scheme === 'basic') {
      const res = await request(`${this.baseUrl}/v2/`, { method: 'GET', headers: await this.basicHeader(creds), dispatcher: this.agent });
      await res.body.dump();
      if (res.statusCode === 401 || res.statusCode === 403) throw new RegistryError('UNAUTHORIZED', `login to ${this.host} failed: incorrect username or password`, { status: res.statusCode });
      if (res.statusCode >= 300) throw new RegistryError('UNKNOWN', `login to ${this.host} failed: HTTP ${res.statusCode}`);
      return;
    }
    await this.fetchToken(this.challenge, [], true);
  }

  private async basicHeader(creds: Credentials | undefined): Promise<Record<string, string>> {
    return creds ? { authorization: (await registryToken()).basicAuthorization(creds) } : {};
  }

  /** Fetches (or reuses) a bearer token for `scopes` from the challenge's realm (oci/registry-token.ts). */
  private async fetchToken(challenge: Challenge, scopes: string[], forLogin = false): Promise<string> {
    const key = [...new Set(scopes)].sort().join(' ');
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > Date.now() && !forLogin) return cached.token;
    const creds = await this.creds();
    const { requestToken, TokenError } = await registryToken();
    let issued: RegistryToken;
    try {
      issued = await requestToken({
        challenge,
        registry: this.baseUrl,
        policy: this.transport.policy,
        scopes,
        credentials: creds,
        account: forLogin ? creds?.username : undefined,
        send: (url, headers) => request(url, { method: 'GET', headers, dispatcher: this.transport.agentFor(url.host) }),
      });
    } catch (e) {
      if (!(e instanceof TokenError)) throw e;
      switch (e.kind) {
        case 'no-realm':
          throw new RegistryError('UNAUTHORIZED', `registry ${this.host} sent ${challenge.params.realm ? 'an invalid token realm' : 'a Bearer challenge without realm'}`);
        case 'realm-refused': {
          const hint = this.baseUrl.startsWith('http://') && e.realm.startsWith('http://') ? `; add "${new URL(e.realm).host}" to "insecure-registries" to allow it` : '';
          throw new RegistryError('UNAUTHORIZED', `${this.host}: ${e.message}${hint}`);
        }
        case 'unreachable':
          throw new UnreachableError(`cannot reach token service ${e.realm} of ${this.host}: ${describe(e.cause)}`);
        case 'refused':
          throw new RegistryError('UNAUTHORIZED', creds ? `authentication to ${this.host} failed: incorrect username or password` : `authentication required by ${this.host}: run berth login ${this.host}`, { status: 401 });
        case 'status':
          throw new RegistryError('UNAUTHORIZED', `token service of ${this.host} answered HTTP ${e.status}`);
        case 'invalid':
          throw new RegistryError('UNAUTHORIZED', `${this.host}: ${e.message}`);
      }
      throw e;
    }
    // Renew a few seconds early so a token does not expire between check and use.
    this.tokens.set(key, { token: issued.token, expiresAt: issued.expiresAt - 5000 });
    return issued.token;
  }

  private async authHeaders(scopes: string[]): Promise<Record<string, string>> {
    const ch = this.challenge;
    if (!ch) return {};
    if (ch.scheme === 'basic') return this.basicHeader(await this.creds());
    return { authorization: `Bearer ${await this.fetchToken(ch, scopes)}` };
  }

  /**
   * GETs a blob for a BodySink. From a plain-HTTP registry the socket reads straight into the
   * sink (plain-get.ts); what that reader does not take (an auth challenge, a redirect, an error
   * status, a body not framed by Content-Length) is asked again through request(), as is every
   * HTTPS registry. Same options and errors as request().
   */
  async getBlob(opts: RequestOptions): Promise<BlobResponse> {
    await this.ping();
    const url = new URL(opts.path, this.baseUrl);
    if (url.protocol === 'http:' && url.origin === this.baseUrl) {
      const { plainGet, PlainHttpError } = await import('./plain-get.js');
      const headers = { ...(opts.headers ?? {}), ...(await this.authHeaders(opts.scopes ?? [])) };
      try {
        const res = await plainGet(url, headers, { lookup: this.transport.options.lookup, headersTimeout: HEADERS_TIMEOUT, bodyTimeout: BODY_TIMEOUT });
        if ((opts.ok ?? [200]).includes(res.statusCode) && res.contentLength !== undefined) return res;
        res.destroy();
      } catch (e) {
        if (!(e instanceof PlainHttpError)) throw new UnreachableError(`GET ${url.pathname} on ${this.host} failed: ${describe(e)}`);
      }
    }
    return pooledBlobResponse(await this.request(opts));
  }

  /** Sends a request, answering an auth challenge once; non-`ok` statuses throw RegistryError. */
  async request(opts: RequestOptions): Promise<Response> {
    await this.ping();
    const scopes = opts.scopes ?? [];
    let url = new URL(opts.path, this.baseUrl);
    let headers = { ...(opts.headers ?? {}), ...(await this.authHeaders(scopes)) };
    let retriedAuth = false;
    let redirects = 0;
    for (;;) {
      let res: Response;
      const sameOrigin = url.origin === this.baseUrl;
      try {
        res = await request(url, {
          method: opts.method ?? 'GET',
          headers: sameOrigin ? headers : Object.fromEntries(Object.entries(headers).filter(([k]) => k !== 'authorization')),
          body: opts.body?.() ?? null,
          dispatcher: sameOrigin ? this.agent : this.transport.agentFor(url.host),
        });
      } catch (e) {
        throw new UnreachableError(`${opts.method ?? 'GET'} ${url.pathname} on ${this.host} failed: ${describe(e)}`);
      }
      if (res.statusCode === 401 && !retriedAuth && sameOrigin) {
        await res.body.dump();
        retriedAuth = true;
        const ch = (await authChallenge()).parseChallenge(res.headers['www-authenticate']);
        if (ch) {
          this.challenge = ch;
          // The challenge names the scope it wants (e.g. pull on a mount's source repository).
          const wanted = ch.params.scope ? [...scopes, ...ch.params.scope.split(' ')] : scopes;
          if (ch.scheme === 'bearer') this.tokens.delete([...new Set(wanted)].sort().join(' '));
          headers = { ...(opts.headers ?? {}), ...(await this.authHeaders(wanted)) };
          continue;
        }
      }
      if (opts.followRedirects && [301, 302, 303, 307, 308].includes(res.statusCode) && res.headers.location && redirects < 5) {
        await res.body.dump();
        redirects++;
        url = new URL(String(res.headers.location), url);
        continue;
      }
      if ((opts.ok ?? [200]).includes(res.statusCode)) return res;
      const text = await res.body.text().catch(() => '');
      if (res.statusCode === 401) {
        const creds = await this.creds();
        if (!creds) throw new RegistryError('UNAUTHORIZED', `${this.host}: authentication required: run berth login ${this.host}`);
        // With Bearer the token service accepted the credentials: what is missing is the right.
        if (this.challenge?.scheme === 'bearer') throw new RegistryError('DENIED', `${this.host}: requested access to the resource is denied (${[...new Set(scopes)].join(' ') || url.pathname} for ${creds.username})`, { status: 401 });
        throw new RegistryError('UNAUTHORIZED', `${this.host}: unauthorized: incorrect username or password`);
      }
      throw RegistryError.fromResponse(res.statusCode, text);
    }
  }
}
