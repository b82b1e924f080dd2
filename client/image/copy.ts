// copy(src, dst): the one walk over manifests, indexes and blobs that pull, push, save, load,
// import and commit share (go-containerregistry's remote.Write / layout.AppendImage). The source
// gives the model's Image or ImageIndex; the platform entry of an index is chosen here (through
// client/platform.ts choosePlatform) and nowhere else; blobs go first, with the sink's bounded
// parallelism, then the image manifests, then the index, so a sink never names what it lacks.
import type { Blob, Image, ImageIndex, ImageOrIndex } from '../../oci/image.js';
import type { Platform } from '../../oci/manifest.js';
import { RegistryError } from '../../oci/errors.js';
import { mapLimit } from '../concurrency.js';
import { choosePlatform, formatPlatform, hostPlatform } from '../platform.js';

/** 'exists' (the sink had it), 'written', or `mounted from REPO` (a registry's cross-repository mount). */
export type BlobOutcome = 'exists' | 'written' | `mounted from ${string}`;

export interface ImageSink {
  /** How many blobs may be written at once (1 for a tar being written in order). */
  readonly concurrency: number;
  has(digest: string): Promise<boolean>;
  /** Writes a blob the sink lacks; the bytes come from blob.open() (verified) or a faster equivalent. */
  putBlob(blob: Blob, role: 'config' | 'layer'): Promise<BlobOutcome>;
  /** Writes a manifest's raw bytes (image manifests before the index that lists them). */
  putManifest(m: ImageOrIndex): Promise<void>;
}

export interface CopyOptions {
  /** The index entry to copy (default: this host's); ignored with allPlatforms. */
  platform?: Platform;
  /** Copy every entry of an index, and the index itself. */
  allPlatforms?: boolean;
  /** Called once before any blob is written, with the blobs and whether the sink has them. */
  planned?(blobs: Array<{ blob: Blob; role: 'config' | 'layer'; present: boolean }>): void;
  /** Called as each blob the sink lacked is written. */
  written?(blob: Blob, role: 'config' | 'layer', outcome: BlobOutcome): void;
}

export interface CopyResult {
  /** What the source named (an image, or an index). */
  top: ImageOrIndex;
  /** The image manifests copied (one, or every child with allPlatforms). */
  images: Image[];
  /** What the sink now holds in full: the image, or with allPlatforms the index. */
  target: ImageOrIndex;
}

/** The images of `top` to copy: itself, its entry for the platform, or every entry. */
export async function selectImages(top: ImageOrIndex, opts: { platform?: Platform; allPlatforms?: boolean }): Promise<Image[]> {
  if (top.kind === 'image') return [top];
  if (opts.allPlatforms) {
    const out: Image[] = [];
    for (const d of top.manifest.manifests) {
      const child = await top.child(d);
      if (!child) throw new Error(`index ${top.digest} lists ${d.digest}${d.platform ? ` (${formatPlatform(d.platform)})` : ''}, which the source does not hold; pull it with --all-platforms first`);
      if (child.kind !== 'image') throw new RegistryError('MANIFEST_INVALID', 'an index may only list image manifests');
      out.push(child);
    }
    return out;
  }
  return [await platformImage(top, opts.platform)];
}

/** The one choice of an index's entry (nested indexes followed). */
export async function platformImage(index: ImageIndex, platform?: Platform): Promise<Image> {
  const want = platform ?? hostPlatform();
  let at: ImageOrIndex = index;
  for (let depth = 0; at.kind === 'index'; depth++) {
    const d = depth < 4 ? choosePlatform(at.manifest.manifests, want) : undefined;
    if (!d) throw new NoMatchingPlatformError(want);
    const child: ImageOrIndex | undefined = await at.child(d);
    if (!child) throw new NoMatchingPlatformError(want, `${d.digest} is not stored`);
    at = child;
  }
  return at;
}

export class NoMatchingPlatformError extends Error {
  constructor(readonly platform: Platform, detail?: string) {
    super(`no matching manifest for ${formatPlatform(platform)} in the manifest list entries${detail ? ` (${detail})` : ''}`);
  }
}

export async function copy(top: ImageOrIndex, dst: ImageSink, opts: CopyOptions = {}): Promise<CopyResult> {
  const images = await selectImages(top, opts);
  const blobs = new Map<string, { blob: Blob; role: 'config' | 'layer' }>();
  for (const img of images) {
    // The config first: a sink writing in order (a tar) then has it before the layers.
    if (!blobs.has(img.config.digest)) blobs.set(img.config.digest, { blob: img.config, role: 'config' });
    for (const l of img.layers) if (!l.urls?.length && !blobs.has(l.digest)) blobs.set(l.digest, { blob: l, role: 'layer' });
  }
  const list = [...blobs.values()];
  const present = await mapLimit(list, Math.max(dst.concurrency, 8), (b) => dst.has(b.blob.digest));
  opts.planned?.(list.map((b, i) => ({ ...b, present: present[i]! })));
  const missing = list.filter((_, i) => !present[i]);
  const put = async ({ blob, role }: { blob: Blob; role: 'config' | 'layer' }): Promise<void> => {
    const outcome = await dst.putBlob(blob, role);
    opts.written?.(blob, role, outcome);
  };
  if (dst.concurrency === 1) {
    await mapLimit(missing, 1, put);
  } else {
    // The concurrency limit is docker's max-concurrent-downloads/uploads, which counts layers: a
    // config (small, one per image) goes beside them instead of holding a layer's place.
    // Both settle before a failure is thrown: the caller's rollback must not race a running write.
    const settled = await Promise.allSettled([mapLimit(missing.filter((b) => b.role === 'config'), dst.concurrency, put), mapLimit(missing.filter((b) => b.role === 'layer'), dst.concurrency, put)]);
    for (const s of settled) if (s.status === 'rejected') throw s.reason;
  }
  for (const img of images) await dst.putManifest(img);
  const whole = top.kind === 'index' && opts.allPlatforms;
  if (whole) await dst.putManifest(top);
  return { top, images, target: whole ? top : images[0]! };
}
