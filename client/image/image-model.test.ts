// The image model: one validation suite passed by every source built from the same images (the
// local store, an OCI layout folder, OCI and docker archives, a registry, an image being built),
// refusals of broken ones, and save → load → push → pull round trips that keep every byte.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as zlib from 'node:zlib';
import tar from 'tar-stream';
import { startTestRegistry, type TestRegistry } from '../../server/testing.js';
import { digestOf } from '../../oci/digest.js';
import { compressor, zstdAvailable } from '../../oci/compression.js';
import type { Image, ImageOrIndex, Layer } from '../../oci/image.js';
import { validate, validateImage } from '../../oci/image-validate.js';
import type { ImageManifest, Platform } from '../../oci/manifest.js';
import { MediaType } from '../../oci/media-types.js';
import { parseReference } from '../../oci/reference.js';
import { saveImages, type ArchiveFormat } from '../archive/save.js';
import { loadArchive } from '../archive/load.js';
import { parseConfig } from '../config.js';
import { hostPlatform } from '../platform.js';
import { Progress } from '../progress.js';
import { pull } from '../pull.js';
import { push } from '../push.js';
import { LocalImageStore } from '../store/image-store.js';
import { tempDir } from '../testing/peers.js';
import { Transport } from '../transport/registry-client.js';
import { dockerArchiveImages, ociArchive } from './archive.js';
import { copy } from './copy.js';
import { LayoutSink, LayoutSource, folderFiles } from './layout.js';
import { builtImage, manifestOf } from './manifest-image.js';
import { RemoteSource } from './remote.js';
import { StoreSink, storeImage, storeReader } from './store-image.js';
import { TarFile } from './tar-file.js';

const quiet = new Progress(new Writable({ write: (_c, _e, cb) => cb() }), { quiet: true });
const OTHER: Platform = { os: 'linux', architecture: hostPlatform().architecture === 's390x' ? 'riscv64' : 's390x' };

let work: string;
let reg: TestRegistry;
let host: string;
let transport: Transport;
let n = 0;

async function layerTar(files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, content] of Object.entries(files)) pack.entry({ name, mode: 0o644, mtime: new Date(0) }, content);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function compress(bytes: Buffer, how: 'none' | 'gzip' | 'zstd'): Promise<Buffer> {
  if (how === 'none') return bytes;
  if (how === 'gzip') return zlib.gzipSync(bytes);
  if (zstdAvailable()) {
    const z = compressor('zstd');
    const out: Buffer[] = [];
    z.on('data', (c: Buffer) => out.push(c));
    await new Promise<void>((res, rej) => z.on('end', res).on('error', rej).end(bytes));
    return Buffer.concat(out);
  }
  const r = spawnSync('zstd', ['-q', '-c'], { input: bytes });
  if (r.status !== 0) throw new Error('no zstd compressor: neither node:zlib zstd nor the zstd command');
  return r.stdout;
}

const TYPES = { none: MediaType.OciLayer, gzip: MediaType.OciLayerGzip, zstd: MediaType.OciLayerZstd } as const;

/** An image built in memory and copied into `store` (StoreSink), tagged `name`. */
async function makeImage(store: LocalImageStore, name: string | undefined, layers: Array<'none' | 'gzip' | 'zstd'>, platform: Platform = hostPlatform(), diffIdOverride?: string): Promise<Image> {
  const sink = new StoreSink(store);
  const built: Layer[] = [];
  const diffIds: string[] = [];
  for (const [i, how] of layers.entries()) {
    const t = await layerTar({ [`f${i}-${n++}`]: `layer ${i} of ${name}\n`.repeat(200 + i) });
    diffIds.push(diffIdOverride ?? digestOf(t));
    built.push(await sink.ingestNew((await import('node:stream')).Readable.from([await compress(t, how)]), TYPES[how]));
  }
  const config = Buffer.from(JSON.stringify({ architecture: platform.architecture, os: platform.os, config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: diffIds } }));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: digestOf(config), size: config.length },
    layers: built.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const img = builtImage(manifest, config, built);
  await copy(img, sink);
  await sink.commit([img], name ? [parseReference(name)] : [], img.digest);
  return img;
}

