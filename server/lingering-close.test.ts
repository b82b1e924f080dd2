// Early answers to requests whose body is still arriving (413 for an oversized manifest, 404 for
// an unknown upload, 401 without credentials): the client must receive the whole answer, never a
// reset, however it sends; a client that never stops sending is cut off (server/lingering-close.ts).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as undiciRequest, Agent } from 'undici';
import { startTestRegistry, type TestRegistry } from './testing.js';
import { sh } from './test-images.js';
import { DEFAULT_AUTH } from './auth/config.js';
import { LINGER_BYTES, LINGER_MS } from './lingering-close.js';

const MiB = 1 << 20;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

interface RawAnswer {
  /** Everything received before the connection closed. */
  received: string;
  status: number;
  headers: Map<string, string>;
  body: string;
  /** The client's socket error, if any (ECONNRESET, EPIPE). */
  error?: string;
  /** Bytes of the body the client managed to write. */
  sent: number;
  /** Milliseconds from the first byte sent to the close. */
  ms: number;
}

interface RawOptions {
  port: number;
  tls?: boolean;
  head: string;
  /** Body bytes to send (Infinity: until the server closes). */
  bodyBytes: number;
  piece?: number;
  /** Pause between pieces, ms (0: only wait for drain). */
  pauseMs?: number;
  /** Requests sent on the same connection first, each answered before the next (keep-alive). */
  before?: string[];
  /**
   * Reads only once the whole body is written, as a simple client does (write the request, then
   * read the answer); false: reads all along, as undici does.
   */
  readAfterSend?: boolean;
  /** Bytes sent right after the body (a pipelined request). */
  after?: string;
}

function parse(received: string): { status: number; headers: Map<string, string>; body: string; rest: string } {
  const end = received.indexOf('\r\n\r\n');
  if (end < 0) return { status: 0, headers: new Map(), body: '', rest: '' };
  const lines = received.slice(0, end).split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0]!)?.[1] ?? 0);
  const headers = new Map<string, string>();
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
  }
  const len = Number(headers.get('content-length') ?? 0);
  const body = received.slice(end + 4, end + 4 + len);
  return { status, headers, body, rest: received.slice(end + 4 + len) };
}

/**
 * A client on a raw socket: writes the head, then the body piece by piece (waiting for drain, as a
 * real uploader does), reading all the while, and keeps writing after the server's FIN (half-open)
 * until the body is sent or the socket fails. Resolves when the socket closes.
 */
