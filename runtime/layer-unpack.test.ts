// Layer unpacking against real tars: overlay whiteouts, and hostile entries refused.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { digestOf } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';
import { compressor, zstdAvailable } from '../oci/compression.js';
import { getXattr } from '../native/index.js';
import { LayerRefusedError, unpackLayer } from './layer-unpack.js';
import { layerTar, type Entry } from './test-images.js';

const isRoot = process.getuid?.() === 0;
let dir: string;
let n = 0;

async function unpack(entries: Entry[]): Promise<string> {
  const gz = await layerTar(entries);
  const dest = join(dir, `layer-${n++}`);
  await mkdir(dest);
  await unpackLayer(Readable.from([gz]), MediaType.OciLayerGzip, digestOf(gz), dest);
  return dest;
}

describe('unpackLayer', { skip: !isRoot && 'needs root (mknod, trusted.* xattrs, chown)' }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-unpack-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('files, directories, symlinks and hard links keep their content, mode and links', async () => {
    const d = await unpack([
      { name: 'etc/', type: 'directory', mode: 0o750 },
      { name: 'etc/conf', content: 'x=1\n', mode: 0o640 },
      { name: 'etc/link', type: 'symlink', linkname: '/etc/conf' },
      { name: 'etc/hard', type: 'link', linkname: 'etc/conf' },
      { name: './bin/tool', content: '#!/bin/sh\n', mode: 0o755 },
    ]);
    assert.equal(readFileSync(join(d, 'etc/conf'), 'utf8'), 'x=1\n');
    assert.equal(lstatSync(join(d, 'etc/conf')).mode & 0o7777, 0o640);
    assert.equal(lstatSync(join(d, 'etc')).mode & 0o7777, 0o750);
    assert.equal(readlinkSync(join(d, 'etc/link')), '/etc/conf'); // kept, never followed on the host
    assert.equal(lstatSync(join(d, 'etc/hard')).ino, lstatSync(join(d, 'etc/conf')).ino);
    assert.equal(lstatSync(join(d, 'bin/tool')).mode & 0o7777, 0o755);
  });

  test('a .wh. file becomes an overlay whiteout and .wh..wh..opq an opaque directory', async () => {
    const d = await unpack([{ name: 'etc/.wh.passwd' }, { name: 'var/', type: 'directory' }, { name: 'var/.wh..wh..opq' }, { name: 'var/new', content: 'n' }]);
    const wh = lstatSync(join(d, 'etc/passwd'));
    assert.ok(wh.isCharacterDevice());
    assert.equal(wh.rdev, 0);
    assert.equal(existsSync(join(d, 'etc/.wh.passwd')), false);
    assert.equal(getXattr(join(d, 'var'), 'trusted.overlay.opaque')?.toString(), 'y');
  });

  test('a ../ path is refused', async () => {
    await assert.rejects(unpack([{ name: '../outside', content: 'x' }]), LayerRefusedError);
    await assert.rejects(unpack([{ name: 'a/../../outside', content: 'x' }]), LayerRefusedError);
    assert.equal(existsSync(join(dir, 'outside')), false);
  });

  test('an entry below a symlink is refused, whatever the symlink points to', async () => {
    const target = join(dir, 'host-dir');
    await mkdir(target);
    await assert.rejects(unpack([{ name: 'escape', type: 'symlink', linkname: target }, { name: 'escape/file', content: 'pwned' }]), LayerRefusedError);
    await assert.rejects(unpack([{ name: 'up', type: 'symlink', linkname: '../..' }, { name: 'up/file', content: 'pwned' }]), LayerRefusedError);
    assert.equal(existsSync(join(target, 'file')), false);
  });

  test('a hard link must point at a file of the same layer', async () => {
    await assert.rejects(unpack([{ name: 'passwd', type: 'link', linkname: '../../../../etc/passwd' }]), LayerRefusedError);
    await assert.rejects(unpack([{ name: 'passwd', type: 'link', linkname: 'etc/passwd' }]), LayerRefusedError);
    await assert.rejects(unpack([{ name: 'l', type: 'symlink', linkname: '/etc' }, { name: 'passwd', type: 'link', linkname: 'l/passwd' }]), LayerRefusedError);
  });

  /** The layer's tar, cut to `keep(length)` bytes and gzip'd again. */
  async function cutLayer(entries: Entry[], keep: (tarLength: number) => number): Promise<string> {
    const tar = gunzipSync(await layerTar(entries));
    const gz = gzipSync(tar.subarray(0, keep(tar.length)));
    const dest = join(dir, `layer-${n++}`);
    await mkdir(dest);
    await unpackLayer(Readable.from([gz]), MediaType.OciLayerGzip, digestOf(gz), dest);
    return dest;
  }

  test('a tar ending right after its last content, without padding or end blocks (umoci 0.4), unpacks whole', async () => {
    const content = 'y'.repeat(1000); // 1000 bytes: the last block of content is 488 bytes
    // header 512 + content 1000 (padded to 1024) for `a`, then header 512 + 1000 for `b`, then the cut.
    const d = await cutLayer([{ name: 'a', content }, { name: 'b', content }], () => 512 + 1024 + 512 + 1000);
    assert.equal(readFileSync(join(d, 'a'), 'utf8'), content);
    assert.equal(readFileSync(join(d, 'b'), 'utf8'), content);
  });

  test('a tar cut inside content or inside a header is refused', async () => {
    const content = 'y'.repeat(1000);
    await assert.rejects(cutLayer([{ name: 'a', content }, { name: 'b', content }], () => 512 + 1024 + 512 + 999), /end of data|premature|aborted/i);
    await assert.rejects(cutLayer([{ name: 'a', content }, { name: 'b', content }], () => 512 + 1024 + 300), /end of data/i);
  });

  test('a layer whose bytes do not match its digest is refused', async () => {
    const gz = await layerTar([{ name: 'f', content: 'x' }]);
    const dest = join(dir, 'bad-digest');
    await mkdir(dest);
    await assert.rejects(unpackLayer(Readable.from([gz]), MediaType.OciLayerGzip, digestOf('something else'), dest), /does not match its digest/);
  });

  test('a zstd layer unpacks where node:zlib has zstd; elsewhere it is refused with the reason', async () => {
    const tarBytes = gunzipSync(await layerTar([{ name: 'etc/', type: 'directory' }, { name: 'etc/z', content: 'zstd\n' }]));
    const dest = join(dir, `zstd-${n++}`);
    await mkdir(dest);
    if (!zstdAvailable()) {
      // No compressor needed: the refusal comes before any byte is read.
      await assert.rejects(unpackLayer(Readable.from([tarBytes]), MediaType.OciLayerZstd, digestOf(tarBytes), dest), { message: `zstd layers need Node ≥ 22.15 (this is Node ${process.versions.node})` });
      return;
    }
    const z = compressor('zstd');
    const parts: Buffer[] = [];
    z.on('data', (c: Buffer) => parts.push(c));
    await new Promise<void>((res, rej) => z.on('end', res).on('error', rej).end(tarBytes));
    const blob = Buffer.concat(parts);
    await unpackLayer(Readable.from([blob]), MediaType.OciLayerZstd, digestOf(blob), dest);
    assert.equal(readFileSync(join(dest, 'etc', 'z'), 'utf8'), 'zstd\n');
  });
});
