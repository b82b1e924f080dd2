// berth load [-i FILE] [-q]
import { run } from './common.js';
import { LocalImageStore } from '../store/image-store.js';
import { loadArchive } from '../archive/load.js';

export async function main(o: { input?: string; quiet?: boolean }): Promise<number> {
  return run('load', async () => {
      if (!o.input && process.stdin.isTTY) throw new Error('requested load from stdin, but stdin is empty: use -i FILE');
      const store = await LocalImageStore.open();
      // A file is read in place (its tar entries by offset); stdin is spooled first.
      const { loaded } = await loadArchive(store, o.input ?? process.stdin);
      if (!o.quiet) process.stdout.write(loaded.map((l) => l + '\n').join(''));
  });
}
