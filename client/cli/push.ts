// berth push NAME[:TAG]
import { run, runVerb } from './common.js';
import { openRegistryContext } from './context.js';
import { parseReference } from '../../oci/reference.js';
import { Progress } from '../progress.js';
import { push } from '../push.js';

/** `berth push`: exits as soon as it is done (client/cli/common.ts's run). */
export async function main(image: string, o: { quiet?: boolean; config?: string }): Promise<number> {
  return run('push', () => pushWork(image, o));
}

/** The same for a caller that goes on afterwards (`berth build --push`): returns the exit code. */
export async function pushImage(image: string, o: { quiet?: boolean; config?: string }): Promise<number> {
  return runVerb('push', () => pushWork(image, o));
}

async function pushWork(image: string, o: { quiet?: boolean; config?: string }): Promise<void> {
  const ref = parseReference(image);
  const { transport, store } = await openRegistryContext(o.config);
  try {
    await push(transport, store, ref, new Progress(process.stdout, { quiet: Boolean(o.quiet) }));
  } finally {
    await transport.close();
  }
}
