// A registry as a source and a sink of the image model (go-containerregistry's remote.Image and
// remote.Write). Source: lazy, the manifest is fetched first (mirrors before the registry, as
// endpoints.ts orders them) and blobs only when read; a download into the local store resumes with
// Range after a broken connection. Sink: HEAD, cross-repository mount, upload (monolithic when
// small, chunked and resumable when large), with the transport's bounded parallelism.
// distribution-spec/spec.md#pulling-manifests, #pushing-blobs, #mounting-a-blob-from-another-repository.
import { Readable } from 'node:stream';
import { RegistryError } from '../../oci/errors.js';
import type { Blob, ImageOrIndex } from '../../oci/image.js';
import { MANIFEST_ACCEPT, bareMediaType } from '../../oci/media-types.js';
import type { Descriptor } from '../../oci/manifest.js';
import type { ImageReference } from '../../oci/reference.js';
import type { BlobIngest } from '../../storage/blob-ingest.js';
import { pullEndpoints, pushEndpoint, type Endpoint } from '../endpoints.js';
import type { LocalImageStore } from '../store/image-store.js';
import { UnreachableError, type BlobResponse, type RegistryClient, type Transport } from '../transport/registry-client.js';
import type { BodySink } from '../transport/plain-get.js';
import { blobOf, canReadRange, manifestOf, MAX_JSON_BLOB, type BlobReader } from './manifest-image.js';
import type { BlobOutcome, ImageSink } from './copy.js';
import type { IngestCapable } from './store-image.js';

/** A retry's pause (node:timers/promises would be one more module to load on every push and pull). */
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const RETRIES = 3;

/** Worth another attempt: the network or the registry failed, not the request or our disk. */
function retriableRead(e: unknown): boolean {
  if (e instanceof UnreachableError) return true;
  if (e instanceof RegistryError) return e.status >= 500 || e.status === 429;
  return (e as NodeJS.ErrnoException).code !== 'ENOSPC';
}

async function fetchManifest(ep: Endpoint, repository: string, reference: string): Promise<{ raw: Buffer; contentType: string; declared?: string }> {
  const res = await ep.client.request({
    path: `/v2/${repository}/manifests/${reference}`,
    headers: { accept: MANIFEST_ACCEPT },
    scopes: [`repository:${repository}:pull`],
  });
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body) {
    n += (c as Buffer).length;
    if (n > MAX_JSON_BLOB) {
      res.body.destroy();
      throw new RegistryError('MANIFEST_INVALID', `manifest from ${ep.client.host} exceeds ${MAX_JSON_BLOB} bytes`);
    }
    chunks.push(c as Buffer);
  }
  const declared = res.headers['docker-content-digest'];
  return { raw: Buffer.concat(chunks), contentType: bareMediaType(String(res.headers['content-type'] ?? '')), ...(typeof declared === 'string' ? { declared } : {}) };
}

/** Where a `Content-Range: bytes start-end/size` starts. */
function rangeStart(value: string | string[] | undefined): number | undefined {
  const m = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(String(value ?? ''));
  return m ? Number(m[1]) : undefined;
}

/** A registry repository read through its endpoints (mirrors first). */
export class RemoteSource {
  private readonly eps: Endpoint[];
  /** Index into eps of the endpoint that served the top manifest: blobs are asked there first. */
  private from = 0;

  constructor(readonly transport: Transport, readonly ref: ImageReference) {
    this.eps = pullEndpoints(transport, ref);
  }

  private get ordered(): Endpoint[] {
    return [this.eps[this.from]!, ...this.eps.filter((_, i) => i !== this.from)];
  }

  /** The manifest `reference` (tag or digest) names, checked against a digest reference and Docker-Content-Digest. */
  private async manifestFrom(eps: Endpoint[], reference: string, expected?: Descriptor): Promise<{ m: ImageOrIndex; at: number }> {
    let last: unknown;
    for (let i = 0; i < eps.length; i++) {
      const ep = eps[i]!;
      try {
        const { raw, contentType, declared } = await fetchManifest(ep, this.ref.repository, reference);
        const isDigest = reference.includes(':');
        const m = manifestOf(raw, this.reader, {
          ...(expected ? { expected } : {}),
          ...(isDigest ? { digest: reference } : {}),
          ...(contentType ? { mediaType: contentType } : {}),
        });
        // A tag's Docker-Content-Digest must agree with the bytes too.
        if (declared && declared.startsWith(m.digest.split(':')[0]! + ':') && declared !== m.digest) {
          throw new RegistryError('DIGEST_INVALID', `manifest from ${ep.client.host} has digest ${m.digest} but the registry says ${declared}`);
        }
        return { m, at: i };
      } catch (e) {
        if (e instanceof RegistryError && e.code === 'DIGEST_INVALID' && !e.message.includes(ep.client.host)) {
          last = new RegistryError('DIGEST_INVALID', `manifest from ${ep.client.host}: ${e.message}`);
        } else last = e;
      }
    }
    throw last;
  }

