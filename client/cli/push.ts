// berth push NAME[:TAG]
import { command, run } from './common.js';
import { openRegistryContext } from './context.js';
import { parseReference } from '../../oci/reference.js';
import { Progress } from '../progress.js';
import { push } from '../push.js';

export async function main(argv: string[]): Promise<number> {
  const program = command('push', 'Upload an image to a registry')
    .argument('<image>', 'NAME[:TAG]')
    .option('-q, --quiet', 'Print nothing but errors')
    .option('--config <file>', 'Client config file (daemon.json keys; default $BERTH_CONFIG)')
    .action(async (image: string, o: { quiet?: boolean; config?: string }) => {
      const ref = parseReference(image);
      const { transport, store } = await openRegistryContext(o.config);
      try {
        await push(transport, store, ref, new Progress(process.stdout, { quiet: Boolean(o.quiet) }));
      } finally {
        await transport.close();
      }
    });
  return run('push', program, argv);
}
