// plain-exchange.ts against real servers on loopback: node:http for the ordinary answers, and a
// raw TCP server for what node:http would not send (interim answers, odd chunking, a cut body,
// a keep-alive connection closed while idle, malformed heads).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { PlainPool, type PlainExchange } from './plain-exchange.js';

const options = { connections: 4, keepAliveTimeout: 30_000, headersTimeout: 5_000, bodyTimeout: 5_000 };

async function listen(server: HttpServer | NetServer): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return `http://127.0.0.1:${address.port}`;
}

async function text(ex: PlainExchange): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of ex.body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('latin1');
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/**
 * A raw server: `answer` is called for every request of every connection (its head, its path, the
 * connection's number and the request's number on it) once the request's body (Content-Length)
 * has arrived; what it writes is the answer, byte for byte.
 */
async function rawServer(answer: (socket: Socket, req: { head: string; path: string; connection: number; request: number }) => void): Promise<{ url: string; server: NetServer; connections: () => number }> {
  let n = 0;
  const server = createNetServer((socket) => {
    const connection = n++;
    let request = 0;
    let buffered = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      buffered = Buffer.concat([buffered, d]);
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffered.subarray(0, end).toString('latin1');
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffered.length < end + 4 + length) return;
        buffered = buffered.subarray(end + 4 + length);
        answer(socket, { head, path: head.split(' ')[1]!, connection, request: request++ });
      }
    });
    socket.on('error', () => undefined);
  });
  return { url: await listen(server), server, connections: () => n };
}

