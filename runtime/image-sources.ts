// `berth run`'s image lookup: resolve() of the image model (an OCI layout folder for `oci:DIR`,
// else the local store), pulling into the store first when the image is missing (docker run's
// behaviour). Client code is imported only when used.
import type { Platform } from '../oci/manifest.js';
import { ImageNotFoundError, PlatformMismatchError, type ResolvedImage } from '../client/image/resolve.js';

export { parseOciLayoutRef } from '../client/image/resolve.js';

export interface ResolveOptions {
  /** Pull from the registry when the local store lacks the image (default true). */
  pull?: boolean;
  /** `--platform`: the entry of an index to run, and what a single image must be. */
  platform?: Platform;
}

export async function resolveImage(ref: string, opts: ResolveOptions = {}): Promise<ResolvedImage> {
  const { resolve, parseOciLayoutRef } = await import('../client/image/resolve.js');
  const p = opts.platform ? { platform: opts.platform } : {};
  if (parseOciLayoutRef(ref)) return resolve(ref, p);
  let miss: ImageNotFoundError;
  try {
    return await resolve(ref, p);
  } catch (err) {
    if (!(err instanceof ImageNotFoundError) || opts.pull === false) throw err;
    miss = err;
  }
  // Present for another platform only: docker 24+ pulls the requested one (GetImage's mismatch is errdefs.NotFound, moby#48631).
  process.stderr.write(`Unable to find image '${ref}' locally\n`);
  try {
    await pullIntoStore(ref, opts.platform);
  } catch (err) {
    if (miss instanceof PlatformMismatchError) throw new Error(`${miss.message}; pulling the requested platform failed: ${(err as Error).message}`);
    throw new ImageNotFoundError(ref, (err as Error).message);
  }
  return resolve(ref, p);
}

/** docker run's implicit pull: fetches `input` (for `platform`, else this host) into the local store, progress on stderr. */
async function pullIntoStore(input: string, platform?: Platform): Promise<void> {
  const [{ openRegistryContext }, { pull }, { Progress }, { parseReference }] = await Promise.all([
    import('../client/cli/context.js'),
    import('../client/pull.js'),
    import('../client/progress.js'),
    import('../oci/reference.js'),
  ]);
  const ref = parseReference(input);
  const { transport, store } = await openRegistryContext();
  try {
    await pull(transport, store, ref, { progress: new Progress(process.stderr, {}), ...(platform ? { platform } : {}) });
  } finally {
    await transport.close();
  }
}
