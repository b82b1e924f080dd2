// A forwarding HTTP proxy that counts successful blob downloads per path: put between a mirror
// and its upstream, it counts upstream fetches, and stopped, it plays the upstream going down.
// Used by the mirror tests and bench/auth-mirror.ts.
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export class CountingProxy {
  server: Server;
  counts = new Map<string, number>();
  url = '';
  /** When set, the first byte of every blob body is flipped: an upstream serving corrupt content. */
  corrupt = false;
  constructor(private readonly target: string) {
    this.server = createServer((req, res) => {
      const t = new URL(this.target);
      const up = httpRequest({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: { ...req.headers, host: t.host } }, (ur) => {
        if (req.method === 'GET' && ur.statusCode === 200 && /\/blobs\//.test(req.url ?? '')) this.counts.set(req.url!, (this.counts.get(req.url!) ?? 0) + 1);
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        if (this.corrupt && /\/blobs\//.test(req.url ?? '')) {
          let first = true;
          ur.on('data', (c: Buffer) => {
            if (first && c.length > 0) c[0] = c[0]! ^ 0xff;
            first = false;
            res.write(c);
          });
          ur.on('end', () => res.end());
          return;
        }
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
  }
  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }
  count(path: string): number {
    return this.counts.get(path) ?? 0;
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
