// berth load [-i FILE] [-q]
import { command, run } from './common.js';
import { LocalImageStore } from '../store/image-store.js';
import { loadArchive } from '../archive/load.js';

export async function main(argv: string[]): Promise<number> {
  const program = command('load', 'Load images from a tar archive (docker save format or OCI layout; stdin by default)')
    .option('-i, --input <file>', 'Read from a tar archive file instead of stdin')
    .option('-q, --quiet', 'Suppress the load output')
    .action(async (o: { input?: string; quiet?: boolean }) => {
      if (!o.input && process.stdin.isTTY) throw new Error('requested load from stdin, but stdin is empty: use -i FILE');
      const store = await LocalImageStore.open();
      // A file is read in place (its tar entries by offset); stdin is spooled first.
      const { loaded } = await loadArchive(store, o.input ?? process.stdin);
      if (!o.quiet) process.stdout.write(loaded.map((l) => l + '\n').join(''));
    });
  return run('load', program, argv);
}
