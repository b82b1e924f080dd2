// The `s3` blob driver: blobs and upload sessions as objects of one bucket of any S3-compatible
// store (AWS, Ceph radosgw). The only module that loads @aws-sdk/client-s3: whoever selects
// `--storage s3` loads it with a dynamic import(), so a start on the fs driver never pays for the SDK.
//
//   <prefix>/blobs/<alg>/<2 hex>/<hex>         a blob, written once after its digest was verified
//   <prefix>/uploads/<uuid>/data               a session's bytes: a multipart upload while it runs
//   <prefix>/uploads/<uuid>/tail-<end>-<rand>  the session's last bytes short of a whole part
//
// Memory is bounded whatever the blob size: bytes are cut into parts of `partSize`, at most two
// parts are on the wire while the next one fills (≤ ~3 parts per put or append). docs/scale-out.md.
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Digester, isValidDigest, parseDigest } from '../../oci/digest.js';
import { RegistryError } from '../../oci/errors.js';
import {
  StorageConfigError,
  StorageUnavailableError,
  type AppendOptions,
  type BlobDriver,
  type ByteRange,
  type ByteSource,
  type CommitGuard,
  type CommitHook,
  type PutExpectation,
  type UploadState,
} from '../blob-driver.js';
import { isUploadId } from '../layout.js';

const MiB = 1 << 20;
/** S3's smallest part (all but the last) and its most parts per multipart upload. */
const MIN_PART = 5 * MiB;
const MAX_PARTS = 10_000;
/** S3's largest single CopyObject; larger objects are copied part by part (UploadPartCopy). */
const MAX_COPY = 5 * 1024 * MiB;
/**
 * Parts on the wire at once per put or append (the memory bound is this plus the one filling).
 * 4 × 8 MiB: 29.6 MB/s against 24.6 with 2 × 8 MiB and 21.7 with 2 × 16 MiB on radosgw, 128 MiB
 * puts (bench/scale-out.ts experiments, docs/performance.md).
 */
const PARTS_IN_FLIGHT = 4;
/** UploadPartCopy requests at once (server-side copies: no bytes pass through the registry). */
const COPIES_IN_FLIGHT = 4;

export interface S3DriverOptions {
  bucket: string;
  /** Any S3-compatible endpoint (http://127.0.0.1:7480); AWS's regional endpoint when absent. */
  endpoint?: string;
  region: string;
  /** Key prefix inside the bucket, without slashes at its ends ('' by default). */
  prefix?: string;
  /** Default: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; with neither, the SDK's provider chain (IAM roles). */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Path-style addressing (http://host/bucket/key); default: true when an endpoint is given. */
  forcePathStyle?: boolean;
  guard?: CommitGuard;
  /** Bytes per multipart part: 8 MiB by default, at least 5 MiB. */
  partSize?: number;
  /** Largest object copied with one CopyObject (5 GiB, S3's limit); larger ones are copied in parts. */
  maxCopySize?: number;
  /** Attempts per request (the SDK retries network errors and 5xx with backoff); 3 by default. */
  maxAttempts?: number;
}

interface Part {
  n: number;
  etag: string;
  size: number;
}

/** The driver's UploadState (JSON): the session's multipart upload, its parts, the tail object. */
interface SessionState {
  uploadId?: string;
  parts: Part[];
  tail?: { key: string; size: number };
}

export class S3BlobDriver implements BlobDriver {
  readonly kind = 's3' as const;
  readonly bucket: string;
  readonly partSize: number;
  private readonly client: S3Client;
  private readonly prefix: string;
  private readonly endpointName: string;
  private readonly guard: CommitGuard | undefined;
  private readonly maxCopySize: number;

