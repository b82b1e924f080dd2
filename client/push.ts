// berth push: config and layers uploaded concurrently (skipped when the registry has them,
// mounted from another repository of the same registry when one is known to hold them,
// monolithic when small, chunked and resumable when large), then the manifest(s).
// distribution-spec/spec.md#pushing-blobs, #pushing-a-blob-in-chunks, #mounting-a-blob-from-another-repository.
import { setTimeout as sleep } from 'node:timers/promises';
import { Readable } from 'node:stream';
import { RegistryError } from '../oci/errors.js';
import { familiarRepository, repositoryName, type ImageReference } from '../oci/reference.js';
import { mapLimit } from './concurrency.js';
import { pushEndpoint } from './endpoints.js';
import { shortDigest } from './pull.js';
import type { Progress } from './progress.js';
import type { LocalImageStore } from './store/image-store.js';
import type { ImageRecord } from './store/image-index.js';
import { UnreachableError, type RegistryClient, type Transport } from './transport/registry-client.js';

/** Blobs up to this size go in one PUT; larger ones in PATCH chunks of CHUNK bytes. */
export const MONOLITHIC_MAX = 32 << 20;
export const CHUNK = 128 << 20;
const RETRIES = 3;

export interface PushOptions {
  /** Largest blob sent in one PUT (default MONOLITHIC_MAX). */
  monolithicMax?: number;
  /** PATCH size of a chunked upload (default CHUNK). */
  chunkSize?: number;
}

export interface PushResult {
  digest: string;
  size: number;
}

interface BlobToPush {
  digest: string;
  size: number;
  layer: boolean;
}

function location(client: RegistryClient, res: { headers: Record<string, string | string[] | undefined> }): URL {
  const loc = res.headers.location;
  if (typeof loc !== 'string' || loc === '') throw new RegistryError('BLOB_UPLOAD_INVALID', `${client.host} did not return an upload location`);
  return new URL(loc, client.baseUrl);
}

/** The next byte the registry expects, from an upload's `Range: 0-<last>` header. */
function uploadOffset(range: string | string[] | undefined): number {
  const m = typeof range === 'string' ? /^(?:bytes=)?0-(\d+)$/.exec(range) : null;
  // Registries answer `0-0` for an empty session as well as for one byte; chunks are far larger
  // than one byte, so `0-0` means "start over".
  return m && m[1] !== '0' ? Number(m[1]) + 1 : 0;
}

function retriable(e: unknown): boolean {
  return e instanceof UnreachableError || (e instanceof RegistryError && (e.status >= 500 || e.status === 429));
}

class BlobPusher {
  constructor(
    private readonly client: RegistryClient,
    private readonly store: LocalImageStore,
    private readonly repository: string,
    private readonly progress: Progress,
    private readonly opts: Required<PushOptions>,
  ) {}

  private get scopes(): string[] {
    return [`repository:${this.repository}:pull,push`];
  }

  /** 'exists' | 'mounted from REPO' | 'pushed' */
  async push(blob: BlobToPush, mountFrom: string[]): Promise<string> {
    const id = shortDigest(blob.digest);
    // A redirect to storage (Docker Hub, S3-backed registries) also says the blob is there.
    const head = await this.client.request({ method: 'HEAD', path: `/v2/${this.repository}/blobs/${blob.digest}`, scopes: this.scopes, ok: [200, 404, 301, 302, 303, 307, 308] });
    await head.body.dump();
    if (head.statusCode !== 404) return 'exists';

    let start: URL | undefined;
    for (const from of mountFrom) {
      const res = await this.client.request({
        method: 'POST',
        path: `/v2/${this.repository}/blobs/uploads/?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(from)}`,
        scopes: [...this.scopes, `repository:${from}:pull`],
        ok: [201, 202],
      });
      await res.body.dump();
      if (res.statusCode === 201) return `mounted from ${from}`;
      start = location(this.client, res);
      break;
    }
    if (!start) {
      const res = await this.client.request({ method: 'POST', path: `/v2/${this.repository}/blobs/uploads/`, scopes: this.scopes, ok: [202] });
      await res.body.dump();
      start = location(this.client, res);
    }
    if (blob.layer) this.progress.bytes(id, 'Pushing', 0, blob.size);
    if (blob.size > this.opts.monolithicMax) {
      await this.putChunked(start, blob);
      return 'pushed';
    }
    // A failed monolithic PUT is sent again in a fresh session: nothing to resume in one request.
    for (let failures = 0; ; ) {
      try {
        await this.putWhole(start, blob);
        return 'pushed';
      } catch (e) {
        if (!retriable(e) || ++failures > RETRIES) throw e;
        await sleep(200 * failures);
        const res = await this.client.request({ method: 'POST', path: `/v2/${this.repository}/blobs/uploads/`, scopes: this.scopes, ok: [202] });
        await res.body.dump();
        start = location(this.client, res);
      }
    }
  }

  /** The blob's bytes, reporting progress to a layer's row as they go out. */
  private counted(source: Readable, blob: BlobToPush, from: number): Readable {
    if (!blob.layer) return source;
    const id = shortDigest(blob.digest);
    const progress = this.progress;
    let sent = from;
    return Readable.from(
      (async function* () {
        for await (const c of source) {
          sent += (c as Buffer).length;
          progress.bytes(id, 'Pushing', sent, blob.size);
          yield c as Buffer;
        }
      })(),
      { objectMode: false },
    );
  }

