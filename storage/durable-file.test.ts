import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { streamIntoFile, SizeLimitError } from './durable-file.js';

/** 40 MiB in 64 KiB chunks, each different: spans several write batches and a background sync. */
function* chunks(total = 40 << 20, size = 64 << 10): Generator<Buffer> {
  for (let i = 0; i * size < total; i++) yield Buffer.alloc(size, i % 251);
}

test('streamIntoFile writes every byte at the position, in order, across batches', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-df-'));
  try {
    const path = join(dir, 'f');
    const fh = await open(path, 'w');
    await fh.write(Buffer.from('head'), 0, 4, 0);
    const seen = createHash('sha256');
    const written = await streamIntoFile(chunks(), fh, 4, (c) => seen.update(c));
    await fh.sync();
    await fh.close();
    const expected = createHash('sha256');
    for (const c of chunks()) expected.update(c);
    assert.equal(written, 40 << 20);
    assert.equal(seen.digest('hex'), expected.copy().digest('hex'));
    const content = await readFile(path);
    assert.equal(content.length, 4 + (40 << 20));
    assert.equal(content.subarray(0, 4).toString(), 'head');
    assert.equal(createHash('sha256').update(content.subarray(4)).digest('hex'), expected.digest('hex'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('streamIntoFile stops at the limit and leaves the handle closable', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-df-'));
  try {
    const fh = await open(join(dir, 'f'), 'w');
    await assert.rejects(streamIntoFile(chunks(), fh, 0, () => undefined, 10 << 20), SizeLimitError);
    await fh.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
