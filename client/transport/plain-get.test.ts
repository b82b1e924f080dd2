// The plain-HTTP blob reader against a scripted TCP server (exact bytes on the wire), and pulls
// from a small registry whose blob responses are what plain-get.ts does not take itself: chunked
// bodies, redirects, a server that ignores Range after a cut. Bytes land in a real blob store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { createServer, type Server } from 'node:http';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { plainGet, PlainHttpError } from './plain-get.js';
import { withTempBlobStore } from '../../storage/testing.js';
import { LocalImageStore } from '../store/image-store.js';
import { Transport } from './registry-client.js';
import { parseConfig } from '../config.js';
import { pull } from '../pull.js';
import { Progress } from '../progress.js';
import { parseReference } from '../../oci/reference.js';
import { MediaType } from '../../oci/media-types.js';

const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const timeouts = { headersTimeout: 5000, bodyTimeout: 5000 };

/** A TCP server that answers each connection with `answer(socket, request)`. */
async function scripted(answer: (s: Socket, request: string) => void): Promise<{ url: string; requests: string[]; close: () => Promise<void> }> {
  const requests: string[] = [];
  const server: TcpServer = createTcpServer((s) => {
    let got = '';
    s.on('data', (d) => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) {
        requests.push(got);
        answer(s, got);
      }
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, requests, close: () => new Promise((r) => server.close(() => r())) };
}


const body = Buffer.alloc(3 << 20);
for (let i = 0; i < body.length; i++) body[i] = (i * 7919) % 256;

test('a Content-Length body arrives byte for byte, sent in odd pieces with the head', async () => {
  const srv = await scripted((s) => {
    const head = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nX-Twice: a\r\nx-twice: b\r\nContent-Length: ${body.length}\r\n\r\n`);
    // The head and the first body bytes in one write, then pieces of uneven size.
    s.write(Buffer.concat([head, body.subarray(0, 777)]));
    let at = 777;
    const next = (): void => {
      if (at >= body.length) return void s.end();
      const n = Math.min(body.length - at, 1 + ((at * 31) % 300_000));
      s.write(body.subarray(at, at + n), next);
      at += n;
    };
    next();
  });
  try {
    await withTempBlobStore(async (store) => {
      const res = await plainGet(new URL(`${srv.url}/v2/team/app/blobs/${sha(body)}`), { authorization: 'Bearer t0k' }, timeouts);
      assert.equal(res.statusCode, 200);
      assert.equal(res.contentLength, body.length);
      assert.deepEqual(res.headers['x-twice'], ['a', 'b'], 'a repeated header is an array, as node:http gives it');
      const ingest = await store.openIngest({ digest: sha(body), size: body.length });
      await res.pipeTo(ingest);
      assert.deepEqual(await ingest.finish(), { digest: sha(body), size: body.length });
      assert.ok((await store.readAll(sha(body))).equals(body));
    });
    assert.match(srv.requests[0]!, new RegExp(`^GET /v2/team/app/blobs/${sha(body)} HTTP/1\\.1\\r\\n`));
    assert.match(srv.requests[0]!, /\r\nauthorization: Bearer t0k\r\n/);
    assert.match(srv.requests[0]!, /\r\nhost: 127\.0\.0\.1:\d+\r\n/);
  } finally {
    await srv.close();
  }
});

test('a sink that asks to pause is waited for: every byte arrives, in order', async () => {
  const big = Buffer.alloc(24 << 20);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i, i);
  const srv = await scripted((s) => s.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\n\r\n`), big])));
  try {
    // A sink over 1 MiB of room that turns unwritable after every 3 MiB for a few milliseconds,
    // as a blob ingest does while its batches are on their way to a slow disk.
    const got = Buffer.alloc(big.length);
    let at = 0;
    let room = Buffer.alloc(1 << 20);
    let pausedTimes = 0;
    let blockedUntil = 0;
    const sink = {
      reserve: () => room,
      commit(n: number) {
        room.copy(got, at, 0, n);
        at += n;
        room = Buffer.alloc(1 << 20);
        if (at % (3 << 20) < n) blockedUntil = Date.now() + 5;
      },
      push(c: Uint8Array) {
        got.set(c, at);
        at += c.length;
      },
      get writable() {
        return Date.now() >= blockedUntil;
      },
      whenWritable() {
        pausedTimes++;
        return new Promise<void>((r) => setTimeout(r, Math.max(0, blockedUntil - Date.now())));
      },
    };
    const res = await plainGet(new URL(`${srv.url}/b`), {}, timeouts);
    await res.pipeTo(sink);
    assert.equal(at, big.length);
    assert.ok(got.equals(big), 'the bytes arrived in order');
    assert.ok(pausedTimes > 0, 'the reader waited for the sink');
  } finally {
    await srv.close();
  }
});

test('skip discards the first bytes of the body; the rest is stored', async () => {
  const srv = await scripted((s) => s.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body])));
  try {
    await withTempBlobStore(async (store) => {
      const tail = body.subarray(100_000);
      const res = await plainGet(new URL(`${srv.url}/b`), {}, timeouts);
      const ingest = await store.openIngest({ digest: sha(tail), size: tail.length });
      await res.pipeTo(ingest, 100_000);
      assert.equal((await ingest.finish()).digest, sha(tail));
    });
  } finally {
    await srv.close();
  }
});

