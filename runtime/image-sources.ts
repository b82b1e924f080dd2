// Which ImageSource serves an image reference given to `berth run`: `oci:DIR[:TAG]` reads an OCI
// image layout (as skopeo names it); anything else is the client's local image store, pulled
// into first when missing (docker run's behaviour). Client code is imported only when used.
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { ImageNotFoundError, type ResolvedImage } from './image-source.js';

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
}

export async function resolveImage(ref: string, opts: ResolveOptions = {}): Promise<ResolvedImage> {
  const layoutRef = parseOciLayoutRef(ref);
  if (layoutRef) {
    const { OciLayoutSource } = await import('./oci-layout-source.js');
    return new OciLayoutSource(layoutRef.dir).resolve(layoutRef.tag);
  }
  const { LocalStoreSource, pullIntoStore } = await import('./store-image-source.js');
  const source = await LocalStoreSource.open();
  try {
    return await source.resolve(ref);
  } catch (err) {
    if (!(err instanceof ImageNotFoundError) || opts.pull === false) throw err;
  }
  process.stderr.write(`Unable to find image '${ref}' locally\n`);
  try {
    await pullIntoStore(ref);
  } catch (err) {
    throw new ImageNotFoundError(ref, (err as Error).message);
  }
  return source.resolve(ref);
}
