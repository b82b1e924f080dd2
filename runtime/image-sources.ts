// Which ImageSource serves an image reference given to `berth run`: `oci:DIR[:TAG]` reads an OCI
// image layout (as skopeo names it); anything else is the client's local image store, pulled
// into first when missing (docker run's behaviour). Client code is imported only when used.
import { isAbsolute, resolve as resolvePath } from 'node:path';
import type { Platform } from '../oci/manifest.js';
import { ImageNotFoundError, PlatformMismatchError, type ResolvedImage } from './image-source.js';

/** Splits `oci:DIR[:TAG]`; the tag is after the last ':' that follows the last '/'. */
export function parseOciLayoutRef(ref: string): { dir: string; tag: string } | undefined {
  if (!ref.startsWith('oci:')) return undefined;
  const rest = ref.slice(4);
  const colon = rest.lastIndexOf(':');
  const slash = rest.lastIndexOf('/');
  const [dir, tag] = colon > slash ? [rest.slice(0, colon), rest.slice(colon + 1)] : [rest, ''];
  return { dir: isAbsolute(dir) ? dir : resolvePath(dir), tag };
}

export interface ResolveOptions {
  /** Pull from the registry when the local store lacks the image (default true). */
  pull?: boolean;
  /** `--platform`: the entry of an index to run, and what a single image must be. */
  platform?: Platform;
}

export async function resolveImage(ref: string, opts: ResolveOptions = {}): Promise<ResolvedImage> {
  const layoutRef = parseOciLayoutRef(ref);
  if (layoutRef) {
    const { OciLayoutSource } = await import('./oci-layout-source.js');
    return new OciLayoutSource(layoutRef.dir, opts.platform).resolve(layoutRef.tag);
  }
  const { LocalStoreSource, pullIntoStore } = await import('./store-image-source.js');
  const source = await LocalStoreSource.open();
  let miss: ImageNotFoundError;
  try {
    return await source.resolve(ref, opts.platform);
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
  return source.resolve(ref, opts.platform);
}
