// Starting and stopping a registry: close() must let background work (upload purge, GC, mirror
// eviction) finish before LevelDB closes, so none of it touches a closed database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { RegistryStore } from '../storage/registry-store.js';
import { DEFAULT_CONFIG, validateConfig } from './config.js';
import { startRegistry } from './serve.js';

test('close() waits for the upload purge started at start-up instead of closing LevelDB under it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-serve-'));
  try {
    // Enough stale sessions that the purge at start-up is still running when close() is called.
    const seed = new RegistryStore(dir);
    await seed.open();
    const old = new Date(Date.now() - 30 * 24 * 3600 * 1000).toISOString();
    for (let i = 0; i < 3000; i++) {
      const id = `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
      await seed.meta.createUpload(id, { name: 'team/app', algorithm: 'sha256', offset: 0, started: old, updated: old });
    }
    await seed.close();

    const lines: Array<{ level: number; msg: string; err?: { message: string } }> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as (typeof lines)[number]);
        cb();
      },
    });
    const config = validateConfig({ ...DEFAULT_CONFIG, listen: '127.0.0.1:0', data: dir });
    const registry = await startRegistry(config, { logger: pino({ level: 'info' }, sink) });
    await registry.close(1000);
    const warnings = lines.filter((l) => l.level >= 40);
    assert.deepEqual(warnings, [], 'no background task failed on a closed database');
    assert.ok(lines.some((l) => l.msg === 'purged stale upload sessions'), 'the purge finished before close() returned');

    const after = new RegistryStore(dir);
    await after.open();
    try {
      let left = 0;
      for await (const _ of after.meta.listUploads()) left++;
      assert.equal(left, 0);
    } finally {
      await after.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
