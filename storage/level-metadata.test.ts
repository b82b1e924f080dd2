import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineMetadataSuite } from './metadata-suite.js';
import { LevelMetadata } from './level-metadata.js';

let dir = '';
defineMetadataSuite('LevelDB', {
  async open() {
    dir = await mkdtemp(join(tmpdir(), 'berth-level-'));
    const m = new LevelMetadata(dir);
    await m.open();
    return m;
  },
  async cleanup() {
    await rm(dir, { recursive: true, force: true });
  },
});

test('LevelDB: a webhook queue keeps its order across a reopen', async () => {
  const d = await mkdtemp(join(tmpdir(), 'berth-level-'));
  try {
    let m = new LevelMetadata(d);
    await m.open();
    await m.enqueueNotifications([{ endpoint: 'h', event: '1' }, { endpoint: 'h', event: '2' }, { endpoint: 'g', event: 'x' }]);
    const [first] = await m.pendingNotifications('h', 1);
    await m.removeNotification('h', first!.id);
    await m.close();
    m = new LevelMetadata(d);
    await m.open();
    await m.enqueueNotifications([{ endpoint: 'h', event: '3' }]);
    assert.deepEqual((await m.pendingNotifications('h', 10)).map((n) => n.event), ['2', '3']);
    await m.close();
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});

test('LevelDB: tags stored before push times were recorded are listed once the folder opens, as pushed at time 0, after newer ones', async () => {
  const d = await mkdtemp(join(tmpdir(), 'berth-level-old-'));
  try {
    const D = (c: string) => `sha256:${c.repeat(64)}`;
    // A data folder as an older berth left it: tags, no push times, no tagTimes mark.
    const old = new LevelMetadata(d);
    await old.open();
    await old.putManifest({ name: 'team/app', digest: D('a'), link: { mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1, refs: [] }, tags: ['v1', 'v0'], touched: [] });
    await old.db.sublevel('tagtime').clear();
    await old.db.sublevel('recent').clear();
    await old.db.sublevel('meta').del('tagTimes');
    assert.deepEqual(await old.recentTags('team/app', 10), []);
    await old.close();
    const m = new LevelMetadata(d);
    await m.open();
    assert.deepEqual(await m.recentTags('team/app', 10), [{ tag: 'v0', digest: D('a'), pushed: 0 }, { tag: 'v1', digest: D('a'), pushed: 0 }]);
    await m.putManifest({ name: 'team/app', digest: D('a'), link: { mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1, refs: [] }, tags: ['v2'], touched: [] });
    assert.deepEqual((await m.recentTags('team/app', 10)).map((t) => t.tag), ['v2', 'v0', 'v1']);
    await m.close();
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});
