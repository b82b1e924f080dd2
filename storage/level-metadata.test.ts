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