  constructor(opts: S3DriverOptions) {
    this.bucket = opts.bucket;
    this.partSize = opts.partSize ?? 8 * MiB;
    if (!Number.isSafeInteger(this.partSize) || this.partSize < MIN_PART || this.partSize > MAX_COPY) {
      throw new StorageConfigError(`S3 part size ${opts.partSize} is out of range: between 5 MiB and 5 GiB`);
    }
    this.maxCopySize = Math.min(opts.maxCopySize ?? MAX_COPY, MAX_COPY);
    const prefix = (opts.prefix ?? '').replace(/^\/+|\/+$/g, '');
    this.prefix = prefix ? `${prefix}/` : '';
    this.endpointName = opts.endpoint ?? `https://s3.${opts.region}.amazonaws.com`;
    this.guard = opts.guard;
    const accessKeyId = opts.accessKeyId ?? process.env.AWS_ACCESS_KEY_ID;
    const secretAccessKey = opts.secretAccessKey ?? process.env.AWS_SECRET_ACCESS_KEY;
    // The SDK prints a nine-line notice about its future Node versions at the first client on
    // Node 20, which berth supports with the SDK version in package-lock.json: not a server log line.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.client = new S3Client({
      region: opts.region,
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      forcePathStyle: opts.forcePathStyle ?? opts.endpoint !== undefined,
      ...(accessKeyId && secretAccessKey ? { credentials: { accessKeyId, secretAccessKey, ...(process.env.AWS_SESSION_TOKEN ? { sessionToken: process.env.AWS_SESSION_TOKEN } : {}) } } : {}),
      // Bodies are whole buffers and blobs are verified by digest: no aws-chunked trailing
      // checksums, which S3-compatible stores (radosgw before Squid) reject.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: opts.maxAttempts ?? 3,
    });
  }

  async open(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (e) {
      throw this.configError(e);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  // ---- blobs ----

  async stat(digest: string): Promise<number | undefined> {
    return this.objectSize(this.blobKey(digest));
  }

  async read(digest: string, range?: ByteRange): Promise<Readable> {
    try {
      return await this.getObject(this.blobKey(digest), range);
    } catch (e) {
      if (isNotFound(e)) throw Object.assign(new Error(`blob ${digest} is not in bucket ${this.bucket}`), { code: 'ENOENT' });
      throw e;
    }
  }

  async redirectUrl(digest: string, expiresInSeconds: number): Promise<string | undefined> {
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest) }), { expiresIn: expiresInSeconds });
  }

  /**
   * Streams `source` straight to the blob's final key as a multipart upload (invisible until
   * completed), hashing on the way; only a verified upload is completed, inside the commit guard.
   * A blob smaller than one part is one PutObject, sent after it was verified.
   */
  async put(source: ByteSource, expect: PutExpectation): Promise<{ digest: string; size: number }> {
    const { algorithm } = parseDigest(expect.digest);
    const key = this.blobKey(expect.digest);
    const digester = new Digester(algorithm);
    // A known size picks a part size that stays within S3's 10,000 parts.
    const partSize = Math.max(this.partSize, Math.ceil((expect.size ?? 0) / MAX_PARTS));
    // Created with the first part (once: the next part may be sent before it exists).
    let uploadId: Promise<string> | undefined;
    const writer = new PartWriter(partSize, 1, async (n, body) => this.uploadPart(key, await (uploadId ??= this.createMultipart(key)), n, body));
    let done = false;
    try {
      const limit = expect.limit ?? Number.POSITIVE_INFINITY;
      for await (const chunk of chunksOf(source)) {
        const size = digester.size + chunk.length;
        if (size > limit) throw new RegistryError('SIZE_INVALID', `content exceeds the limit of ${limit} bytes`, { status: 413 });
        if (expect.size !== undefined && size > expect.size) throw new RegistryError('SIZE_INVALID', `expected ${expect.size} bytes, received more`);
        digester.update(chunk);
        await writer.write(chunk);
      }
      const size = digester.size;
      const digest = digester.digest();
      if (expect.size !== undefined && expect.size !== size) throw new RegistryError('SIZE_INVALID', `expected ${expect.size} bytes, received ${size}`);
      if (digest !== expect.digest) throw new RegistryError('DIGEST_INVALID', `content digest ${digest} does not match ${expect.digest}`);
      if (uploadId === undefined) {
        const body = writer.rest();
        await this.commit(digest, size, expect.guardHeld === true, async () => {
          if ((await this.objectSize(key)) === undefined) await this.putObject(key, body, true);
        }, expect);
      } else {
        const id = await uploadId;
        await writer.writeLast();
        const parts = await writer.finish();
        await this.commit(digest, size, expect.guardHeld === true, async () => {
          if ((await this.objectSize(key)) === undefined) await this.completeMultipart(key, id, parts, true);
          else await this.abortMultipart(key, id);
        }, expect);
      }
      done = true;
      return { digest, size };
    } finally {
      if (!done) {
        await writer.settle();
        await uploadId?.then((id) => this.abortMultipart(key, id)).catch(() => undefined);
      }
    }
  }

  async delete(digest: string): Promise<void> {
    await this.call('DeleteObject', () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest) })));
  }

  async *list(): AsyncIterable<string> {
    const root = `${this.prefix}blobs/`;
    for await (const { key } of this.listObjects(root)) {
      const [algorithm, two, encoded, ...rest] = key.slice(root.length).split('/');
      const digest = `${algorithm}:${encoded}`;
      if (rest.length === 0 && encoded?.startsWith(two ?? '-') && isValidDigest(digest)) yield digest;
    }
  }

  // ---- upload sessions ----

  async startUpload(id: string): Promise<UploadState> {
    this.sessionPrefix(id); // validates the id
    return { parts: [] } satisfies SessionState;
  }

  /**
   * Full parts go to the session's multipart upload, numbered after the recorded ones (an append
   * that was cut off is overwritten part by part by the next one at the same offset); the rest,
   * shorter than a part, is stored as a new tail object, read back and put in front of the next
   * append's bytes. Returns once every part and the tail are stored.
   */
  async appendUpload(id: string, state: UploadState, source: ByteSource, opts: AppendOptions): Promise<{ state: UploadState; received: number }> {
    const s = sessionState(id, state);
    const held = sizeOf(s);
    if (held !== opts.offset) throw new Error(`upload ${id}: its driver state holds ${held} bytes, but the session's offset is ${opts.offset}`);
    const dataKey = `${this.sessionPrefix(id)}data`;
    let uploadId = s.uploadId !== undefined ? Promise.resolve(s.uploadId) : undefined;
    const writer = new PartWriter(this.partSize, s.parts.length + 1, async (n, body) => this.uploadPart(dataKey, await (uploadId ??= this.createMultipart(dataKey)), n, body));
    let received = 0;
    try {
      for await (const chunk of chunksOf(source)) {
        if (opts.offset + received + chunk.length > opts.limit) throw new RegistryError('SIZE_INVALID', `blob exceeds the upload limit of ${opts.limit} bytes`, { status: 413 });
        if (received === 0 && s.tail) {
          for await (const t of await this.getObject(s.tail.key, { start: 0, end: s.tail.size - 1 })) await writer.write(t as Uint8Array);
        }
        opts.onChunk(chunk);
        received += chunk.length;
        await writer.write(chunk);
      }
      if (received === 0) return { state: s as unknown as UploadState, received };
      const parts = [...s.parts, ...(await writer.finish())];
      const rest = writer.rest();
      const next: SessionState = { parts };
      if (uploadId !== undefined) next.uploadId = await uploadId;
      if (rest.length > 0) {
        // A new key for every tail: the recorded state's tail stays intact until the caller has
        // recorded the new state, whatever happens to this append.
        const key = `${this.sessionPrefix(id)}tail-${opts.offset + received}-${randomBytes(4).toString('hex')}`;
        await this.putObject(key, rest, false);
        next.tail = { key, size: rest.length };
      }
      return { state: next as unknown as UploadState, received };
    } finally {
      await writer.settle();
    }
  }

  async finishUpload(id: string, state: UploadState, size: number, digest: string, hook: CommitHook = {}): Promise<void> {
    const s = sessionState(id, state);
    if (sizeOf(s) !== size) throw new Error(`upload ${id}: its driver state holds ${sizeOf(s)} bytes, not ${size}`);
    const key = this.blobKey(digest);
    if (s.uploadId === undefined || s.parts.length === 0) {
      const tail = s.tail;
      await this.commit(digest, size, false, async () => {
        if ((await this.objectSize(key)) !== undefined) return;
        if (tail) await this.copyObject(tail.key, key, tail.size);
        else await this.putObject(key, Buffer.alloc(0), true);
      }, hook);
    } else {
      const dataKey = `${this.sessionPrefix(id)}data`;
      const parts = [...s.parts];
      if (s.tail) {
        const n = parts.length + 1;
        const r = await this.call('UploadPartCopy', () =>
          this.client.send(
            new UploadPartCopyCommand({ Bucket: this.bucket, Key: dataKey, UploadId: s.uploadId, PartNumber: n, CopySource: this.copySource(s.tail!.key) }),
          ),
        );
        parts.push({ n, etag: r.CopyPartResult?.ETag ?? '', size: s.tail.size });
      }
      try {
        await this.completeMultipart(dataKey, s.uploadId, parts);
      } catch (e) {
        // A finish cut off after this step already completed the upload: carry on from there.
        if (!(isNamed(e, 'NoSuchUpload') && (await this.objectSize(dataKey)) === size)) throw e;
      }
      await this.commitCopy(dataKey, key, size, digest, hook);
    }
    await this.removeSession(id);
  }

  async abortUpload(id: string, state: UploadState): Promise<void> {
    const prefix = this.sessionPrefix(id);
    const s = Array.isArray(state.parts) ? sessionState(id, state) : undefined;
    if (s?.uploadId) await this.abortMultipart(`${prefix}data`, s.uploadId);
    if (s?.tail) await this.deleteObject(s.tail.key);
    await this.removeSession(id);
  }

  async *listUploads(): AsyncIterable<{ id: string; modified: number }> {
    const root = `${this.prefix}uploads/`;
    const latest = new Map<string, number>();
    const seen = (key: string, when: Date | undefined): void => {
      const id = key.slice(root.length).split('/')[0] ?? '';
      if (!isUploadId(id)) return;
      latest.set(id, Math.max(latest.get(id) ?? 0, when?.getTime() ?? 0));
    };
    for await (const { key, modified } of this.listObjects(root)) seen(key, modified);
    for await (const { key, uploadId, initiated } of this.listMultipart(root)) {
      seen(key, initiated);
      // A running session's upload was initiated long ago; its last part says when it was written.
      let marker: string | undefined;
      do {
        const r = await this.call('ListParts', () =>
          this.client.send(new ListPartsCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, ...(marker ? { PartNumberMarker: marker } : {}) })),
        );
        for (const p of r.Parts ?? []) seen(key, p.LastModified);
        marker = r.IsTruncated ? r.NextPartNumberMarker : undefined;
      } while (marker);
    }
    for (const [id, modified] of latest) yield { id, modified };
  }

  // ---- pieces ----

  private blobKey(digest: string): string {
    const { algorithm, encoded } = parseDigest(digest);
    return `${this.prefix}blobs/${algorithm}/${encoded.slice(0, 2)}/${encoded}`;
  }

  private sessionPrefix(id: string): string {
    if (!isUploadId(id)) throw new Error(`not an upload id: ${id}`);
    return `${this.prefix}uploads/${id}/`;
  }

  private async commit(digest: string, size: number, guardHeld: boolean, place: () => Promise<void>, hook: CommitHook = {}): Promise<void> {
    const placeThenHook = async (): Promise<void> => {
      await place();
      await hook.afterCommit?.(size);
    };
    if (this.guard && !guardHeld) await this.guard.committing(digest, size, placeThenHook);
    else await placeThenHook();
  }

  /**
   * Copies a completed session object to the blob key inside the commit guard. Above maxCopySize
   * the parts are copied first, into a multipart upload that stays invisible until completed.
   */
  private async commitCopy(from: string, to: string, size: number, digest: string, hook: CommitHook): Promise<void> {
    if (size <= this.maxCopySize) {
      await this.commit(digest, size, false, async () => {
        if ((await this.objectSize(to)) === undefined) await this.copyObject(from, to, size);
      }, hook);
      return;
    }
    const uploadId = await this.createMultipart(to);
    let done = false;
    try {
      const partSize = Math.max(MIN_PART, Math.ceil(size / MAX_PARTS), Math.min(this.maxCopySize, 1024 * MiB));
      const count = Math.ceil(size / partSize);
      const parts: Part[] = new Array(count);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < count) {
          const i = next++;
          const start = i * partSize;
          const end = Math.min(size, start + partSize) - 1;
          const r = await this.call('UploadPartCopy', () =>
            this.client.send(
              new UploadPartCopyCommand({ Bucket: this.bucket, Key: to, UploadId: uploadId, PartNumber: i + 1, CopySource: this.copySource(from), CopySourceRange: `bytes=${start}-${end}` }),
            ),
          );
          parts[i] = { n: i + 1, etag: r.CopyPartResult?.ETag ?? '', size: end - start + 1 };
        }
      };
      await Promise.all(Array.from({ length: Math.min(COPIES_IN_FLIGHT, count) }, worker));
      await this.commit(digest, size, false, async () => {
        if ((await this.objectSize(to)) === undefined) await this.completeMultipart(to, uploadId, parts, true);
        else await this.abortMultipart(to, uploadId);
      }, hook);
      done = true;
    } finally {
      if (!done) await this.abortMultipart(to, uploadId).catch(() => undefined);
    }
  }

  /** Removes everything stored for session `id`: multipart uploads and objects under its prefix. */
  private async removeSession(id: string): Promise<void> {
    const prefix = this.sessionPrefix(id);
    for await (const { key, uploadId } of this.listMultipart(prefix)) await this.abortMultipart(key, uploadId);
    for await (const { key } of this.listObjects(prefix)) await this.deleteObject(key);
  }

  private copySource(key: string): string {
    return `${this.bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
  }

  private async copyObject(from: string, to: string, size: number): Promise<void> {
    if (size > this.maxCopySize) throw new Error(`copy of ${size} bytes above the CopyObject limit`);
    await this.call('CopyObject', () => this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: to, CopySource: this.copySource(from) })));
  }

  private async objectSize(key: string): Promise<number | undefined> {
    try {
      const r = await this.call('HeadObject', () => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key })));
      return r.ContentLength ?? 0;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  private async getObject(key: string, range?: ByteRange): Promise<Readable> {
    const r = await this.call('GetObject', () =>
      this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) })),
    );
    return r.Body as Readable;
  }

  /** With `once`, an existing object is kept (If-None-Match: *): blob keys are written once. */
  private async putObject(key: string, body: Buffer, once: boolean): Promise<void> {
    try {
      await this.call('PutObject', () =>
        this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: body.length, ...(once ? { IfNoneMatch: '*' } : {}) })),
      );
    } catch (e) {
      if (!(once && statusOf(e) === 412)) throw e;
    }
  }

  private async deleteObject(key: string): Promise<void> {
    await this.call('DeleteObject', () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })));
  }

  private async createMultipart(key: string): Promise<string> {
    const r = await this.call('CreateMultipartUpload', () => this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key })));
    if (!r.UploadId) throw new Error(`S3 CreateMultipartUpload for ${key} returned no upload id`);
    return r.UploadId;
  }

  private async uploadPart(key: string, uploadId: string, n: number, body: Buffer): Promise<Part> {
    if (n > MAX_PARTS) throw new RegistryError('SIZE_INVALID', `blob exceeds ${MAX_PARTS} parts of the S3 part size`, { status: 413 });
    const r = await this.call('UploadPart', () =>
      this.client.send(new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: n, Body: body, ContentLength: body.length })),
    );
    return { n, etag: r.ETag ?? '', size: body.length };
  }

  /**
   * With `once`, an existing object is kept (If-None-Match: *, honoured by AWS; radosgw 16 ignores
   * it on this request, where the HeadObject before it is what keeps an existing blob) and the
   * multipart upload is dropped.
   */
  private async completeMultipart(key: string, uploadId: string, parts: Part[], once = false): Promise<void> {
    try {
      await this.call('CompleteMultipartUpload', () =>
        this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key: key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.n, ETag: p.etag })) },
            ...(once ? { IfNoneMatch: '*' } : {}),
          }),
        ),
      );
    } catch (e) {
      if (!(once && statusOf(e) === 412)) throw e;
      await this.abortMultipart(key, uploadId);
    }
  }

  private async abortMultipart(key: string, uploadId: string): Promise<void> {
    try {
      await this.call('AbortMultipartUpload', () => this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId })));
    } catch (e) {
      if (!isNamed(e, 'NoSuchUpload') && !isNotFound(e)) throw e;
    }
  }

  private async *listObjects(prefix: string): AsyncIterable<{ key: string; modified: Date | undefined }> {
    let token: string | undefined;
    do {
      const r = await this.call('ListObjectsV2', () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) })),
      );
      for (const o of r.Contents ?? []) if (o.Key) yield { key: o.Key, modified: o.LastModified };
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
  }

  private async *listMultipart(prefix: string): AsyncIterable<{ key: string; uploadId: string; initiated: Date | undefined }> {
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    do {
      const r = await this.call('ListMultipartUploads', () =>
        this.client.send(
          new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix, ...(keyMarker ? { KeyMarker: keyMarker } : {}), ...(idMarker ? { UploadIdMarker: idMarker } : {}) }),
        ),
      );
      for (const u of r.Uploads ?? []) if (u.Key && u.UploadId) yield { key: u.Key, uploadId: u.UploadId, initiated: u.Initiated };
      keyMarker = r.IsTruncated ? r.NextKeyMarker : undefined;
      idMarker = r.IsTruncated ? r.NextUploadIdMarker : undefined;
    } while (keyMarker);
  }

  /** One S3 request; an unreachable endpoint or a 5xx becomes StorageUnavailableError (503). */
  private async call<T>(what: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (e) {
      const code = networkCode(e);
      if (code) throw new StorageUnavailableError(`S3 endpoint ${this.endpointName} unreachable: ${code} (${what})`);
      const status = statusOf(e);
      if (status !== undefined && status >= 500) throw new StorageUnavailableError(`S3 ${what} failed: ${(e as Error).name} (HTTP ${status})`);
      throw e;
    }
  }

  /** One line for a bucket that cannot be used as configured. */
  private configError(e: unknown): Error {
    const where = `bucket ${this.bucket} at ${this.endpointName}`;
    const code = networkCode(e);
    if (code) return new StorageConfigError(`S3 endpoint ${this.endpointName} unreachable: ${code}`);
    const status = statusOf(e);
    const name = (e as Error).name;
    if (status === 404 || name === 'NotFound' || name === 'NoSuchBucket') return new StorageConfigError(`S3 bucket ${this.bucket} does not exist at ${this.endpointName}`);
    if (status === 403 || name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || name === 'Forbidden') {
      return new StorageConfigError(`S3 refused the credentials for ${where} (HTTP ${status ?? '?'} ${name}): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`);
    }
    if (name === 'CredentialsProviderError') return new StorageConfigError(`S3 credentials missing for ${where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`);
    if (status === 301) return new StorageConfigError(`S3 ${where} is not in region ${String(this.client.config.region)}`);
    return new StorageConfigError(`S3 ${where} cannot be used: ${name}${status ? ` (HTTP ${status})` : ''}: ${(e as Error).message}`.split('\n')[0]!);
  }
}

/**
 * Cuts a byte stream into parts of `partSize` for one multipart upload, numbered from `first`.
 * Bytes are copied into part buffers that are reused once their part is stored: one filling, at
 * most PARTS_IN_FLIGHT on the wire; the producer waits for a free one (backpressure), so a put or
 * append holds PARTS_IN_FLIGHT + 1 part buffers whatever the blob size.
 */
class PartWriter {
  private fill: Buffer | undefined;
  private filled = 0;
  private readonly free: Buffer[] = [];
  private next: number;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly done: Part[] = [];
  private failure: unknown;

  constructor(
    private readonly partSize: number,
    first: number,
    private readonly upload: (n: number, body: Buffer) => Promise<Part>,
  ) {
    this.next = first;
  }

  async write(chunk: Uint8Array): Promise<void> {
    for (let at = 0; at < chunk.length; ) {
      this.fill ??= this.free.pop() ?? Buffer.allocUnsafe(this.partSize);
      const n = Math.min(chunk.length - at, this.partSize - this.filled);
      this.fill.set(chunk.subarray(at, at + n), this.filled);
      this.filled += n;
      at += n;
      if (this.filled === this.partSize) await this.send();
    }
  }

  /** Sends what is buffered as the upload's last part (any size). */
  async writeLast(): Promise<void> {
    if (this.filled > 0) await this.send();
  }

  /** The buffered bytes that do not fill a part (valid until the next write). */
  rest(): Buffer {
    return this.fill ? this.fill.subarray(0, this.filled) : Buffer.alloc(0);
  }

  /** Waits for every part; throws the first failure. Returns the parts sent, in order. */
  async finish(): Promise<Part[]> {
    await this.settle();
    if (this.failure !== undefined) throw this.failure;
    return this.done.sort((a, b) => a.n - b.n);
  }

  /** Waits for the parts on the wire, whatever their outcome. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  private async send(): Promise<void> {
    const buffer = this.fill!;
    const body = buffer.subarray(0, this.filled);
    this.fill = undefined;
    this.filled = 0;
    const n = this.next++;
    while (this.inFlight.size >= PARTS_IN_FLIGHT) await Promise.race(this.inFlight);
    if (this.failure !== undefined) throw this.failure;
    const sending: Promise<void> = this.upload(n, body).then(
      (part) => {
        this.done.push(part);
        this.free.push(buffer);
      },
      (e: unknown) => {
        this.failure ??= e;
      },
    );
    this.inFlight.add(sending);
    void sending.finally(() => this.inFlight.delete(sending));
  }
}

async function* chunksOf(source: ByteSource): AsyncIterable<Uint8Array> {
  for await (const raw of source as AsyncIterable<Uint8Array | string>) yield typeof raw === 'string' ? Buffer.from(raw) : raw;
}

function sessionState(id: string, state: UploadState): SessionState {
  const s = state as Partial<SessionState>;
  const ok =
    Array.isArray(s.parts) &&
    s.parts.every((p) => Number.isSafeInteger(p?.n) && typeof p.etag === 'string' && Number.isSafeInteger(p.size)) &&
    (s.uploadId === undefined || typeof s.uploadId === 'string') &&
    (s.tail === undefined || (typeof s.tail.key === 'string' && s.tail.key.includes(`uploads/${id}/`) && Number.isSafeInteger(s.tail.size)));
  if (!ok) throw new Error(`upload ${id}: its driver state is not an s3 session state`);
  return s as SessionState;
}

function sizeOf(s: SessionState): number {
  return s.parts.reduce((sum, p) => sum + p.size, 0) + (s.tail?.size ?? 0);
}

function statusOf(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

function isNamed(e: unknown, name: string): boolean {
  return (e as Error)?.name === name || (e as { Code?: string })?.Code === name;
}

function isNotFound(e: unknown): boolean {
  return statusOf(e) === 404 || isNamed(e, 'NotFound') || isNamed(e, 'NoSuchKey');
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED']);

/** The network failure behind an SDK error (Node's happy-eyeballs AggregateError included), if any. */
function networkCode(e: unknown): string | undefined {
  const seen = new Set<unknown>();
  const visit = (x: unknown): string | undefined => {
    if (!x || typeof x !== 'object' || seen.has(x)) return undefined;
    seen.add(x);
    const code = (x as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
    if ((x as Error).name === 'TimeoutError') return 'ETIMEDOUT';
    for (const inner of [(x as { cause?: unknown }).cause, ...((x as { errors?: unknown[] }).errors ?? [])]) {
      const c = visit(inner);
      if (c) return c;
    }
    return undefined;
  };
  return visit(e);
}