  /** The image or index the reference names (only its manifest is fetched). */
  async image(): Promise<ImageOrIndex> {
    const reference = this.ref.digest ?? this.ref.tag ?? 'latest';
    const { m, at } = await this.manifestFrom(this.eps, reference);
    this.from = at;
    return m;
  }

  private readonly reader: BlobReader = {
    open: async (d) => this.openBlob(d),
    manifest: async (d) => {
      const { m } = await this.manifestFrom(this.ordered, d.digest, d);
      return m.raw;
    },
  };

  private async openBlob(d: Descriptor): Promise<Readable> {
    const res = await this.ordered[0]!.client.request({
      path: `/v2/${this.ref.repository}/blobs/${d.digest}`,
      scopes: [`repository:${this.ref.repository}:pull`],
      followRedirects: true,
    });
    return res.body as unknown as Readable;
  }

  /** Layers of images from this source are downloaded straight into the store's ingest. */
  layerOf(b: Blob): Blob & IngestCapable {
    const d: Descriptor = { digest: b.digest, size: b.size, mediaType: b.mediaType };
    return { ...blobOf(d, this.reader, `blob ${b.digest}`), ingestInto: (store, onBytes) => this.ingestInto(store, d, onBytes) };
  }

  private async ingestInto(store: LocalImageStore, d: Descriptor, onBytes: (n: number) => void): Promise<void> {
    let ingest: BlobIngest | undefined;
    try {
      ingest = await store.blobs.openIngest({ digest: d.digest, size: d.size });
      await this.download(d, ingest, onBytes);
      await ingest.finish();
    } catch (e) {
      await ingest?.abort();
      throw e;
    }
  }

  /** Downloads a blob into `ingest`, resuming with Range after an interrupted body (RFC 9110 §14.2). */
  private async download(desc: Descriptor, ingest: BlobIngest, onBytes: (n: number) => void): Promise<void> {
    const eps = this.ordered;
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
          path: `/v2/${this.ref.repository}/blobs/${desc.digest}`,
          headers: received > 0 ? { range: `bytes=${received}-` } : {},
          scopes: [`repository:${this.ref.repository}:pull`],
          ok: [200, 206],
          followRedirects: true,
        });
      } catch (e) {
        // Before any byte came, another endpoint may have it (a mirror missing one blob).
        if (received === 0 && at + 1 < eps.length) {
          at++;
          continue;
        }
        if (retriableRead(e) && ++failures <= RETRIES) {
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
        if (e instanceof RegistryError || !retriableRead(e) || ++failures > RETRIES) throw e;
        await sleep(200 * failures);
      } finally {
        res.destroy();
      }
    }
  }
}

/** The remote source's image with every blob able to stream into the store's ingest. */
export function withDownloads(src: RemoteSource, m: ImageOrIndex): ImageOrIndex {
  if (m.kind === 'index') return { ...m, child: async (d) => {
    const c = await m.child(d);
    return c && withDownloads(src, c);
  } };
  return { ...m, config: src.layerOf(m.config), layers: m.layers.map((l) => Object.assign(src.layerOf(l), l.urls ? { urls: l.urls } : {})) };
}

// ---- the sink ----

/** Blobs up to this size go in one PUT; larger ones in PATCH chunks of CHUNK bytes. */
export const MONOLITHIC_MAX = 32 << 20;
export const CHUNK = 128 << 20;

export interface RemoteSinkOptions {
  /** Largest blob sent in one PUT (default MONOLITHIC_MAX). */
  monolithicMax?: number;
  /** PATCH size of a chunked upload (default CHUNK). */
  chunkSize?: number;
  /** Repositories of the same registry known to hold a blob: tried as mount sources. */
  mountFrom?: (digest: string) => string[];
  /** Bytes sent of a layer so far (progress rows). */
  onBytes?: (blob: Blob, sent: number) => void;
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

function retriableWrite(e: unknown): boolean {
  return e instanceof UnreachableError || (e instanceof RegistryError && (e.status >= 500 || e.status === 429));
}

/** Skips `from` bytes of a verified stream and ends after `end` (inclusive): a chunk of a blob without ranged reads. */
async function* slice(source: Readable, from: number, end: number): AsyncGenerator<Buffer> {
  let at = 0;
  for await (const c of source) {
    const chunk = c as Buffer;
    const s = Math.max(0, from - at);
    const e = Math.min(chunk.length, end + 1 - at);
    at += chunk.length;
    if (e > s) yield chunk.subarray(s, e);
    if (at > end) break;
  }
  source.destroy();
}

export class RemoteSink implements ImageSink {
  readonly client: RegistryClient;
  readonly concurrency: number;
  private readonly opts: Required<RemoteSinkOptions>;
  /** Digest → the tag to PUT the manifest under (default: its digest). */
  private readonly tags = new Map<string, string>();

