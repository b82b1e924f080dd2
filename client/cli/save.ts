// berth save [-o FILE] [--format docker|oci] IMAGE...
import { createWriteStream } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { command, run } from './common.js';
import { LocalImageStore } from '../store/image-store.js';
import { saveImages, type ArchiveFormat } from '../archive/save.js';
import { fsyncDir, unlinkQuietly } from '../../storage/durable-file.js';

export async function main(argv: string[]): Promise<number> {
  const program = command('save', 'Save one or more images to a tar archive (streamed to stdout by default)')
    .argument('<images...>', 'IMAGE')
    .option('-o, --output <file>', 'Write to a file instead of stdout')
    .option('--format <format>', 'docker (docker save / docker-archive) or oci (OCI image layout)', 'docker')
    .action(async (inputs: string[], o: { output?: string; format: string }) => {
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
  return run('save', program, argv);
}
