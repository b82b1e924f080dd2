// An image built by Debian's umoci (0.4.7) runs: its `umoci insert` layers stop right after the
// last file's content, without tar padding or end-of-archive blocks (opencontainers/umoci#436),
// which Go's archive/tar (containerd, runc) accepts and so must we.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildImage } from '../client/testing/peers.js';

const BERTH = fileURLToPath(new URL('../../bin/launch.cjs', import.meta.url));
const isRoot = process.getuid?.() === 0;
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-umoci-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('berth run runs an image built with umoci insert, every byte of its layers in place', { skip: !isRoot && 'needs root' }, async () => {
  const layout = await buildImage(dir, 'app', { extraLayers: 1, layerBytes: 100_003 });
  const hostSum = createHash('sha256').update(readFileSync(join(dir, 'data-app-0'))).digest('hex');
  const r = spawnSync(process.execPath, [BERTH, 'run', '--rm', `oci:${layout}:app`, '/bin/busybox', 'sha256sum', '/data/0'], {
    env: { ...process.env, BERTH_ROOT: join(dir, 'root') },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.split(' ')[0], hostSum);
});
