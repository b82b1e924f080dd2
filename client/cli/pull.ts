// berth pull [--platform os/arch[/variant]] [--all-platforms] [-q] NAME[:TAG|@DIGEST]
import { run } from './common.js';
import { openRegistryContext } from './context.js';
import { parseReference, formatReference } from '../../oci/reference.js';
import { parsePlatform } from '../platform.js';
import { Progress } from '../progress.js';
import { pull } from '../pull.js';

export async function main(image: string, o: { platform?: string; allPlatforms?: boolean; quiet?: boolean; config?: string }): Promise<number> {
  return run('pull', async () => {
      const ref = parseReference(image);
      const progress = new Progress(process.stdout, { quiet: Boolean(o.quiet) });
      if (!parseReference(image, { defaultTag: false }).tag && !ref.digest) progress.print(`Using default tag: ${ref.tag}`);
      const { transport, store } = await openRegistryContext(o.config);
      try {
        // As docker's: an empty --platform or DOCKER_DEFAULT_PLATFORM means the host's.
        const platform = o.platform ?? process.env.DOCKER_DEFAULT_PLATFORM;
        await pull(transport, store, ref, { progress, allPlatforms: Boolean(o.allPlatforms), ...(platform ? { platform: parsePlatform(platform) } : {}) });
      } finally {
        await transport.close();
      }
      process.stdout.write(formatReference(ref) + '\n');
  });
}
