// ParallelGzip's output is one ordinary gzip member: read back by node's gunzip and by the
// system's gzip, the same bytes for the same input, at every size around its block boundaries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { ParallelGzip, parallelGzipAvailable } from './parallel-gzip.js';

async function gz(input: Buffer, piece = 100_000): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (let o = 0; o < input.length; o += piece) chunks.push(input.subarray(o, o + piece));
  const out: Buffer[] = [];
  for await (const c of Readable.from(chunks).pipe(new ParallelGzip())) out.push(c as Buffer);
  return Buffer.concat(out);
}

test('parallel gzip round-trips through gunzip and gzip -d, deterministically, at block boundaries', { skip: !parallelGzipAvailable() && 'zlib.crc32 needs Node ≥ 20.15' }, async () => {
  const text = Buffer.from(Array.from({ length: 40_000 }, (_, i) => `line ${i % 977} of a layer\n`).join(''));
  const inputs = [Buffer.alloc(0), Buffer.from('x'), Buffer.alloc(256 << 10, 1), Buffer.alloc((256 << 10) + 1, 2), Buffer.concat([text, randomBytes(700_000), text]), randomBytes(3 << 20)];
  for (const input of inputs) {
    const out = await gz(input);
    assert.ok(gunzipSync(out).equals(input), `gunzip, ${input.length} bytes`);
    assert.ok(execFileSync('gzip', ['-dc'], { input: out, maxBuffer: 1 << 26 }).equals(input), `gzip -d, ${input.length} bytes`);
    assert.ok((await gz(input, 4096)).equals(out), `same bytes whatever the write sizes, ${input.length} bytes`);
    assert.deepEqual([...out.subarray(0, 10)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]); // no timestamp, no name
  }
  const compressible = await gz(Buffer.concat([text, text, text]));
  assert.ok(compressible.length < text.length / 5, 'the preset dictionaries keep the ratio of one stream');
});
