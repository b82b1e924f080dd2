import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { startTestRegistry } from './testing.js';

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