test('GET, HEAD, 204 and a PUT with a body against node:http, all on one kept connection', async () => {
  const sockets = new Set<unknown>();
  const seen: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }> = [];
  const server = createHttpServer(async (req, res) => {
    sockets.add(req.socket);
    const body = (await readAll(req)).toString();
    seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
    if (req.url === '/empty') {
      res.statusCode = 204;
      return res.end();
    }
    const payload = JSON.stringify({ method: req.method, body });
    res.setHeader('content-type', 'application/json');
    res.setHeader('content-length', Buffer.byteLength(payload));
    res.setHeader('x-twice', ['a', 'b']);
    res.end(req.method === 'HEAD' ? undefined : payload);
  });
  const url = await listen(server);
  const pool = new PlainPool(options);
  try {
    const get = await pool.request(new URL(`${url}/v2/?x=1`), 'GET', { accept: 'application/json' }, undefined);
    assert.equal(get.statusCode, 200);
    assert.equal(get.headers['content-type'], 'application/json');
    assert.deepEqual(get.headers['x-twice'], ['a', 'b']);
    assert.deepEqual(JSON.parse(await text(get)), { method: 'GET', body: '' });

    const head = await pool.request(new URL(`${url}/v2/`), 'HEAD', {}, undefined);
    assert.equal(head.statusCode, 200);
    assert.ok(Number(head.headers['content-length']) > 0, 'HEAD says the length of the GET');
    assert.equal(await text(head), '', 'and has no body');

    const empty = await pool.request(new URL(`${url}/empty`), 'GET', {}, undefined);
    assert.equal(empty.statusCode, 204);
    assert.equal(await text(empty), '');

    const manifest = Buffer.from('{"schemaVersion":2}');
    const put = await pool.request(new URL(`${url}/v2/team/app/manifests/1`), 'PUT', { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, manifest);
    assert.deepEqual(JSON.parse(await text(put)), { method: 'PUT', body: manifest.toString() });

    const post = await pool.request(new URL(`${url}/v2/team/app/blobs/uploads/`), 'POST', {}, undefined);
    await text(post);

    assert.equal(seen[0]!.url, '/v2/?x=1');
    assert.equal(seen[0]!.headers.host, new URL(url).host);
    assert.equal(seen[0]!.headers.accept, 'application/json');
    assert.equal(seen[3]!.headers['content-length'], String(manifest.length));
    assert.equal(seen[3]!.headers['content-type'], 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(seen[4]!.headers['content-length'], '0', 'a POST without a body says so');
    assert.equal(sockets.size, 1, 'every request went over the first connection');
  } finally {
    pool.close();
    server.closeAllConnections();
    server.close();
  }
});

test('a chunked answer from node:http, and one too large for a socket buffer, arrive whole through a slow reader', async () => {
  const big = Buffer.alloc(8 << 20);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32BE(i, i);
  let connections = 0;
  const server = createHttpServer((req, res) => {
    if (req.url === '/chunked') {
      // No Content-Length: node:http sends Transfer-Encoding: chunked.
      res.write('first,');
      setTimeout(() => res.end('second'), 20);
      return;
    }
    res.setHeader('content-length', big.length);
    res.end(big);
  });
  server.on('connection', () => connections++);
  const url = await listen(server);
  const pool = new PlainPool(options);
  try {
    const chunked = await pool.request(new URL(`${url}/chunked`), 'GET', {}, undefined);
    assert.equal(chunked.headers['transfer-encoding'], 'chunked');
    assert.equal(await text(chunked), 'first,second');
    assert.equal(await text(await pool.request(new URL(`${url}/chunked`), 'GET', {}, undefined)), 'first,second');
    assert.equal(connections, 1, 'a chunked answer ends where its last chunk says: the connection is kept');

    const res = await pool.request(new URL(`${url}/big`), 'GET', {}, undefined);
    const parts: Buffer[] = [];
    for await (const c of res.body) {
      parts.push(c as Buffer);
      if (parts.length % 16 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(Buffer.concat(parts).equals(big), 'every byte, in order');
    // The connection, paused by the slow reader, serves the next request.
    const again = await pool.request(new URL(`${url}/chunked`), 'GET', {}, undefined);
    assert.equal(await text(again), 'first,second');
  } finally {
    pool.close();
    server.closeAllConnections();
    server.close();
  }
});

test('interim 1xx answers, chunk extensions and trailers sent byte by byte, and a body ended by the connection', async () => {
  const { url, server } = await rawServer((socket, { path }) => {
    if (path === '/chunked') {
      const answer = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n';
      let i = 0;
      const step = () => {
        if (i < answer.length) {
          socket.write(answer[i++]!);
          setImmediate(step);
        }
      };
      step();
      return;
    }
    socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end');
  });
  const pool = new PlainPool(options);
  try {
    const chunked = await pool.request(new URL(`${url}/chunked`), 'GET', {}, undefined);
    assert.equal(chunked.statusCode, 200);
    assert.equal(await text(chunked), 'hello world');
    const closing = await pool.request(new URL(`${url}/close`), 'GET', {}, undefined);
    assert.equal(await text(closing), 'until the end');
  } finally {
    pool.close();
    server.close();
  }
});

test('a kept connection the server closed as the next request came: a GET is sent again on a new one, a PUT or POST is not', async () => {
  // The race of every keep-alive client: the server's idle timeout closes a connection just as a
  // request goes out on it. Here the server closes its first connection at the second request.
  // Each pool's first connection is closed at its second request.
  let first = -1;
  const { url, server, connections } = await rawServer((socket, { connection, request }) => {
    if (first < 0) first = connection;
    if (connection === first && request === 1) return void socket.destroy();
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  });
  const pool = new PlainPool(options);
  try {
    assert.equal(await text(await pool.request(new URL(`${url}/a`), 'GET', {}, undefined)), 'ok');
    assert.equal(await text(await pool.request(new URL(`${url}/b`), 'GET', {}, undefined)), 'ok');
    assert.equal(connections(), 2, 'the GET went again over a new connection');

    // No answer does not mean not done: an upload-completing PUT sent twice would fail the second time.
    for (const method of ['PUT', 'POST']) {
      first = -1;
      const before = connections();
      const writes = new PlainPool(options);
      try {
        await text(await writes.request(new URL(`${url}/c`), method, {}, Buffer.from('x')));
        await assert.rejects(writes.request(new URL(`${url}/d`), method, {}, Buffer.from('x')), (e: NodeJS.ErrnoException) => e.code === 'ECONNRESET' && /closed the connection before answering/.test(e.message));
        assert.equal(connections() - before, 1, `a ${method} is not sent twice`);
      } finally {
        writes.close();
      }
    }
  } finally {
    pool.close();
    server.close();
  }
});

// Without the freeing, the second request would wait for the 10-minute body timeout: the test's
// own timeout ends it (a hang guard, not a speed claim).
test('a reader that gives up on a body (destroy) frees its connection at once; a body that failed before it was read fails its reader', { timeout: 30_000 }, async () => {
  const big = Buffer.alloc(4 << 20, 1);
  const server = createHttpServer((req, res) => {
    if (req.url === '/big') return res.end(big);
    res.end('small');
  });
  const url = await listen(server);
  // One connection, and a body timeout far beyond the test's: only destroy() can free it.
  const pool = new PlainPool({ ...options, connections: 1, bodyTimeout: 600_000 });
  try {
    const res = await pool.request(new URL(`${url}/big`), 'GET', {}, undefined);
    for await (const _ of res.body) break; // the for-await's return destroys the body
    assert.equal(await text(await pool.request(new URL(`${url}/small`), 'GET', {}, undefined)), 'small');

    const cut = await pool.request(new URL(`${url}/big`), 'GET', {}, undefined);
    cut.body.destroy(new Error('the sink failed'));
    await new Promise((r) => setTimeout(r, 20));
    const { bodyChunks } = await import('./body-chunks.js');
    await assert.rejects(async () => {
      for await (const _ of bodyChunks(cut.body)) void _;
    }, /the sink failed/);
  } finally {
    pool.close();
    server.closeAllConnections();
    server.close();
  }
});

test('header fields named like Object.prototype members, 205 without content, and a closed pool', async () => {
  const { url, server } = await rawServer((socket, { path }) => {
    if (path === '/reset') socket.write('HTTP/1.1 205 Reset Content\r\n\r\n');
    else socket.write('HTTP/1.1 200 OK\r\n__proto__: p\r\nconstructor: c\r\ntoString: t\r\nContent-Length: 2\r\n\r\nok');
  });
  const pool = new PlainPool(options);
  try {
    const res = await pool.request(new URL(`${url}/fields`), 'GET', {}, undefined);
    assert.equal(Object.getPrototypeOf(res.headers), null);
    assert.equal(res.headers['__proto__'], 'p');
    assert.equal(res.headers.constructor, 'c');
    assert.equal(res.headers['tostring'], 't', 'names are lower-cased');
    assert.equal(await text(res), 'ok');
    const reset = await pool.request(new URL(`${url}/reset`), 'GET', {}, undefined);
    assert.equal(reset.statusCode, 205);
    assert.equal(await text(reset), '', 'a 205 has no content: read without waiting for the connection to end');
  } finally {
    pool.close();
    server.close();
  }
  await assert.rejects(pool.request(new URL(`${url}/fields`), 'GET', {}, undefined), (e: NodeJS.ErrnoException) => e.code === 'ECONNABORTED');
});

test('malformed heads, bytes past Content-Length, a cut body and silence fail with a clear error', async () => {
  const { url, server } = await rawServer((socket, { path }) => {
    if (path === '/bad-status') socket.end('HTTP/2 200 OK\r\n\r\n');
    else if (path === '/bad-header') socket.end('HTTP/1.1 200 OK\r\nno colon here\r\n\r\n');
    else if (path === '/two-lengths') socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc');
    else if (path === '/too-long') socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabc');
    else if (path === '/cut') socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc');
    else if (path === '/bad-chunk') socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
    // '/silent': never answers.
  });
  const pool = new PlainPool({ ...options, headersTimeout: 200 });
  const get = (path: string) => pool.request(new URL(`${url}${path}`), 'GET', {}, undefined);
  try {
    await assert.rejects(get('/bad-status'), (e: NodeJS.ErrnoException) => e.code === 'EPROTO' && /malformed status line "HTTP\/2 200 OK"/.test(e.message));
    await assert.rejects(get('/bad-header'), (e: NodeJS.ErrnoException) => e.code === 'EPROTO' && /malformed header line "no colon here"/.test(e.message));
    await assert.rejects(get('/two-lengths'), (e: NodeJS.ErrnoException) => e.code === 'EPROTO' && /invalid Content-Length/.test(e.message));
    await assert.rejects(async () => text(await get('/too-long')), (e: NodeJS.ErrnoException) => e.code === 'EPROTO' && /more than the Content-Length/.test(e.message));
    await assert.rejects(async () => text(await get('/cut')), (e: NodeJS.ErrnoException) => e.code === 'ECONNRESET' && /closed the connection 7 bytes before the end of the body/.test(e.message));
    await assert.rejects(async () => text(await get('/bad-chunk')), (e: NodeJS.ErrnoException) => e.code === 'EPROTO' && /invalid chunk size "zz"/.test(e.message));
    await assert.rejects(get('/silent'), (e: NodeJS.ErrnoException) => e.code === 'ETIMEDOUT' && /no response head from 127\.0\.0\.1:\d+ within 200 ms/.test(e.message));
    await assert.rejects(pool.request(new URL(`${url}/x`), 'GET', { 'x-evil': 'a\r\nx-injected: 1' }, undefined), /invalid header "x-evil"/);
  } finally {
    pool.close();
    server.close();
  }
});

test('no more than `connections` connections to one origin; requests beyond them wait their turn', async () => {
  let open = 0;
  let most = 0;
  const server = createHttpServer((req, res) => {
    setTimeout(() => res.end(req.url), 20);
  });
  server.on('connection', (s: Socket) => {
    open++;
    most = Math.max(most, open);
    s.on('close', () => open--);
  });
  const url = await listen(server);
  const pool = new PlainPool({ ...options, connections: 2 });
  try {
    const answers = await Promise.all(Array.from({ length: 7 }, async (_, i) => text(await pool.request(new URL(`${url}/${i}`), 'GET', {}, undefined))));
    assert.deepEqual(answers, Array.from({ length: 7 }, (_, i) => `/${i}`));
    assert.equal(most, 2);
  } finally {
    pool.close();
    server.closeAllConnections();
    server.close();
  }
});

test('kept connections do not hold a process open, and close() ends them', async () => {
  const server = createHttpServer((_req, res) => res.end('ok'));
  let closed = 0;
  server.on('connection', (s: Socket) => s.on('close', () => closed++));
  const url = await listen(server);
  try {
    const module = fileURLToPath(new URL('./plain-exchange.js', import.meta.url));
    // The child leaves its pool open, its idle connection kept for 10 minutes: it must still exit
    // when its work is done (a child still running after 60 s is killed, and the test fails).
    const script = `import(${JSON.stringify(module)}).then(async ({ PlainPool }) => { const p = new PlainPool(${JSON.stringify({ ...options, keepAliveTimeout: 600_000 })}); const r = await p.request(new URL(${JSON.stringify(url)}), 'GET', {}, undefined); for await (const c of r.body) process.stdout.write(c); })`;
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'], timeout: 60_000 });
      let s = '';
      child.stdout.on('data', (d: Buffer) => (s += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(s) : reject(new Error(`exit ${code}`))));
    });
    assert.equal(out, 'ok');
    for (let i = 0; i < 100 && closed === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(closed, 1, "the child's connection ended with it");

    const pool = new PlainPool(options);
    await text(await pool.request(new URL(url), 'GET', {}, undefined));
    const before = closed;
    pool.close();
    for (let i = 0; i < 100 && closed === before; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(closed, before + 1, 'close() ended the kept connection');
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
