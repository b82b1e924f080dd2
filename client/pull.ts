// berth pull: resolve the manifest (mirrors first, then the registry), pick the platform of an
// index, download config and layers concurrently into the blob store (hashed while streaming,
// resumed with Range after a broken connection), then register the image. Nothing is named in
// the index until every blob is stored and verified; on failure the blobs this pull added go.
import { setTimeout as sleep } from 'node:timers/promises';
import { digestOf } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { MANIFEST_ACCEPT, bareMediaType } from '../oci/media-types.js';
import { parseManifest, type Descriptor, type ImageManifest, type Platform } from '../oci/manifest.js';
import { familiarReference, formatReference, repositoryName, type ImageReference } from '../oci/reference.js';
import { mapLimit } from './concurrency.js';
import { pullEndpoints, type Endpoint } from './endpoints.js';
import { formatPlatform, hostPlatform, platformMatches } from './platform.js';
import type { Progress } from './progress.js';
import type { LocalImageStore } from './store/image-store.js';
import type { ImageRecord } from './store/image-index.js';
import { UnreachableError, type BlobResponse, type Transport } from './transport/registry-client.js';
import type { BodySink } from './transport/plain-get.js';
import type { BlobIngest } from '../storage/blob-ingest.js';

export interface PullOptions {
  platform?: Platform;
  allPlatforms?: boolean;
  progress: Progress;
}

export interface PullResult {
  digest: string;
  upToDate: boolean;
}

/** Largest manifest accepted from a registry (the spec's floor for what registries must take). */
const MAX_MANIFEST = 4 << 20;
const RETRIES = 3;

interface FetchedManifest {
  bytes: Buffer;
  digest: string;
  mediaType: string;
}

export function shortDigest(d: string): string {
  return d.slice(d.indexOf(':') + 1, d.indexOf(':') + 13);
}

/** Worth another attempt: the network or the registry failed, not the request or our disk. */
function retriable(e: unknown): boolean {
  if (e instanceof UnreachableError) return true;
  if (e instanceof RegistryError) return e.status >= 500 || e.status === 429;
  return (e as NodeJS.ErrnoException).code !== 'ENOSPC';
}

async function fetchManifest(ep: Endpoint, repository: string, reference: string): Promise<FetchedManifest> {
  const res = await ep.client.request({
    path: `/v2/${repository}/manifests/${reference}`,
    headers: { accept: MANIFEST_ACCEPT },
    scopes: [`repository:${repository}:pull`],
  });
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body) {
    n += (c as Buffer).length;
    if (n > MAX_MANIFEST) {
      res.body.destroy();
      throw new RegistryError('MANIFEST_INVALID', `manifest from ${ep.client.host} exceeds ${MAX_MANIFEST} bytes`);
    }
    chunks.push(c as Buffer);
  }
  const bytes = Buffer.concat(chunks);
  const declared = res.headers['docker-content-digest'];
  const algorithm = reference.startsWith('sha512:') ? 'sha512' : 'sha256';
  const digest = digestOf(bytes, algorithm);
  // A digest reference pins the bytes; a tag's Docker-Content-Digest must agree with them too.
  if (reference.includes(':') && reference !== digest) {
    throw new RegistryError('DIGEST_INVALID', `manifest from ${ep.client.host} has digest ${digest}, not the requested ${reference}`);
  }
  if (typeof declared === 'string' && declared.startsWith(`${algorithm}:`) && declared !== digest) {
    throw new RegistryError('DIGEST_INVALID', `manifest from ${ep.client.host} has digest ${digest} but the registry says ${declared}`);
  }
  const mediaType = parseManifest(bytes, bareMediaType(String(res.headers['content-type'] ?? ''))).mediaType;
  return { bytes, digest, mediaType };
}

/** Tries each endpoint in order; a mirror's error or 404 falls through to the next. */
async function firstManifest(eps: Endpoint[], repository: string, reference: string): Promise<{ m: FetchedManifest; from: number }> {
  let last: unknown;
  for (let i = 0; i < eps.length; i++) {
    try {
      return { m: await fetchManifest(eps[i]!, repository, reference), from: i };
    } catch (e) {
      last = e;
    }
  }
  throw last;
}

