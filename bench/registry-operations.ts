// The measured operations, written against the Distribution API only, so the same code drives
// Berth and the reference registry. Every request checks its status: a fast wrong answer is no figure.
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import type { Readable } from 'node:stream';
import { Pool } from 'undici';
import { blobChunks, blobDigest } from './blob-source.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';

export interface Throughput {
  mbps: number;
  seconds: number;
}

type Headers = Record<string, string | string[] | undefined>;

async function call(pool: Pool, method: string, path: string, expect: number, opts: { headers?: Record<string, string>; body?: Buffer | string | Iterable<Buffer> } = {}): Promise<{ headers: Headers; body: Buffer }> {
  const res = await pool.request({ method: method as 'GET', path, headers: opts.headers ?? {}, body: (opts.body ?? null) as Readable | Buffer | string | null }); // undici accepts iterables; its types lag
  const body = Buffer.from(await res.body.arrayBuffer());
  if (res.statusCode !== expect) throw new Error(`${method} ${path}: expected ${expect}, got ${res.statusCode}: ${body.toString().slice(0, 300)}`);
  return { headers: res.headers, body };
}

/** The path and query of a Location header, absolute (reference) or relative (Berth). */
function locationPath(headers: Headers, origin: string): string {
  const loc = headers.location;
  if (typeof loc !== 'string') throw new Error('response has no Location header');
  const u = new URL(loc, origin);
  return u.pathname + u.search;
}

function withQuery(path: string, query: string): string {
  return path + (path.includes('?') ? '&' : '?') + query;
}

