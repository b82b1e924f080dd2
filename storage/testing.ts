// For tests: a blob store in a temp folder, removed afterwards.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobStore } from './blob-store.js';
import { DataLayout } from './layout.js';

export async function withTempBlobStore(fn: (store: BlobStore, layout: DataLayout) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-blobs-'));
  try {
    const layout = new DataLayout(dir);
    const store = new BlobStore(layout);
    await store.init();
    await fn(store, layout);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
