import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import type { BlobStore } from './blob-store.js';
import { withTempBlobStore } from './testing.js';
import { RegistryError } from '../oci/errors.js';

/** 21 MiB + 5 bytes of varied content: several 4 MiB batches, a partial last one, a background sync. */
function content(): Buffer {
  const b = Buffer.allocUnsafe((21 << 20) + 5);
  for (let i = 0; i < b.length; i += 4096) b.fill(i % 251, i, Math.min(b.length, i + 4096));
  return b;
}

const digestOf = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Fills reserve() regions as a socket would, `read` bytes at a time, waiting when told to. */
async function produce(ingest: Awaited<ReturnType<BlobStore['openIngest']>>, data: Buffer, read: number): Promise<void> {
  let at = 0;
  while (at < data.length) {
    const room = ingest.reserve();
    assert.ok(room.length >= 256 << 10, 'a reserve() region leaves room for a large read');
    const n = Math.min(room.length, read, data.length - at);
    data.copy(room, 0, at, at + n);
    ingest.commit(n);
    at += n;
    if (!ingest.writable) await ingest.whenWritable();
  }
}

test('a blob filled through reserve/commit and push is stored byte for byte under its digest', async () => {
  await withTempBlobStore(async (store, layout) => {
    const data = content();
    const ingest = await store.openIngest({ digest: digestOf(data), size: data.length });
    ingest.push(data.subarray(0, 1000)); // bytes read before the body, copied in
    await produce(ingest, data.subarray(1000), 100_003);
    const stored = await ingest.finish();
    assert.deepEqual(stored, { digest: digestOf(data), size: data.length });
    assert.ok((await readFile(layout.blobPath(digestOf(data)))).equals(data));
    assert.deepEqual(await readdir(layout.tmpDir), [], 'no temp file left');
  });
});

test('a wrong digest, a short body and a byte too many store nothing', async () => {
  await withTempBlobStore(async (store, layout) => {
    const data = content();
    const other = `sha256:${'0'.repeat(64)}`;

    const wrong = await store.openIngest({ digest: other, size: data.length });
    await produce(wrong, data, 1 << 20);
    await assert.rejects(wrong.finish(), (e: unknown) => e instanceof RegistryError && e.code === 'DIGEST_INVALID');

    const short = await store.openIngest({ digest: digestOf(data), size: data.length });
    await produce(short, data.subarray(0, 5 << 20), 1 << 20);
    await assert.rejects(short.finish(), (e: unknown) => e instanceof RegistryError && e.code === 'SIZE_INVALID');

    const long = await store.openIngest({ digest: digestOf(data), size: 10 });
    assert.throws(() => long.push(data.subarray(0, 11)), (e: unknown) => e instanceof RegistryError && e.code === 'SIZE_INVALID' && /more than the expected 10 bytes/.test(e.message));
    await long.abort();

    const dropped = await store.openIngest({ digest: digestOf(data), size: data.length });
    await produce(dropped, data.subarray(0, 9 << 20), 1 << 20);
    await dropped.abort();

    assert.equal(await store.has(digestOf(data)), false);
    assert.equal(await store.has(other), false);
    assert.deepEqual(await readdir(layout.tmpDir), [], 'no temp file left');
  });
});
