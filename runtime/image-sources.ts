// Which ImageSource serves an image reference given to `berth run`. `oci:DIR[:TAG]` reads an OCI
// image layout (as skopeo names it). Plain references will be served by the client's local image
// store (pulling when missing) once it is wired in here.
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { ImageNotFoundError, type ResolvedImage } from './image-source.js';
import { OciLayoutSource } from './oci-layout-source.js';

/** Splits `oci:DIR[:TAG]`; the tag is after the last ':' that follows the last '/'. */
export function parseOciLayoutRef(ref: string): { dir: string; tag: string } | undefined {
  if (!ref.startsWith('oci:')) return undefined;
  const rest = ref.slice(4);
  const colon = rest.lastIndexOf(':');
  const slash = rest.lastIndexOf('/');
  const [dir, tag] = colon > slash ? [rest.slice(0, colon), rest.slice(colon + 1)] : [rest, ''];
  return { dir: isAbsolute(dir) ? dir : resolvePath(dir), tag };
}

export async function resolveImage(ref: string): Promise<ResolvedImage> {
  const layoutRef = parseOciLayoutRef(ref);
  if (layoutRef) return new OciLayoutSource(layoutRef.dir).resolve(layoutRef.tag);
  throw new ImageNotFoundError(ref, 'only oci:DIR[:TAG] images can be run until the local image store is connected');
}
