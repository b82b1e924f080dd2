import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, utimes, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { RegistryStore } from './registry-store.js';
import { collectGarbage } from './gc.js';
import type { LevelMetadata } from './level-metadata.js';
import { MediaType } from '../oci/media-types.js';

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

const TWO_HOURS = 2 * 3600 * 1000;

/** Makes a blob look committed and linked two hours ago: its content record and its file time. */
async function age(store: RegistryStore, digest: string): Promise<void> {
  const old = new Date(Date.now() - TWO_HOURS);
  await utimes(store.layout.blobPath(digest), old, old);
  const record = await store.meta.getContent(digest);
  assert.ok(record, `${digest} has a content record`);
  await (store.meta as LevelMetadata).db.sublevel<string, unknown>('content', { valueEncoding: 'json' }).put(digest, { ...record, touched: old.getTime() });
}

function imageManifest(config: { digest: string; size: number }, layer: { digest: string; size: number }): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: config.digest, size: config.size },
      layers: [{ mediaType: MediaType.OciLayer, digest: layer.digest, size: layer.size }],
    }),
  );
}

async function withStore(fn: (store: RegistryStore) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-gc-'));
  const store = new RegistryStore(dir);
  await store.open();
  try {
    await fn(store);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

test('gc removes unreferenced old blobs and keeps referenced or recent ones', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-gc-'));
  const store = new RegistryStore(dir);
  await store.open();
  try {
    const config = await store.putBytes(Buffer.from('{}'));
    const layer = await store.putBytes(Buffer.from('layer bytes'));
    const orphan = await store.putBytes(Buffer.from('orphan'));
    const fresh = await store.putBytes(Buffer.from('fresh, not linked yet'));
    const unlinked = await store.putBytes(Buffer.from('link deleted'));
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

test('a blob pushed again and linked between mark and sweep survives (its old file time does not count)', () =>
  withStore(async (store) => {
    const config = await store.putBytes(Buffer.from('{"architecture":"amd64"}'));
    const layerBytes = Buffer.from('layer pushed long ago, orphaned, then pushed again');
    const layer = await store.putBytes(layerBytes);
    await store.linkBlob('team/old', layer.digest, layer.size);
    await store.unlinkBlob('team/old', layer.digest);
    await age(store, layer.digest);
    await age(store, config.digest);

    let manifestDigest = '';
    const result = await collectGarbage(store, {
      graceMs: 3600 * 1000,
      // A client pushes the same layer again now (the store keeps the old file, with its old
      // mtime) and a manifest that uses it, while GC has already marked.
      afterMark: async () => {
        const session = await store.uploads.create('team/app');
        await store.uploads.complete(session.id, 'team/app', layer.digest, { source: Readable.from([layerBytes]) });
        await store.linkBlob('team/app', layer.digest, layer.size);
        const cfgSession = await store.uploads.create('team/app');
        await store.uploads.complete(cfgSession.id, 'team/app', config.digest, { source: Readable.from([Buffer.from('{"architecture":"amd64"}')]) });
        await store.linkBlob('team/app', config.digest, config.size);
        manifestDigest = (await store.putManifest('team/app', 'v1', imageManifest(config, layer), MediaType.OciManifest)).digest;
      },
    });
    assert.equal(result.removed, 0, 'nothing linked after the mark is removed');
    assert.deepEqual(await store.readAll(layer.digest), layerBytes);
    assert.equal((await store.getManifest('team/app', 'v1')).digest, manifestDigest);
    assert.equal(await store.statBlob('team/app', layer.digest), layer.size);
  }));

test('a manifest whose referenced blob GC removed after the mark is refused, not stored dangling', () =>
  withStore(async (store) => {
    const config = await store.putBytes(Buffer.from('{}'));
    const layer = await store.putBytes(Buffer.from('blob whose link is deleted before the mark'));
    await store.linkBlob('team/app', config.digest, config.size);
    await store.linkBlob('team/app', layer.digest, layer.size);
    await age(store, layer.digest);
    // The blob's link goes; GC marks, sweeps it; a manifest PUT that checked the link earlier must
    // not store a manifest pointing at nothing. Here the PUT comes after the sweep, with the link
    // re-made through the store, which no longer has the content.
    await store.unlinkBlob('team/app', layer.digest);
    const result = await collectGarbage(store, { graceMs: 3600 * 1000 });
    assert.equal(result.removed, 1);
    await assert.rejects(store.linkBlob('team/app', layer.digest, layer.size), (e: Error & { code?: string }) => e.code === 'BLOB_UNKNOWN');
    assert.equal(await store.mountBlob('team/other', 'team/app', layer.digest), undefined);
    await (store.meta as LevelMetadata).db.sublevel<string, unknown>('blobs', { valueEncoding: 'json' }).put(`team/app\x00${layer.digest}`, { size: layer.size });
    await assert.rejects(store.putManifest('team/app', 'v1', imageManifest(config, layer), MediaType.OciManifest), (e: Error & { code?: string }) => e.code === 'MANIFEST_BLOB_UNKNOWN');
    // Pushed again, it is stored anew and usable.
    const again = await store.putBytes(Buffer.from('blob whose link is deleted before the mark'));
    assert.equal(again.digest, layer.digest);
    await store.linkBlob('team/app', layer.digest, layer.size);
    await store.putManifest('team/app', 'v1', imageManifest(config, layer), MediaType.OciManifest);
  }));

test('content stored without a record (an older data folder) gets its grace period from the first GC', () =>
  withStore(async (store) => {
    const orphan = await store.putBytes(Buffer.from('stored by an older berth'));
    await store.meta.forgetContent(orphan.digest);
    const old = new Date(Date.now() - TWO_HOURS);
    await utimes(store.layout.blobPath(orphan.digest), old, old);
    assert.equal((await collectGarbage(store, { graceMs: 3600 * 1000 })).removed, 0, 'file times are not trusted');
    assert.ok(await exists(store.layout.blobPath(orphan.digest)));
    await age(store, orphan.digest);
    assert.equal((await collectGarbage(store, { graceMs: 3600 * 1000 })).removed, 1);
    assert.equal(await exists(store.layout.blobPath(orphan.digest)), false);
  }));
