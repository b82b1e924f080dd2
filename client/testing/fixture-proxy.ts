// A small HTTP front for a real registry, for the client tests: it can require Bearer tokens it
// issues itself (a token service per docker-registry-api/token.md), and inject faults (a 503,
// a response cut halfway) to exercise retries and resumption. The registry behind it is real.
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';

export type Fault = 'fail-503' | 'cut-response' | undefined;

export interface ProxyOptions {
  /** Users accepted by the token service; when set, every /v2/ request needs a Bearer token. */
  tokenUsers?: Record<string, string>;
  /** Seconds a token lives. */
  tokenSeconds?: number;
  /** Decides a fault per request (called for /v2/ requests only). */
  fault?: (req: IncomingMessage) => Fault;
}

export interface FixtureProxy {
  host: string;
  url: string;
  /** Token requests received, with their scopes. */
  tokenRequests: string[][];
  /** Requests seen: `METHOD path` (with Range when present). */
  log: string[];
  close(): Promise<void>;
}

function scopeFor(req: IncomingMessage): { name: string; action: 'pull' | 'push' } | undefined {
  const m = /^\/v2\/(.+?)\/(blobs|manifests|tags)\//.exec(req.url ?? '');
  if (!m) return undefined;
  return { name: m[1]!, action: req.method === 'GET' || req.method === 'HEAD' ? 'pull' : 'push' };
}

export async function startFixtureProxy(target: string, opts: ProxyOptions = {}): Promise<FixtureProxy> {
  const targetUrl = new URL(target);
  const tokens = new Map<string, { scopes: string[]; expires: number }>();
  const tokenRequests: string[][] = [];
  const log: string[] = [];
  let self = '';

  const challenge = (res: ServerResponse, scope?: string) => {
    res.statusCode = 401;
    res.setHeader('WWW-Authenticate', `Bearer realm="${self}/token",service="fixture"${scope ? `,scope="${scope}"` : ''}`);
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/token') {
      const scopes = url.searchParams.getAll('scope');
      tokenRequests.push(scopes);
      const auth = req.headers.authorization ?? '';
      const [user, pass] = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString().split(':') : [];
      if (!user || opts.tokenUsers?.[user] !== pass) {
        res.statusCode = 401;
        res.end(JSON.stringify({ details: 'incorrect username or password' }));
        return;
      }
      const token = randomUUID();
      const seconds = opts.tokenSeconds ?? 300;
      tokens.set(token, { scopes, expires: Date.now() + seconds * 1000 });
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ token, expires_in: seconds, issued_at: new Date().toISOString() }));
      return;
    }
    log.push(`${req.method} ${url.pathname}${req.headers.range ? ` ${req.headers.range}` : ''}`);
    if (opts.tokenUsers) {
      const auth = req.headers.authorization ?? '';
      const t = auth.startsWith('Bearer ') ? tokens.get(auth.slice(7)) : undefined;
      if (!t || t.expires < Date.now()) return challenge(res, scopeFor(req) ? `repository:${scopeFor(req)!.name}:${scopeFor(req)!.action === 'pull' ? 'pull' : 'pull,push'}` : undefined);
      const s = scopeFor(req);
      if (s && !t.scopes.some((x) => x.startsWith(`repository:${s.name}:`) && x.split(':')[2]!.split(',').includes(s.action))) {
        return challenge(res, `repository:${s.name}:${s.action === 'pull' ? 'pull' : 'pull,push'}`);
      }
    }
    const fault = opts.fault?.(req);
    if (fault === 'fail-503') {
      req.resume();
      res.statusCode = 503;
      res.end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'injected fault' }] }));
      return;
    }
    const headers = { ...req.headers, host: targetUrl.host };
    delete headers.authorization;
    const up = httpRequest({ host: targetUrl.hostname, port: targetUrl.port, method: req.method, path: req.url, headers }, (upRes) => {
      const h = { ...upRes.headers };
      if (typeof h.location === 'string') h.location = h.location.replace(targetUrl.origin, self);
      res.writeHead(upRes.statusCode ?? 502, h);
      if (fault === 'cut-response') {
        const total = Number(upRes.headers['content-length'] ?? 0);
        let sent = 0;
        upRes.on('data', (c: Buffer) => {
          if (sent >= total / 2) return;
          const part = c.subarray(0, Math.max(0, Math.ceil(total / 2) - sent));
          sent += part.length;
          const done = sent >= total / 2;
          // Let the half reach the client before the connection drops, so there is something to resume.
          res.write(part, () => {
            if (done) setTimeout(() => res.socket?.destroy(), 50);
          });
          if (done) upRes.destroy();
        });
        return;
      }
      upRes.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  self = `http://127.0.0.1:${port}`;
  return {
    host: `127.0.0.1:${port}`,
    url: self,
    tokenRequests,
    log,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