  constructor(transport: Transport, readonly ref: ImageReference, opts: RemoteSinkOptions = {}) {
    this.client = pushEndpoint(transport, ref);
    this.concurrency = transport.config.maxConcurrentUploads;
    this.opts = { monolithicMax: opts.monolithicMax ?? MONOLITHIC_MAX, chunkSize: opts.chunkSize ?? CHUNK, mountFrom: opts.mountFrom ?? (() => []), onBytes: opts.onBytes ?? (() => undefined) };
  }

  private get repository(): string {
    return this.ref.repository;
  }

  private get scopes(): string[] {
    return [`repository:${this.repository}:pull,push`];
  }

  /** PUT the manifest `digest` under `tag` instead of its digest. */
  tagAs(digest: string, tag: string): void {
    this.tags.set(digest, tag);
  }

  async has(digest: string): Promise<boolean> {
    // A redirect to storage (Docker Hub, S3-backed registries) also says the blob is there.
    const head = await this.client.request({ method: 'HEAD', path: `/v2/${this.repository}/blobs/${digest}`, scopes: this.scopes, ok: [200, 404, 301, 302, 303, 307, 308] });
    await head.body.dump();
    return head.statusCode !== 404;
  }

  async putBlob(blob: Blob): Promise<BlobOutcome> {
    let start: URL | undefined;
    for (const from of this.opts.mountFrom(blob.digest)) {
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
    start ??= await this.newSession();
    this.opts.onBytes(blob, 0);
    if (blob.size > this.opts.monolithicMax) {
      await this.putChunked(start, blob);
      return 'written';
    }
    // A failed monolithic PUT is sent again in a fresh session: nothing to resume in one request.
    for (let failures = 0; ; ) {
      try {
        await this.putWhole(start, blob);
        return 'written';
      } catch (e) {
        if (!retriableWrite(e) || ++failures > RETRIES) throw e;
        await sleep(200 * failures);
        start = await this.newSession();
      }
    }
  }

  private async newSession(): Promise<URL> {
    const res = await this.client.request({ method: 'POST', path: `/v2/${this.repository}/blobs/uploads/`, scopes: this.scopes, ok: [202] });
    await res.body.dump();
    return location(this.client, res);
  }

  /** The blob's bytes, reporting progress as they go out. */
  private counted(open: () => Promise<AsyncIterable<unknown>>, blob: Blob, from: number): Readable {
    const onBytes = this.opts.onBytes;
    let sent = from;
    return Readable.from(
      (async function* () {
        for await (const c of await open()) {
          sent += (c as Buffer).length;
          onBytes(blob, sent);
          yield c as Buffer;
        }
      })(),
      { objectMode: false },
    );
  }

  private async putWhole(at: URL, blob: Blob): Promise<void> {
    const url = new URL(at);
    url.searchParams.set('digest', blob.digest);
    const res = await this.client.request({
      method: 'PUT',
      path: url.href,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
      body: () => this.counted(() => blob.open(), blob, 0),
      scopes: this.scopes,
      ok: [201, 204],
    });
    await res.body.dump();
    this.opts.onBytes(blob, blob.size);
  }

  private async chunk(blob: Blob, start: number, end: number): Promise<AsyncIterable<unknown>> {
    if (canReadRange(blob)) return blob.openRange(start, end);
    return slice(await blob.open(), start, end);
  }

  /** PATCH chunk by chunk; after a failure, GET the session to learn its offset and go on from there. */
  private async putChunked(start: URL, blob: Blob): Promise<void> {
    let at = start;
    let offset = 0;
    let failures = 0;
    while (offset < blob.size) {
      const end = Math.min(offset + this.opts.chunkSize, blob.size) - 1;
      try {
        const from = offset;
        const res = await this.client.request({
          method: 'PATCH',
          path: at.href,
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - offset + 1), 'content-range': `${offset}-${end}` },
          body: () => this.counted(() => this.chunk(blob, from, end), blob, from),
          scopes: this.scopes,
          ok: [202],
        });
        await res.body.dump();
        at = location(this.client, res);
        offset = end + 1;
        this.opts.onBytes(blob, offset);
      } catch (e) {
        if (!(retriableWrite(e) || (e instanceof RegistryError && e.status === 416)) || ++failures > RETRIES) throw e;
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

  async putManifest(m: ImageOrIndex): Promise<void> {
    const reference = this.tags.get(m.digest) ?? m.digest;
    const res = await this.client.request({
      method: 'PUT',
      path: `/v2/${this.repository}/manifests/${reference}`,
      headers: { 'content-type': m.mediaType },
      body: () => m.raw,
      scopes: this.scopes,
      ok: [201, 200, 204],
    });
    await res.body.dump();
    const echoed = res.headers['docker-content-digest'];
    if (typeof echoed === 'string' && echoed !== m.digest) throw new RegistryError('DIGEST_INVALID', `registry stored the manifest as ${echoed}, expected ${m.digest}`);
  }
}
