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
