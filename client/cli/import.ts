// berth import FILE|- [REPOSITORY[:TAG]]
import { open } from 'node:fs/promises';
import { run } from './common.js';
import { LocalImageStore } from '../store/image-store.js';
import { importRootfs } from '../archive/import.js';
import { parseReference } from '../../oci/reference.js';
import { parsePlatform } from '../platform.js';

export async function main(file: string, name: string | undefined, o: { message?: string; platform?: string }): Promise<number> {
  return run('import', async () => {
      const ref = name ? parseReference(name) : undefined;
      if (ref?.digest) throw new Error('an imported image cannot be tagged with a digest reference');
      const store = await LocalImageStore.open();
      // Opened first, so a missing file is a rejected promise rather than a stream 'error' event.
      const source = file === '-' ? process.stdin : (await open(file, 'r')).createReadStream({ highWaterMark: 1 << 20 });
      const id = await importRootfs(store, source, { ...(ref ? { ref } : {}), ...(o.message ? { message: o.message } : {}), ...(o.platform ? { platform: parsePlatform(o.platform) } : {}) });
      process.stdout.write(id + '\n');
  });
}
