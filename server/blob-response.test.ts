import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { startTestRegistry } from './testing.js';
import { sendBufferSize, sendBufferStats } from './blob-response.js';

// Blob GETs go through sendFileRange's two rotating buffers: content larger than both, and
// ranges that cross a buffer boundary, must come back byte for byte.
test('blob GET and Range serve exact bytes of a blob larger than the send buffers', async () => {
  const reg = await startTestRegistry();
  try {
    const blob = randomBytes((3 << 20) + 12345);
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const post = await fetch(`${reg.url}/v2/t/blob/blobs/uploads/?digest=${digest}`, { method: 'POST', body: blob, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(post.status, 201);

    const whole = await fetch(`${reg.url}/v2/t/blob/blobs/${digest}`);
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get('content-length'), String(blob.length));
    assert.ok(Buffer.from(await whole.arrayBuffer()).equals(blob));

    const start = (1 << 20) - 10;
    const end = (2 << 20) + 10;
    const part = await fetch(`${reg.url}/v2/t/blob/blobs/${digest}`, { headers: { range: `bytes=${start}-${end}` } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes ${start}-${end}/${blob.length}`);
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(blob.subarray(start, end + 1)));

    // A client that hangs up mid-body leaves the server serving the next request.
    await new Promise<void>((resolve, reject) => {
      const req = request(`${reg.url}/v2/t/blob/blobs/${digest}`, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'ECONNRESET' ? resolve() : reject(e)));
      req.end();
    });
    const again = await fetch(`${reg.url}/v2/t/blob/blobs/${digest}`);
    assert.equal(again.status, 200);
    assert.equal(Buffer.from(await again.arrayBuffer()).length, blob.length);
  } finally {
    await reg.destroy();
  }
});

test('send buffers shrink as pulls multiply, within a 64 MiB budget', () => {
  assert.equal(sendBufferSize(1), 1 << 20);
  assert.equal(sendBufferSize(32), 1 << 20);
  assert.equal(sendBufferSize(33), 512 << 10);
  assert.equal(sendBufferSize(200), 128 << 10);
  assert.equal(sendBufferSize(512), 64 << 10);
  assert.equal(sendBufferSize(5000), 64 << 10);
  for (const n of [1, 10, 33, 100, 200, 512]) assert.ok(2 * n * sendBufferSize(n) <= 64 << 20);
});

// Buffers go back to a shared pool and are handed to other pulls: concurrent pulls (some hung up
// mid-body) must each get their own bytes.
test('concurrent pulls through reused buffers get exact bytes, aborted ones included', async () => {
  const reg = await startTestRegistry();
  try {
    const blobs = [randomBytes((2 << 20) + 7), randomBytes(300_000), randomBytes(5000)];
    const digests = blobs.map((b) => `sha256:${createHash('sha256').update(b).digest('hex')}`);
    for (let i = 0; i < blobs.length; i++) {
      const post = await fetch(`${reg.url}/v2/t/many/blobs/uploads/?digest=${digests[i]}`, { method: 'POST', body: blobs[i], headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(post.status, 201);
    }
    await Promise.all(
      Array.from({ length: 60 }, async (_, k) => {
        const i = k % blobs.length;
        if (k % 7 === 0) {
          await new Promise<void>((resolve) => {
            const req = request(`${reg.url}/v2/t/many/blobs/${digests[i]}`, (res) => res.once('data', () => (req.destroy(), resolve())));
            req.on('error', () => resolve());
            req.end();
          });
          return;
        }
        const r = await fetch(`${reg.url}/v2/t/many/blobs/${digests[i]}`);
        assert.ok(Buffer.from(await r.arrayBuffer()).equals(blobs[i]!), `pull ${k}`);
      }),
    );
    for (let i = 0; i < 50 && sendBufferStats().activePulls > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(sendBufferStats().activePulls, 0);
    assert.ok(sendBufferStats().idleBytes <= 16 << 20);
  } finally {
    await reg.destroy();
  }
});