/** An index of two images (this host's and OTHER), tagged `name`. */
async function makeIndex(store: LocalImageStore, name: string): Promise<ImageOrIndex> {
  const a = await makeImage(store, undefined, ['gzip', 'none']);
  const b = await makeImage(store, undefined, ['gzip'], OTHER);
  const raw = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: [
      { mediaType: a.mediaType, digest: a.digest, size: a.raw.length, platform: hostPlatform() },
      { mediaType: b.mediaType, digest: b.digest, size: b.raw.length, platform: OTHER },
    ],
  }));
  const index = manifestOf(raw, storeReader(store));
  const sink = new StoreSink(store);
  await copy(index, sink, { allPlatforms: true });
  await sink.commit([a, b, index], [parseReference(name)], index.digest);
  return index;
}

async function save(store: LocalImageStore, ref: string, format: ArchiveFormat): Promise<string> {
  const file = join(work, `save-${n++}.tar`);
  await saveImages(store, [ref], createWriteStream(file), format);
  return file;
}

async function openStore(): Promise<LocalImageStore> {
  return LocalImageStore.open(join(work, `store-${n++}`));
}

/** Manifest, config and layer digests of what `top` names, children included. */
async function digests(top: ImageOrIndex): Promise<string[]> {
  if (top.kind === 'index') {
    const out = [top.digest];
    for (const d of top.manifest.manifests) out.push(...(await digests((await top.child(d))!)));
    return out;
  }
  return [top.digest, top.config.digest, ...top.layers.map((l) => l.digest)];
}

before(async () => {
  work = await tempDir('berth-model-');
  reg = await startTestRegistry();
  host = new URL(reg.url).host;
  transport = new Transport(parseConfig({}, 'test.json'));
});

after(async () => {
  await transport?.close();
  await reg?.destroy();
});

describe('every source passes validateImage / validateIndex', () => {
  test('store, layout folder, OCI archive, docker archive, registry and a built image, for an image and an index', async () => {
    const store = await openStore();
    const single = await makeImage(store, 'model/single:1', ['gzip', 'none', 'gzip']);
    const index = await makeIndex(store, 'model/multi:1');
    const sources: Array<[string, ImageOrIndex]> = [['built image', single]];
    const tars: TarFile[] = [];
    for (const [name, top] of [['model/single:1', single], ['model/multi:1', index]] as const) {
      sources.push([`store ${name}`, await storeImage(store, top.digest)]);
      const dir = join(work, `layout-${n++}`);
      const sink = new LayoutSink(dir);
      await sink.init();
      const { target } = await copy(await storeImage(store, top.digest), sink, { allPlatforms: true });
      await sink.tag(target, 'v1');
      const layout = new LayoutSource(folderFiles(dir));
      sources.push([`layout folder ${name}`, await layout.image((await layout.find('v1'))!)]);
      const oci = await TarFile.open(await save(store, name, 'oci'), work);
      const ociSource = ociArchive(oci, 'archive');
      sources.push([`OCI archive ${name}`, await ociSource.image((await ociSource.entries())[0]!)]);
      const docker = await TarFile.open(await save(store, name, 'docker'), work);
      sources.push([`docker archive ${name}`, (await dockerArchiveImages(docker))[0]!.image]);
      tars.push(oci, docker);
      await store.tag(name, parseReference(`${host}/${name}`));
      await push(transport, store, parseReference(`${host}/${name}`), quiet);
      const remote = new RemoteSource(transport, parseReference(`${host}/${name}`));
      sources.push([`registry ${name}`, await remote.image()]);
    }
    try {
      for (const [what, m] of sources) await assert.doesNotReject(validate(m), what);
    } finally {
      for (const t of tars) await t.close();
    }
    // The same image from every source: the same digests, except docker archives (layers stored uncompressed).
    const want = await digests(single);
    for (const [what, m] of sources) if (what.includes('single') && !what.startsWith('docker')) assert.deepEqual(await digests(m), want, what);
  });

  test('a tampered blob, a wrong diff_id, a wrong descriptor size are refused with the reason', async () => {
    const store = await openStore();
    const img = await makeImage(store, 'model/bad:1', ['gzip']);
    const dir = join(work, `layout-${n++}`);
    const sink = new LayoutSink(dir);
    await sink.init();
    await copy(img, sink);
    await sink.tag(img, 'v1');
    const path = join(dir, 'blobs', 'sha256', img.layers[0]!.digest.slice(7));
    const bytes = await readFile(path);
    bytes[bytes.length - 10]! ^= 0xff;
    await writeFile(path, bytes);
    const layout = new LayoutSource(folderFiles(dir));
    await assert.rejects(validate(await layout.image((await layout.find('v1'))!)), /layer sha256:[0-9a-f]{64} has digest sha256:/);

    const wrong = await makeImage(store, 'model/wrong:1', ['gzip'], hostPlatform(), digestOf('not the tar'));
    await assert.rejects(validateImage(wrong), /uncompresses to sha256:[0-9a-f]{64}, the config's diff_id is/);

    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ size: number }> };
    index.manifests[0]!.size += 1;
    await writeFile(join(dir, 'index.json'), JSON.stringify(index));
    await assert.rejects(async () => layout.image((await layout.find('v1'))!), /SIZE_INVALID|bytes, not the stated/);
  });
});