/** Where the `start` of a 206's `Content-Range: bytes start-end/size` is. */
function rangeStart(value: string | string[] | undefined): number | undefined {
  const m = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(String(value ?? ''));
  return m ? Number(m[1]) : undefined;
}

/** Downloads a blob into `ingest`, resuming with Range after an interrupted body (RFC 9110 §14.2). */
async function download(eps: Endpoint[], repository: string, desc: Descriptor, ingest: BlobIngest, onBytes: (n: number) => void): Promise<void> {
  const sink: BodySink = {
    reserve: () => ingest.reserve(),
    commit: (n) => {
      ingest.commit(n);
      onBytes(ingest.size);
    },
    push: (c) => {
      ingest.push(c);
      onBytes(ingest.size);
    },
    get writable() {
      return ingest.writable;
    },
    whenWritable: () => ingest.whenWritable(),
  };
  let failures = 0;
  let at = 0;
  for (;;) {
    const received = ingest.size;
    let res: BlobResponse;
    try {
      res = await eps[at]!.client.getBlob({
        path: `/v2/${repository}/blobs/${desc.digest}`,
        headers: received > 0 ? { range: `bytes=${received}-` } : {},
        scopes: [`repository:${repository}:pull`],
        ok: [200, 206],
        followRedirects: true,
      });
    } catch (e) {
      // Before any byte came, another endpoint may have it (a mirror missing one blob).
      if (received === 0 && at + 1 < eps.length) {
        at++;
        continue;
      }
      if (retriable(e) && ++failures <= RETRIES) {
        await sleep(200 * failures);
        continue;
      }
      throw e;
    }
    try {
      if (res.statusCode === 206 && rangeStart(res.headers['content-range']) !== received) {
        throw new UnreachableError(`${eps[at]!.client.host} answered a Range request for ${desc.digest} from byte ${received} with Content-Range ${String(res.headers['content-range'])}`);
      }
      // A registry that ignores Range sends the whole blob again: what is stored is skipped.
      await res.pipeTo(sink, received > 0 && res.statusCode === 200 ? received : 0);
      if (ingest.size === desc.size) return;
      throw new UnreachableError(`connection closed after ${ingest.size} of ${desc.size} bytes`);
    } catch (e) {
      if (e instanceof RegistryError || !retriable(e) || ++failures > RETRIES) throw e;
      await sleep(200 * failures);
    } finally {
      res.destroy();
    }
  }
}

