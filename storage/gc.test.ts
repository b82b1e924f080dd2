import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, utimes, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryStore } from './registry-store.js';
import { collectGarbage } from './gc.js';
import { MediaType } from '../oci/media-types.js';

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

async function age(store: RegistryStore, digest: string): Promise<void> {
  const old = new Date(Date.now() - 2 * 3600 * 1000);
  await utimes(store.layout.blobPath(digest), old, old);
}

test('gc removes unreferenced old blobs and keeps referenced or recent ones', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-gc-'));
  const store = new RegistryStore(dir);
  await store.open();
  try {
    const config = await store.blobs.putBytes(Buffer.from('{}'));
    const layer = await store.blobs.putBytes(Buffer.from('layer bytes'));
    const orphan = await store.blobs.putBytes(Buffer.from('orphan'));
    const fresh = await store.blobs.putBytes(Buffer.from('fresh, not linked yet'));
    const unlinked = await store.blobs.putBytes(Buffer.from('link deleted'));
    await store.linkBlob('team/app', config.digest, config.size);
    await store.linkBlob('team/app', layer.digest, layer.size);
    await store.linkBlob('team/app', unlinked.digest, unlinked.size);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, digest: config.digest, size: config.size },
        layers: [{ mediaType: MediaType.OciLayer, digest: layer.digest, size: layer.size }],
      }),
    );
    const { digest: manifestDigest } = await store.putManifest('team/app', 'v1', manifest, MediaType.OciManifest);
    // The layer stays referenced by the manifest even once its blob link is deleted.
    await store.unlinkBlob('team/app', layer.digest);
    await store.unlinkBlob('team/app', unlinked.digest);
    for (const d of [config.digest, layer.digest, orphan.digest, unlinked.digest, manifestDigest]) await age(store, d);

    const dry = await collectGarbage(store, { graceMs: 3600 * 1000, dryRun: true });
    assert.equal(dry.removed, 2);
    assert.ok(await exists(store.layout.blobPath(orphan.digest)), 'dry run removes nothing');

    const result = await collectGarbage(store, { graceMs: 3600 * 1000 });
    assert.equal(result.removed, 2);
    assert.equal(result.freedBytes, 'orphan'.length + 'link deleted'.length);
    assert.equal(await exists(store.layout.blobPath(orphan.digest)), false);
    assert.equal(await exists(store.layout.blobPath(unlinked.digest)), false);
    for (const d of [config.digest, layer.digest, manifestDigest, fresh.digest]) {
      assert.ok(await exists(store.layout.blobPath(d)), `${d} must survive`);
    }
    const served = await store.getManifest('team/app', 'v1');
    assert.deepEqual(served.bytes, manifest);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