  private async putWhole(at: URL, blob: BlobToPush): Promise<void> {
    const url = new URL(at);
    url.searchParams.set('digest', blob.digest);
    const res = await this.client.request({
      method: 'PUT',
      path: url.href,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
      body: () => this.counted(this.store.blobs.read(blob.digest), blob, 0),
      scopes: this.scopes,
      ok: [201, 204],
    });
    await res.body.dump();
    if (blob.layer) this.progress.bytes(shortDigest(blob.digest), 'Pushing', blob.size, blob.size);
  }

  /** PATCH chunk by chunk; after a failure, GET the session to learn its offset and go on from there. */
  private async putChunked(start: URL, blob: BlobToPush): Promise<void> {
    let at = start;
    let offset = 0;
    let failures = 0;
    while (offset < blob.size) {
      const end = Math.min(offset + this.opts.chunkSize, blob.size) - 1;
      try {
        const res = await this.client.request({
          method: 'PATCH',
          path: at.href,
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - offset + 1), 'content-range': `${offset}-${end}` },
          body: () => this.counted(this.store.blobs.read(blob.digest, { start: offset, end }), blob, offset),
          scopes: this.scopes,
          ok: [202],
        });
        await res.body.dump();
        at = location(this.client, res);
        offset = end + 1;
        if (blob.layer) this.progress.bytes(shortDigest(blob.digest), 'Pushing', offset, blob.size);
      } catch (e) {
        if (!(retriable(e) || (e instanceof RegistryError && e.status === 416)) || ++failures > RETRIES) throw e;
        await sleep(200 * failures);
        const status = await this.client.request({ path: at.href, scopes: this.scopes, ok: [204] });
        await status.body.dump();
        at = location(this.client, status);
        offset = uploadOffset(status.headers.range);
      }
    }
    const url = new URL(at);
    url.searchParams.set('digest', blob.digest);
    const res = await this.client.request({ method: 'PUT', path: url.href, headers: { 'content-length': '0' }, scopes: this.scopes, ok: [201, 204] });
    await res.body.dump();
  }
}

export async function push(transport: Transport, store: LocalImageStore, ref: ImageReference, progress: Progress, opts: PushOptions = {}): Promise<PushResult> {
  const doc = await store.index.read();
  const { record } = await store.resolve(familiarOrFull(ref), doc);
  const client = pushEndpoint(transport, ref);
  const repository = ref.repository;
  progress.print(`The push refers to repository [${familiarRepository(ref)}]`);

  const images: ImageRecord[] = [];
  if (record.kind === 'index') {
    const index = await store.manifest(record);
    const missing = ('manifests' in index ? index.manifests : []).filter((d) => !doc.images[d.digest]);
    if (missing.length > 0) throw new Error(`${ref.tag ?? record.digest} is an index with ${missing.length} platform manifest(s) not stored locally; pull it with --all-platforms first`);
    for (const d of 'manifests' in index ? index.manifests : []) images.push(doc.images[d.digest]!);
  } else {
    images.push(record);
  }
  const blobs = new Map<string, BlobToPush>();
  for (const img of images) {
    for (const l of img.layers ?? []) blobs.set(l.digest, { digest: l.digest, size: l.size, layer: true });
    if (img.config) blobs.set(img.config.digest, { digest: img.config.digest, size: img.config.size, layer: false });
  }
  for (const b of blobs.values()) if (!(await store.blobs.has(b.digest))) throw new Error(`blob ${b.digest} of ${ref.tag ?? record.digest} is missing from the local store`);

  const here = repositoryName(ref);
  const pusher = new BlobPusher(client, store, repository, progress, { monolithicMax: opts.monolithicMax ?? MONOLITHIC_MAX, chunkSize: opts.chunkSize ?? CHUNK });
  const list = [...blobs.values()];
  for (const b of list) if (b.layer) progress.status(shortDigest(b.digest), 'Preparing');
  await mapLimit(list, transport.config.maxConcurrentUploads, async (b) => {
    const mountFrom = (doc.sources[b.digest] ?? []).filter((s) => s !== here && s.startsWith(`${ref.registry}/`)).map((s) => s.slice(ref.registry.length + 1));
    const outcome = await pusher.push(b, mountFrom);
    if (b.layer) progress.status(shortDigest(b.digest), outcome === 'exists' ? 'Layer already exists' : outcome === 'pushed' ? 'Pushed' : `Mounted from ${outcome.slice('mounted from '.length)}`);
  });

  const putManifest = async (r: ImageRecord, reference: string): Promise<number> => {
    const bytes = await store.blobs.readAll(r.digest);
    const res = await client.request({
      method: 'PUT',
      path: `/v2/${repository}/manifests/${reference}`,
      headers: { 'content-type': r.mediaType },
      body: () => bytes,
      scopes: [`repository:${repository}:pull,push`],
      ok: [201, 200, 204],
    });
    await res.body.dump();
    const echoed = res.headers['docker-content-digest'];
    if (typeof echoed === 'string' && echoed !== r.digest) throw new RegistryError('DIGEST_INVALID', `registry stored the manifest as ${echoed}, expected ${r.digest}`);
    return bytes.length;
  };
  if (record.kind === 'index') for (const img of images) await putManifest(img, img.digest);
  const size = await putManifest(record, ref.tag ?? record.digest);

  const sources: Record<string, string> = {};
  for (const b of list) sources[b.digest] = here;
  await store.register([{ ...record, repoDigests: [`${here}@${record.digest}`] }], [], '', sources);
  progress.print(`${ref.tag ?? 'latest'}: digest: ${record.digest} size: ${size}`);
  return { digest: record.digest, size };
}

function familiarOrFull(ref: ImageReference): string {
  return `${repositoryName(ref)}${ref.digest ? `@${ref.digest}` : `:${ref.tag ?? 'latest'}`}`;
}