function rawExchange(o: RawOptions): Promise<RawAnswer> {
  const piece = Buffer.alloc(o.piece ?? 64 * 1024, 0x61);
  return new Promise((resolve) => {
    const started = Date.now();
    let received = '';
    let error: string | undefined;
    let sent = 0;
    let closed = false;
    const pending = [...(o.before ?? [])];
    const onConnect = () => {
      if (pending.length > 0) sock.write(pending[0]!);
      else void sendMain();
    };
    const sock: Socket = o.tls
      ? tlsConnect({ host: '127.0.0.1', port: o.port, rejectUnauthorized: false, allowHalfOpen: true } as never, onConnect)
      : netConnect({ host: '127.0.0.1', port: o.port, allowHalfOpen: true }, onConnect);
    sock.on('data', (c: Buffer) => {
      received += c.toString('latin1');
      // Keep-alive warm-up: send the next request once the previous answer is complete.
      while (pending.length > 0) {
        const p = parse(received);
        if (p.status === 0 || Buffer.byteLength(received, 'latin1') < received.indexOf('\r\n\r\n') + 4 + p.body.length) break;
        received = p.rest;
        pending.shift();
        if (pending.length > 0) sock.write(pending[0]!);
        else void sendMain();
      }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    sock.on('end', () => {
      // The server half-closed: our side stays open for writing (allowHalfOpen) until we are done.
    });
    sock.on('close', () => {
      closed = true;
      const p = parse(received);
      resolve({ received, status: p.status, headers: p.headers, body: p.body, sent, ms: Date.now() - started, ...(error ? { error } : {}) });
    });
    const sendMain = async () => {
      if (o.readAfterSend ?? true) sock.pause();
      sock.write(o.head);
      while (sent < o.bodyBytes && !closed && sock.writable) {
        const n = Math.min(piece.length, o.bodyBytes - sent);
        const ok = sock.write(n === piece.length ? piece : piece.subarray(0, n));
        sent += n;
        if (!ok) await new Promise<void>((r) => { sock.once('drain', r); sock.once('close', r); });
        if (o.pauseMs) await new Promise((r) => setTimeout(r, o.pauseMs));
      }
      if (o.after && !closed && sock.writable) sock.write(o.after);
      if (!closed && sock.writable) sock.end();
      sock.resume();
    };
  });
}

function head(method: string, path: string, headers: Record<string, string | number>): string {
  return `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
}

function assertRegistryError(a: RawAnswer, status: number, code: string, what: string): void {
  assert.equal(a.status, status, `${what}: status (got ${JSON.stringify(a.received.slice(0, 200))}, client error ${a.error})`);
  const body = JSON.parse(a.body) as { errors: Array<{ code: string }> };
  assert.equal(body.errors[0]?.code, code, what);
  assert.equal(a.headers.get('connection'), 'close', `${what}: the answer announces the close`);
}

async function openFds(): Promise<number> {
  return (await readdir('/proc/self/fd')).length;
}

/** Waits until the process has at most `n` open descriptors (sockets closed by the server). */
async function settleFds(n: number, ms = 3000): Promise<number> {
  const until = Date.now() + ms;
  let now = await openFds();
  while (now > n && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
    now = await openFds();
  }
  return now;
}

const ROUNDS = 20;

describe('early answers while the request body is still arriving', () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startTestRegistry({ limits: { maxManifestBytes: 4 * MiB, maxBlobBytes: 0 } });
  });
  after(() => reg.destroy());

  for (const readAfterSend of [true, false]) {
    it(`oversized manifest PUT (5 MiB, cap 4 MiB) on a raw socket, ${readAfterSend ? 'read after sending' : 'read while sending'}: 413 SIZE_INVALID received intact, ${ROUNDS} times`, async () => {
      const fds = await openFds();
      for (let i = 0; i < ROUNDS; i++) {
        const a = await rawExchange({ port: reg.port, head: head('PUT', '/v2/linger/app/manifests/big', { 'Content-Type': OCI_MANIFEST, 'Content-Length': 5 * MiB }), bodyBytes: 5 * MiB, readAfterSend });
        assertRegistryError(a, 413, 'SIZE_INVALID', `round ${i}`);
      }
      assert.ok((await settleFds(fds + 2)) <= fds + 2, 'no socket left open');
    });
  }

  it(`oversized manifest PUT sent chunked (no Content-Length): 413 received intact, ${ROUNDS} times`, async () => {
    for (let i = 0; i < ROUNDS; i++) {
      // One chunk per 64 KiB piece would need framing: one chunk of 5 MiB, sent in pieces, is the same on the wire.
      const a = await rawExchange({
        port: reg.port,
        head: `${head('PUT', '/v2/linger/app/manifests/big', { 'Content-Type': OCI_MANIFEST, 'Transfer-Encoding': 'chunked' })}${(5 * MiB).toString(16)}\r\n`,
        bodyBytes: 5 * MiB,
      });
      assertRegistryError(a, 413, 'SIZE_INVALID', `round ${i}`);
    }
  });

  it(`oversized manifest PUT with undici and the whole body: 413 received intact, ${ROUNDS} times`, async () => {
    const body = Buffer.alloc(5 * MiB, 0x61);
    const dispatcher = new Agent();
    try {
      for (let i = 0; i < ROUNDS; i++) {
        const r = await undiciRequest(`${reg.url}/v2/linger/app/manifests/big`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body, dispatcher });
        const text = await r.body.text();
        assert.equal(r.statusCode, 413, text);
        assert.equal((JSON.parse(text) as { errors: Array<{ code: string }> }).errors[0]?.code, 'SIZE_INVALID');
      }
    } finally {
      await dispatcher.close();
    }
  });

  it(`PATCH of an unknown upload with a 8 MiB body: 404 BLOB_UPLOAD_UNKNOWN received intact, ${ROUNDS} times`, async () => {
    for (let i = 0; i < ROUNDS; i++) {
      const a = await rawExchange({
        port: reg.port,
        head: head('PATCH', `/v2/linger/app/blobs/uploads/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`, { 'Content-Type': 'application/octet-stream', 'Content-Length': 8 * MiB }),
        bodyBytes: 8 * MiB,
      });
      assertRegistryError(a, 404, 'BLOB_UPLOAD_UNKNOWN', `round ${i}`);
    }
  });

  it('on a keep-alive connection, a later request answered early is received intact too', async () => {
    for (let i = 0; i < 5; i++) {
      const a = await rawExchange({
        port: reg.port,
        before: [head('GET', '/v2/', {}), head('GET', '/v2/', {})],
        head: head('PUT', '/v2/linger/app/manifests/big', { 'Content-Type': OCI_MANIFEST, 'Content-Length': 5 * MiB }),
        bodyBytes: 5 * MiB,
      });
      assertRegistryError(a, 413, 'SIZE_INVALID', `round ${i}`);
    }
  });

  it('a request pipelined after the refused body is not run (RFC 9112 §9.6): one answer only', async () => {
    for (let i = 0; i < 5; i++) {
      const a = await rawExchange({
        port: reg.port,
        head: head('PUT', '/v2/linger/app/manifests/big', { 'Content-Type': OCI_MANIFEST, 'Content-Length': 5 * MiB }),
        bodyBytes: 5 * MiB,
        after: head('PUT', '/v2/linger/app/blobs/uploads/', {}).replace('PUT', 'POST'),
      });
      assertRegistryError(a, 413, 'SIZE_INVALID', `round ${i}`);
      assert.equal(a.received.split('HTTP/1.1 ').length - 1, 1, 'one answer');
    }
    assert.deepEqual(await readdir(join(reg.dataDir, 'uploads')), [], 'the pipelined POST opened no upload session');
  });

  it('a request answered after its body was read keeps the connection open (no Connection: close)', async () => {
    const r = await undiciRequest(`${reg.url}/v2/linger/app/manifests/small`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: '{"not":"a manifest"}' });
    assert.equal(r.statusCode, 400);
    assert.notEqual(r.headers.connection, 'close');
    await r.body.text();
  });

  it(`a client that never stops sending is cut off after about ${LINGER_MS} ms (slow) or ${LINGER_BYTES / MiB} MiB (fast); the server stays healthy`, async () => {
    const fds = await openFds();
    const slow = await rawExchange({
      port: reg.port,
      head: head('PUT', '/v2/linger/app/manifests/big', { 'Content-Type': OCI_MANIFEST, 'Content-Length': 1 << 30 }),
      bodyBytes: Number.POSITIVE_INFINITY,
      readAfterSend: false,
      piece: 16 * 1024,
      pauseMs: 20,
    });
    assertRegistryError(slow, 413, 'SIZE_INVALID', 'slow sender');
    assert.ok(slow.ms >= LINGER_MS - 500 && slow.ms < LINGER_MS + 3000, `closed after ${slow.ms} ms`);
    const fast = await rawExchange({
      port: reg.port,
      head: head('PUT', '/v2/linger/app/manifests/big', { 'Content-Type': OCI_MANIFEST, 'Content-Length': 1 << 30 }),
      bodyBytes: Number.POSITIVE_INFINITY,
      readAfterSend: false,
    });
    assert.ok(fast.sent < LINGER_BYTES + 64 * MiB, `cut off after ${fast.sent} bytes`);
    assert.ok(fast.ms < LINGER_MS + 3000, `closed after ${fast.ms} ms`);
    assert.ok((await settleFds(fds + 2)) <= fds + 2, 'no socket left open');
    const ping = await undiciRequest(`${reg.url}/v2/`);
    assert.equal(ping.statusCode, 200);
    await ping.body.text();
  });
});

describe('early answers over TLS', () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startTestRegistry({ tls: { cert: '', key: '', selfSigned: true } });
  });
  after(() => reg.destroy());

  it(`oversized manifest PUT over TLS: 413 received intact, ${ROUNDS / 2} times; an endless sender is cut off`, async () => {
    for (let i = 0; i < ROUNDS / 2; i++) {
      const a = await rawExchange({ port: reg.port, tls: true, head: head('PUT', '/v2/linger/app/manifests/big', { 'Content-Type': OCI_MANIFEST, 'Content-Length': 5 * MiB }), bodyBytes: 5 * MiB });
      assertRegistryError(a, 413, 'SIZE_INVALID', `round ${i}`);
    }
    const endless = await rawExchange({ port: reg.port, tls: true, head: head('PUT', '/v2/linger/app/manifests/big', { 'Content-Type': OCI_MANIFEST, 'Content-Length': 1 << 30 }), bodyBytes: Number.POSITIVE_INFINITY, readAfterSend: false });
    assertRegistryError(endless, 413, 'SIZE_INVALID', 'endless sender');
    assert.ok(endless.ms < LINGER_MS + 3000, `closed after ${endless.ms} ms`);
  });
});

describe('early answers of an auth-enabled registry', () => {
  let reg: TestRegistry;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-linger-'));
    const users = join(dir, 'users');
    await sh('htpasswd', ['-B', '-c', '-b', users, 'alice', 'alice-pw']);
    reg = await startTestRegistry({ auth: { ...DEFAULT_AUTH, mode: 'token', htpasswd: users } });
  });
  after(async () => {
    await reg?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it(`unauthenticated PUT with a 5 MiB body: 401 with its WWW-Authenticate challenge received intact, ${ROUNDS} times`, async () => {
    for (let i = 0; i < ROUNDS; i++) {
      const a = await rawExchange({ port: reg.port, head: head('PUT', '/v2/team/app/manifests/v1', { 'Content-Type': OCI_MANIFEST, 'Content-Length': 5 * MiB }), bodyBytes: 5 * MiB });
      assertRegistryError(a, 401, 'UNAUTHORIZED', `round ${i}`);
      assert.equal(a.headers.get('www-authenticate'), `Bearer realm="http://127.0.0.1/token",service="berth",scope="repository:team/app:pull,push"`);
    }
  });

  it(`oversized POST /token form (5 MiB): OAuth invalid_request received intact, ${ROUNDS / 2} times`, async () => {
    for (let i = 0; i < ROUNDS / 2; i++) {
      const a = await rawExchange({ port: reg.port, head: head('POST', '/token', { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': 5 * MiB }), bodyBytes: 5 * MiB });
      assert.ok(a.status === 413 || a.status === 400, `round ${i}: ${a.received.slice(0, 200)} ${a.error}`);
      assert.equal((JSON.parse(a.body) as { error: string }).error, 'invalid_request');
    }
  });
});