/** save → load → push → pull → save: the same manifests, configs and layers, and the same archive bytes. */
async function roundTrip(name: string, make: (s: LocalImageStore) => Promise<ImageOrIndex>, format: ArchiveFormat): Promise<void> {
  const a = await openStore();
  await make(a);
  const first = await save(a, name, format);
  const b = await openStore();
  await loadArchive(b, first);
  const loaded = await storeImage(b, (await b.resolve(name)).record.digest);
  await validate(loaded);
  const remoteName = `${host}/${name}`;
  await b.tag(name, parseReference(remoteName));
  const pushed = await push(transport, b, parseReference(remoteName), quiet);
  const c = await openStore();
  await pull(transport, c, parseReference(remoteName), { progress: quiet, allPlatforms: true });
  const pulled = await storeImage(c, (await c.resolve(remoteName)).record.digest);
  assert.equal(pulled.digest, pushed.digest);
  assert.deepEqual(await digests(pulled), await digests(loaded));
  await c.tag(remoteName, parseReference(name));
  const second = await save(c, name, format);
  assert.ok((await readFile(first)).equals(await readFile(second)), `${format} archive of ${name} differs after save → load → push → pull → save`);
}

describe('round trips keep every byte', () => {
  test('OCI archive, single manifest', () => roundTrip('rt/oci-single:1', (s) => makeImage(s, 'rt/oci-single:1', ['gzip', 'none']), 'oci'));
  test('OCI archive, index', () => roundTrip('rt/oci-index:1', (s) => makeIndex(s, 'rt/oci-index:1'), 'oci'));
  test('docker archive, single manifest (layers saved uncompressed)', () => roundTrip('rt/docker-single:1', (s) => makeImage(s, 'rt/docker-single:1', ['gzip', 'none']), 'docker'));
  test('docker archive of an index: its entry for this host', () => roundTrip('rt/docker-index:1', (s) => makeIndex(s, 'rt/docker-index:1'), 'docker'));
  test('zstd layers through an OCI archive (bytes only: any Node)', () => roundTrip('rt/zstd-oci:1', (s) => makeImage(s, 'rt/zstd-oci:1', ['zstd', 'gzip']), 'oci'));
  test('zstd layers through a docker archive (inflated)', { skip: !zstdAvailable() && `zstd layers need Node ≥ 22.15 (this is Node ${process.versions.node}); CI runs this on Node 24` }, () =>
    roundTrip('rt/zstd-docker:1', (s) => makeImage(s, 'rt/zstd-docker:1', ['zstd']), 'docker'),
  );
  test('without zstd in node:zlib, a zstd layer that must be inflated fails with the clear message', { skip: zstdAvailable() && 'this Node has zstd' }, async () => {
    const s = await openStore();
    await makeImage(s, 'rt/zstd-old:1', ['zstd']);
    await assert.rejects(save(s, 'rt/zstd-old:1', 'docker'), { message: `zstd layers need Node ≥ 22.15 (this is Node ${process.versions.node})` });
  });
});