export class RegistryClient {
  readonly pool: Pool;
  constructor(readonly origin: string, connections = 32) {
    this.pool = new Pool(origin, { connections, pipelining: 1, bodyTimeout: 0, headersTimeout: 0 });
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  /** Monolithic push (distribution-spec POST then PUT with the whole body). */
  async pushMonolithic(repo: string, seed: number, size: number, digest = blobDigest(seed, size)): Promise<Throughput> {
    const t0 = performance.now();
    const started = await call(this.pool, 'POST', `/v2/${repo}/blobs/uploads/`, 202);
    const put = withQuery(locationPath(started.headers, this.origin), `digest=${encodeURIComponent(digest)}`);
    await call(this.pool, 'PUT', put, 201, {
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: blobChunks(seed, 0, size),
    });
    return rate(size, t0);
  }

  /** Chunked push: PATCH with Content-Range per chunk, then PUT ?digest= with no body. */
  async pushChunked(repo: string, seed: number, size: number, chunkBytes: number, digest = blobDigest(seed, size)): Promise<Throughput> {
    const t0 = performance.now();
    const started = await call(this.pool, 'POST', `/v2/${repo}/blobs/uploads/`, 202);
    let location = locationPath(started.headers, this.origin);
    for (let at = 0; at < size; at += chunkBytes) {
      const end = Math.min(size, at + chunkBytes);
      const res = await call(this.pool, 'PATCH', location, 202, {
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - at), 'content-range': `${at}-${end - 1}` },
        body: blobChunks(seed, at, end),
      });
      location = locationPath(res.headers, this.origin);
    }
    await call(this.pool, 'PUT', withQuery(location, `digest=${encodeURIComponent(digest)}`), 201, { headers: { 'content-length': '0' } });
    return rate(size, t0);
  }

  /**
   * Pulls a blob, counting (not keeping) its bytes, over a raw socket that reads into one reused
   * buffer (net `onread`). Node's HTTP clients allocate a buffer per socket read: undici and
   * node:http cost the client 4-6 CPU-s per GiB here, several times what either server spent
   * sending, so they measured the client rather than the servers.
   */
  async pull(repo: string, digest: string, size: number): Promise<Throughput> {
    const t0 = performance.now();
    const { hostname, port } = new URL(this.origin);
    const got = await new Promise<number>((resolve, reject) => {
      let head = '';
      let body = -1; // -1 while headers are still arriving
      let expected = -1;
      const socket = connect({
        host: hostname,
        port: Number(port),
        onread: {
          buffer: Buffer.allocUnsafe(1 << 20),
          callback: (n: number, buf: Uint8Array) => {
            if (body < 0) {
              head += Buffer.from(buf.buffer, buf.byteOffset, n).toString('latin1');
              const end = head.indexOf('\r\n\r\n');
              if (end < 0) return true;
              const status = /^HTTP\/1\.1 (\d{3})/.exec(head)?.[1];
              const length = /\r\ncontent-length: *(\d+)/i.exec(head.slice(0, end))?.[1];
              if (status !== '200' || length === undefined) {
                socket.destroy();
                reject(new Error(`pull: ${head.slice(0, end)}`));
                return false;
              }
              expected = Number(length);
              body = head.length - end - 4;
            } else {
              body += n;
            }
            if (body >= expected) {
              socket.end();
              resolve(body);
            }
            return true;
          },
        },
      });
      socket.on('error', reject);
      socket.write(`GET /v2/${repo}/blobs/${digest} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: close\r\n\r\n`);
    });
    if (got !== size) throw new Error(`pull: received ${got} bytes, expected ${size}`);
    return rate(size, t0);
  }

  /** Small blob by single-request monolithic upload (POST then PUT with body). */
  async pushSmall(repo: string, bytes: Buffer, digest: string): Promise<void> {
    const started = await call(this.pool, 'POST', `/v2/${repo}/blobs/uploads/`, 202);
    await call(this.pool, 'PUT', withQuery(locationPath(started.headers, this.origin), `digest=${encodeURIComponent(digest)}`), 201, {
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) },
      body: bytes,
    });
  }

  async mount(repo: string, from: string, digest: string): Promise<void> {
    await call(this.pool, 'POST', `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`, 201);
  }

  async putManifest(repo: string, tag: string, manifest: Buffer): Promise<void> {
    await call(this.pool, 'PUT', `/v2/${repo}/manifests/${tag}`, 201, { headers: { 'content-type': OCI_MANIFEST }, body: manifest });
  }

  /** GET manifest requests per second with `connections` requests in flight for `seconds`. */
  async manifestLoad(repo: string, tag: string, expectBytes: number, connections: number, seconds: number): Promise<{ rps: number; requests: number }> {
    const path = `/v2/${repo}/manifests/${tag}`;
    const headers = { accept: OCI_MANIFEST };
    let requests = 0;
    const end = performance.now() + seconds * 1000;
    const t0 = performance.now();
    const worker = async () => {
      while (performance.now() < end) {
        const res = await this.pool.request({ method: 'GET', path, headers });
        const body = await res.body.arrayBuffer();
        if (res.statusCode !== 200 || body.byteLength !== expectBytes) throw new Error(`manifest GET: status ${res.statusCode}, ${body.byteLength} bytes`);
        requests++;
      }
    };
    await Promise.all(Array.from({ length: connections }, worker));
    return { rps: requests / ((performance.now() - t0) / 1000), requests };
  }

  /** Latency in ms of one `_catalog` page. */
  async catalogPage(n: number, last?: string): Promise<{ ms: number; names: string[] }> {
    const t0 = performance.now();
    const q = `n=${n}${last ? `&last=${encodeURIComponent(last)}` : ''}`;
    const { body } = await call(this.pool, 'GET', `/v2/_catalog?${q}`, 200);
    const ms = performance.now() - t0;
    return { ms, names: (JSON.parse(body.toString()) as { repositories: string[] }).repositories };
  }
}

function rate(bytes: number, t0: number): Throughput {
  const seconds = (performance.now() - t0) / 1000;
  return { mbps: bytes / 1e6 / seconds, seconds };
}

/** A tiny image: one small blob used as config and layer, and its OCI manifest. */
export function tinyImage(): { blob: Buffer; blobDigest: string; manifest: Buffer } {
  const blob = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
  const digest = `sha256:${createHashHex(blob)}`;
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest, size: blob.length },
      layers: [{ mediaType: OCI_LAYER, digest, size: blob.length }],
    }),
  );
  return { blob, blobDigest: digest, manifest };
}

function createHashHex(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Runs `fn(i)` for i in [0, count) with at most `concurrency` in flight. */
export async function forEachConcurrent(count: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}
