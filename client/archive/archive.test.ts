// save / load / import with skopeo as the independent reader and writer of both archive formats.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestRegistry, type TestRegistry } from '../../server/testing.js';
import { berth, buildImage, sandbox, skopeo, skopeoDigest, tempDir } from '../testing/peers.js';

const exec = promisify(execFile);
let work: string;
let layout: string;
let reg: TestRegistry;
let host: string;

before(async () => {
  work = await tempDir();
  layout = await buildImage(work, 'arc', { extraLayers: 1, layerBytes: 20 * 1024 });
  reg = await startTestRegistry();
  host = new URL(reg.url).host;
  await skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:arc`, `docker://${host}/team/arc:1`);
});

after(async () => {
  await reg?.destroy();
});

async function configDigestOf(ref: string): Promise<string> {
  const raw = JSON.parse(await skopeo('inspect', '--tls-verify=false', '--raw', ref)) as { config: { digest: string } };
  return raw.config.digest;
}

test('save (docker and oci) is read by skopeo; load reads them back; a skopeo docker-archive loads', async () => {
  const sb = await sandbox();
  try {
    const ref = `${host}/team/arc:1`;
    assert.equal((await berth(['pull', '-q', ref], sb.env)).code, 0);
    const digest = await skopeoDigest(`docker://${ref}`);
    const configDigest = await configDigestOf(`docker://${ref}`);

    const dockerTar = join(sb.dir, 'd.tar');
    const s1 = await berth(['save', '-o', dockerTar, ref], sb.env);
    assert.equal(s1.code, 0, s1.stderr);
    const fromDocker = JSON.parse(await skopeo('inspect', `docker-archive:${dockerTar}`)) as { Layers: string[] };
    assert.equal(fromDocker.Layers.length, 2);
    // The docker format keeps the image (its config, hence its ID) though layers are stored uncompressed.
    const rawDocker = JSON.parse(await skopeo('inspect', '--raw', `docker-archive:${dockerTar}`)) as { config: { digest: string } };
    assert.equal(rawDocker.config.digest, configDigest);

    const ociTar = join(sb.dir, 'o.tar');
    assert.equal((await berth(['save', '--format', 'oci', '-o', ociTar, ref], sb.env)).code, 0);
    assert.equal((JSON.parse(await skopeo('inspect', `oci-archive:${ociTar}:1`)) as { Digest: string }).Digest, digest);

    const other = await sandbox();
    try {
      const l1 = await berth(['load', '-i', ociTar], other.env);
      assert.equal(l1.stdout, `Loaded image: ${ref}\n`);
      assert.equal((await berth(['inspect', '-f', '{{.Descriptor.digest}}', ref], other.env)).stdout.trim(), digest);
      const l2 = await berth(['load', '-i', dockerTar], other.env);
      assert.equal(l2.code, 0, l2.stderr);
      assert.equal((await berth(['inspect', '-f', '{{.Id}}', ref], other.env)).stdout.trim(), configDigest);

      const skTar = join(sb.dir, 'sk.tar');
      await skopeo('copy', `oci:${layout}:arc`, `docker-archive:${skTar}:made/by-skopeo:7`);
      const l3 = await berth(['load', '-i', skTar], other.env);
      assert.equal(l3.stdout, 'Loaded image: made/by-skopeo:7\n');
      assert.equal((await berth(['inspect', '-f', '{{.Id}}', 'made/by-skopeo:7'], other.env)).stdout.trim(), configDigest);
      // A loaded image pushes, and skopeo agrees on what arrived.
      await berth(['tag', 'made/by-skopeo:7', `${host}/team/loaded:7`], other.env);
      const p = await berth(['push', `${host}/team/loaded:7`], other.env);
      assert.equal(p.code, 0, p.stderr);
      assert.equal(await configDigestOf(`docker://${host}/team/loaded:7`), configDigest);
    } finally {
      await other.cleanup();
    }

    const garbage = join(sb.dir, 'garbage.tar');
    await writeFile(garbage, 'this is not a tar archive at all'.repeat(40));
    const bad = await berth(['load', '-i', garbage], sb.env);
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr.split('\n').filter(Boolean).length, 1, bad.stderr);
    const missing = await berth(['save', '-o', join(sb.dir, 'x.tar'), 'no/such:image'], sb.env);
    assert.equal(missing.stderr, 'berth save: No such image: no/such:image\n');
  } finally {
    await sb.cleanup();
  }
});

test('import turns a rootfs tarball (plain or gzip) into a one-layer image', async () => {
  const sb = await sandbox();
  try {
    const rootfs = join(sb.dir, 'rootfs');
    await exec('mkdir', ['-p', join(rootfs, 'bin')]);
    await exec('cp', ['/bin/busybox', join(rootfs, 'bin', 'busybox')]);
    const plain = join(sb.dir, 'rootfs.tar');
    await exec('tar', ['-cf', plain, '-C', rootfs, '.']);
    await exec('sh', ['-c', `gzip -c ${plain} > ${plain}.gz`]);
    const diffId = await new Promise<string>((resolve, reject) => {
      const h = createHash('sha256');
      createReadStream(plain).on('data', (c) => h.update(c)).on('end', () => resolve(`sha256:${h.digest('hex')}`)).on('error', reject);
    });
    for (const [file, name] of [[plain, 'imported/plain:1'], [`${plain}.gz`, 'imported/gz:1']] as const) {
      const r = await berth(['import', '-m', 'from a test', file, name], sb.env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^sha256:[0-9a-f]{64}\n$/);
      assert.equal((await berth(['inspect', '-f', '{{json .RootFS.Layers}}', name], sb.env)).stdout.trim(), JSON.stringify([diffId]));
      assert.match((await berth(['history', name], sb.env)).stdout, /berth import .*from a test/);
    }
    const p = await berth(['tag', 'imported/gz:1', `${host}/imported/gz:1`], sb.env);
    assert.equal(p.code, 0);
    assert.equal((await berth(['push', `${host}/imported/gz:1`], sb.env)).code, 0);
    await skopeoDigest(`docker://${host}/imported/gz:1`);
  } finally {
    await sb.cleanup();
  }
});
