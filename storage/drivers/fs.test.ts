// The driver suite on the fs driver, in a temp data folder.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataLayout } from '../layout.js';
import { defineDriverSuite } from './driver-suite.js';
import { FsBlobDriver } from './fs.js';

defineDriverSuite('fs', async ({ guard }) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-fs-driver-'));
  const layout = new DataLayout(dir);
  return {
    driver: new FsBlobDriver(layout, guard),
    replica: async () => new FsBlobDriver(layout, guard),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});
