// resolve(ref, {platform}): the image a local reference names, as the model's Image with its
// parsed config: `oci:DIR[:TAG]` reads an OCI layout folder (as skopeo names it), anything else the
// local store. An index gives its entry for the platform (copy.ts platformImage: the one choice);
// a lone image asked for with --platform must be of that platform (docker's GetImage check).
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { configPlatform, parseImageConfig, type Image, type ImageConfig, type ImageOrIndex } from '../../oci/image.js';
import type { Platform } from '../../oci/manifest.js';
import { formatPlatform, hostPlatform, platformMatches } from '../platform.js';
import { NoMatchingPlatformError, platformImage } from './copy.js';

/** An image found locally: the manifest digest is its identity in `berth ps` and `inspect`. */
export interface ResolvedImage {
  id: string;
  image: Image;
  config: ImageConfig;
}

/** The image is not there: `berth run` pulls it, or exits 125 as docker does. */
export class ImageNotFoundError extends Error {
  constructor(readonly ref: string, detail?: string) {
    super(`Unable to find image '${ref}'${detail ? `: ${detail}` : ''}`);
  }
}

/**
 * The image is there, but for another platform than `--platform` asked for. A "not found", as in
 * docker (daemon/images/image.go GetImage), so that `run` pulls the requested platform.
 */
export class PlatformMismatchError extends ImageNotFoundError {
  constructor(ref: string, wanted: Platform, actual: { os: string; architecture: string; variant?: string | undefined }) {
    super(ref);
    const a = actual.os && actual.architecture && actual.os !== 'unknown' ? formatPlatform(actual) : 'unknown';
    this.message = `image with reference ${ref} was found but does not match the specified platform: wanted ${formatPlatform(wanted)}, actual: ${a}`;
  }
}

/** Splits `oci:DIR[:TAG]`; the tag is after the last ':' that follows the last '/'. */
export function parseOciLayoutRef(ref: string): { dir: string; tag: string } | undefined {
  if (!ref.startsWith('oci:')) return undefined;
  const rest = ref.slice(4);
  const colon = rest.lastIndexOf(':');
  const slash = rest.lastIndexOf('/');
  const [dir, tag] = colon > slash ? [rest.slice(0, colon), rest.slice(colon + 1)] : [rest, ''];
  return { dir: isAbsolute(dir) ? dir : resolvePath(dir), tag };
}

async function finish(top: ImageOrIndex, name: string, platform: Platform | undefined, where: string): Promise<ResolvedImage> {
  let image: Image;
  try {
    image = top.kind === 'image' ? top : await platformImage(top, platform);
  } catch (e) {
    if (e instanceof NoMatchingPlatformError) throw new ImageNotFoundError(name, `no matching manifest for ${formatPlatform(platform ?? hostPlatform())} in ${where}`);
    throw e;
  }
  const config = parseImageConfig(await image.rawConfig(), `image config ${image.config.digest}`);
  if (platform && top.kind === 'image' && !platformMatches(configPlatform(config), platform)) throw new PlatformMismatchError(name, platform, configPlatform(config));
  return { id: image.digest, image, config };
}

export async function resolve(ref: string, opts: { platform?: Platform } = {}): Promise<ResolvedImage> {
  const layoutRef = parseOciLayoutRef(ref);
  if (layoutRef) {
    const { LayoutSource, folderFiles } = await import('./layout.js');
    const src = new LayoutSource(folderFiles(layoutRef.dir));
    let entry;
    try {
      entry = await src.find(layoutRef.tag);
    } catch (err) {
      throw new ImageNotFoundError(layoutRef.tag || 'latest', `no OCI layout at ${layoutRef.dir} (${(err as Error).message})`);
    }
    if (!entry) throw new ImageNotFoundError(layoutRef.tag || 'latest', `not in ${layoutRef.dir}`);
    return finish(await src.image(entry), `oci:${layoutRef.dir}${layoutRef.tag ? `:${layoutRef.tag}` : ''}`, opts.platform, `the image index of ${layoutRef.dir}`);
  }
  const [{ LocalImageStore, ImageNotFoundError: StoreMiss }, { storeImage }] = await Promise.all([import('../store/image-store.js'), import('./store-image.js')]);
  const store = await LocalImageStore.open();
  let record;
  try {
    ({ record } = await store.resolve(ref));
  } catch (err) {
    if (err instanceof StoreMiss) throw new ImageNotFoundError(ref, 'not in the local store');
    throw err;
  }
  return finish(await storeImage(store, record.digest, record.mediaType), ref, opts.platform, 'the local store');
}
