// A container's changes as layer entries when overlayfs copied up metadata only (metacopy=on: a
// chown leaves the data in the lower layer): the entry reads the data there, not the upper file's
// zeros. The overlay is mounted here with metacopy=on, as a host whose overlay module defaults to
// it would mount every container.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { changeEntries } from './container-layer.js';
import type { ContainerConfig } from './container-store.js';

test('a metacopy-only copy-up is packed with the lower layer\'s data', { skip: process.getuid?.() !== 0 && 'needs root (overlay mounts)' }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-metacopy-'));
  try {
    const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((d) => join(dir, d)) as [string, string, string, string];
    for (const d of [lower, upper, work, merged]) mkdirSync(d);
    writeFileSync(join(lower, 'f'), 'data in the lower layer\n');
    try {
      execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work},metacopy=on`, merged], { stdio: 'ignore' });
    } catch {
      t.skip('this kernel has no overlay metacopy');
      return;
    }
    try {
      chownSync(join(merged, 'f'), 1000, 1000);
    } finally {
      execFileSync('umount', [merged]);
    }
    assert.notEqual(readFileSync(join(upper, 'f'), 'utf8'), 'data in the lower layer\n', 'the upper file holds no data (metacopy happened)');
    const config = { helper: { upper, lower: [lower], files: [], mounts: [] } } as unknown as ContainerConfig;
    const entries = [];
    for await (const e of changeEntries(config)) entries.push(e);
    assert.equal(entries.length, 1);
    const f = entries[0]!;
    assert.deepEqual([f.path, f.type, f.uid, f.gid], ['f', 'file', 1000, 1000]);
    assert.equal(readFileSync(f.dataPath ?? f.hostPath, 'utf8'), 'data in the lower layer\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