test('a cut body, a body longer than its Content-Length and a malformed head fail clearly', async () => {
  await withTempBlobStore(async (store, layout) => {
    const cut = await scripted((s) => s.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body.subarray(0, 1000)])));
    const long = await scripted((s) => s.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n`), body.subarray(0, 20)])));
    const garbage = await scripted((s) => s.end('SSH-2.0-OpenSSH_9.2\r\n\r\n'));
    const chunked = await scripted((s) => s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'));
    try {
      const a = await store.openIngest({ digest: sha(body), size: body.length });
      await assert.rejects((await plainGet(new URL(`${cut.url}/b`), {}, timeouts)).pipeTo(a), (e: NodeJS.ErrnoException) => e.code === 'ECONNRESET' && /closed \d+ bytes before the end of the body/.test(e.message));
      await a.abort();

      const b = await store.openIngest({ digest: sha(body.subarray(0, 10)), size: 10 });
      await assert.rejects((await plainGet(new URL(`${long.url}/b`), {}, timeouts)).pipeTo(b), /sent more than the Content-Length/);
      await b.abort();

      await assert.rejects(plainGet(new URL(`${garbage.url}/b`), {}, timeouts), (e: unknown) => e instanceof PlainHttpError && /malformed status line/.test(String(e)));
      // Not framed by Content-Length: reported, for the caller to ask through undici.
      const c = await plainGet(new URL(`${chunked.url}/b`), {}, timeouts);
      assert.equal(c.contentLength, undefined);
      c.destroy();
      assert.deepEqual(await readdir(layout.tmpDir), []);
    } finally {
      await Promise.all([cut.close(), long.close(), garbage.close(), chunked.close()]);
    }
  });
});

/**
 * A registry serving one image, whose blob GETs behave as `mode` says: `chunked` (no
 * Content-Length), `redirect` (307 to another path of the same server), `ignore-range` (the first
 * GET is cut halfway, and the Range request that follows gets the whole blob with 200).
 */
async function oddRegistry(mode: 'chunked' | 'redirect' | 'ignore-range'): Promise<{ host: string; log: string[]; close: () => Promise<void>; digest: string }> {
  const layer = body;
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(layer)] }, config: {} }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: sha(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(layer), size: layer.length }],
    }),
  );
  const blobs = new Map([
    [sha(config), config],
    [sha(layer), layer],
  ]);
  const log: string[] = [];
  let cut = false;
  const server: Server = createServer((req, res) => {
    log.push(`${req.method} ${req.url}${req.headers.range ? ` ${req.headers.range}` : ''}`);
    const url = req.url ?? '';
    if (url === '/v2/') return void res.end('{}');
    if (url === '/v2/team/odd/manifests/1') {
      res.setHeader('content-type', MediaType.OciManifest);
      res.setHeader('docker-content-digest', sha(manifest));
      return void res.end(manifest);
    }
    const m = /^\/v2\/team\/odd\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url) ?? /^\/storage\/(sha256:[0-9a-f]{64})$/.exec(url);
    const blob = m && blobs.get(m[1]!);
    if (!blob) {
      res.statusCode = 404;
      return void res.end('{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}');
    }
    if (mode === 'redirect' && url.startsWith('/v2/')) {
      res.statusCode = 307;
      res.setHeader('location', `/storage/${m[1]}`);
      return void res.end();
    }
    if (mode === 'chunked') {
      // No Content-Length: node frames the body with chunked encoding.
      res.write(blob.subarray(0, 1000));
      return void res.end(blob.subarray(1000));
    }
    res.setHeader('content-length', blob.length);
    if (mode === 'ignore-range' && blob === layer && !cut) {
      cut = true;
      res.write(blob.subarray(0, blob.length >> 1), () => res.socket?.destroy());
      return;
    }
    res.end(blob);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { host: `127.0.0.1:${port}`, log, digest: sha(manifest), close: () => new Promise((r) => server.close(() => r())) };
}

for (const mode of ['chunked', 'redirect', 'ignore-range'] as const) {
  test(`a pull takes blobs a registry serves ${mode === 'chunked' ? 'with chunked encoding' : mode === 'redirect' ? 'through a redirect' : 'ignoring Range after a cut'}`, async () => {
    const reg = await oddRegistry(mode);
    const root = await mkdtemp(join(tmpdir(), 'berth-plain-pull-'));
    const store = await LocalImageStore.open(root);
    const transport = new Transport(parseConfig({}, 'test.json'));
    try {
      const progress = new Progress(new Writable({ write: (_c, _e, cb) => cb() }), { quiet: true });
      const pulled = await pull(transport, store, parseReference(`${reg.host}/team/odd:1`), { progress });
      assert.equal(pulled.digest, reg.digest);
      assert.ok((await store.blobs.readAll(sha(body))).equals(body), 'the layer is stored byte for byte');
      if (mode === 'redirect') assert.ok(reg.log.includes(`GET /storage/${sha(body)}`), reg.log.join(', '));
      if (mode === 'ignore-range') assert.ok(reg.log.some((l) => new RegExp(`^GET /v2/team/odd/blobs/${sha(body)} bytes=[1-9]\\d*-$`).test(l)), reg.log.join(', '));
    } finally {
      await transport.close();
      await rm(root, { recursive: true, force: true });
      await reg.close();
    }
  });
}