export async function pull(transport: Transport, store: LocalImageStore, ref: ImageReference, opts: PullOptions): Promise<PullResult> {
  const { progress } = opts;
  const eps = pullEndpoints(transport, ref);
  const repository = ref.repository;
  const reference = ref.digest ?? ref.tag ?? 'latest';
  progress.print(`${ref.digest ? ref.digest : reference}: Pulling from ${ref.repository}`);
  let found: Awaited<ReturnType<typeof firstManifest>>;
  try {
    found = await firstManifest(eps, repository, reference);
  } catch (e) {
    if (e instanceof RegistryError && e.status === 404) {
      throw new RegistryError(e.code, `manifest for ${familiarReference(ref)} not found: manifest unknown (${e.message})`, { status: 404 });
    }
    throw e;
  }
  const { m: top, from } = found;

  // Which image manifests to fetch: the manifest itself, or the index's children for the platform(s).
  const manifests: FetchedManifest[] = [];
  const wanted = opts.platform ?? hostPlatform();
  if (top.mediaType.includes('index') || top.mediaType.includes('manifest.list')) {
    const index = parseManifest(top.bytes, top.mediaType);
    // --all-platforms keeps every child (attestations included) so the index pushes back unchanged.
    const runnable = index.manifests.filter((d) => d.platform && d.platform.os !== 'unknown' && d.platform.architecture !== 'unknown');
    const chosen = opts.allPlatforms ? index.manifests : runnable.filter((d) => platformMatches(d.platform!, wanted)).slice(0, 1);
    if (chosen.length === 0) throw new Error(`no matching manifest for ${formatPlatform(wanted)} in the manifest list entries`);
    for (const d of chosen) manifests.push((await firstManifest([eps[from]!, ...eps.filter((_, i) => i !== from)], repository, d.digest)).m);
  } else {
    manifests.push(top);
  }

  const images = manifests.map((fm) => ({ fm, parsed: parseManifest(fm.bytes, fm.mediaType) }));
  for (const { parsed } of images) if (parsed.kind !== 'image') throw new RegistryError('MANIFEST_INVALID', 'an index may only list image manifests');
  const blobs = new Map<string, Descriptor & { layer: boolean }>();
  for (const { parsed } of images) {
    const m = parsed.json as ImageManifest;
    blobs.set(m.config.digest, { ...m.config, layer: false });
    for (const l of m.layers) if (!l.urls?.length) blobs.set(l.digest, { ...l, layer: true });
  }

  const ordered = [from, ...eps.map((_, i) => i).filter((i) => i !== from)];
  const epsFromServer = ordered.map((i) => eps[i]!);
  const added: string[] = [];
  let upToDate = true;
  try {
    const all = [...blobs.values()];
    const stored = new Set<string>();
    for (const d of all) if (await store.blobs.has(d.digest)) stored.add(d.digest);
    for (const d of all) if (d.layer) progress.status(shortDigest(d.digest), stored.has(d.digest) ? 'Already exists' : 'Pulling fs layer');
    await mapLimit(all.filter((d) => !stored.has(d.digest)), transport.config.maxConcurrentDownloads, async (d) => {
      const id = shortDigest(d.digest);
      upToDate = false;
      let ingest: BlobIngest | undefined;
      try {
        ingest = await store.blobs.openIngest({ digest: d.digest, size: d.size });
        await download(epsFromServer, repository, d, ingest, (n) => d.layer && progress.bytes(id, 'Downloading', n, d.size));
        await ingest.finish();
      } catch (e) {
        await ingest?.abort();
        if (e instanceof RegistryError && (e.code === 'DIGEST_INVALID' || e.code === 'SIZE_INVALID')) {
          throw new RegistryError(e.code, `${d.layer ? 'layer' : 'config'} ${d.digest} failed verification (${e.message}); nothing was stored`);
        }
        if ((e as NodeJS.ErrnoException).code === 'ENOSPC') throw new Error(`no space left on device while storing ${d.digest} under ${store.root}; nothing was stored`);
        throw e;
      }
      added.push(d.digest);
      if (d.layer) {
        progress.status(id, 'Verifying Checksum');
        progress.status(id, 'Download complete');
      }
    });
    for (const fm of [...manifests, top]) {
      if (await store.blobs.has(fm.digest)) continue;
      await store.blobs.ingest([fm.bytes], { digest: fm.digest });
      added.push(fm.digest);
    }
    for (const d of blobs.values()) if (d.layer && added.includes(d.digest)) progress.status(shortDigest(d.digest), 'Pull complete');

    const repoDigest = `${repositoryName(ref)}@${top.digest}`;
    const records: ImageRecord[] = [];
    for (const fm of manifests) records.push(await store.recordFor(fm.digest, [repoDigest]));
    let target = manifests[0]!.digest;
    if (opts.allPlatforms && top !== manifests[0]) {
      records.push(await store.recordFor(top.digest, [repoDigest]));
      target = top.digest;
    }
    const before = (await store.index.read()).tags[formatReference({ ...ref, digest: undefined } as ImageReference)];
    const sources: Record<string, string> = {};
    for (const d of blobs.keys()) sources[d] = repositoryName(ref);
    await store.register(records, ref.tag && !ref.digest ? [ref] : [], target, sources);
    if (before !== target) upToDate = false;
  } catch (e) {
    // Leave nothing half-stored: the blobs this pull added go unless another image uses them.
    if (added.length > 0) await store.index.update((doc) => store.dropUnreferencedBlobs(doc, added)).catch(() => undefined);
    throw e;
  }
  progress.print(`Digest: ${top.digest}`);
  const shown = familiarReference(ref.digest ? { ...ref, tag: undefined } : ref);
  progress.print(upToDate ? `Status: Image is up to date for ${shown}` : `Status: Downloaded newer image for ${shown}`);
  return { digest: top.digest, upToDate };
}
