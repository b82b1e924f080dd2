// berth save [-o FILE] [--format docker|oci] IMAGE...
import { createWriteStream } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { run } from './common.js';
import { LocalImageStore } from '../store/image-store.js';
import { saveImages, type ArchiveFormat } from '../archive/save.js';
import { fsyncDir, unlinkQuietly } from '../../storage/durable-file.js';

export async function main(inputs: string[], o: { output?: string; format: string }): Promise<number> {
  return run('save', async () => {
      if (o.format !== 'docker' && o.format !== 'oci') throw new Error(`unknown format ${JSON.stringify(o.format)}: use docker or oci`);
      const store = await LocalImageStore.open();
      if (!o.output) {
        if (process.stdout.isTTY) throw new Error('cowardly refusing to save to a terminal: use -o FILE or redirect stdout');
        await saveImages(store, inputs, process.stdout, o.format as ArchiveFormat);
        return;
      }
      // Written beside the target, fsync'd, then renamed: a failed save leaves no partial archive.
      const tmp = join(dirname(o.output), `.${basename(o.output)}.${randomUUID()}.tmp`);
      try {
        await saveImages(store, inputs, createWriteStream(tmp), o.format as ArchiveFormat);
        const fh = await open(tmp, 'r+');
        await fh.sync();
        await fh.close();
        await rename(tmp, o.output);
        await fsyncDir(dirname(o.output));
      } catch (e) {
        await unlinkQuietly(tmp);
        throw e;
      }
  });
}
