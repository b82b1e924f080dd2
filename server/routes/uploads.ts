// /v2/<name>/blobs/uploads/: POST (session, single-POST, mount), PATCH, PUT, GET, DELETE
// (distribution-spec/spec.md#pushing-blobs, #pushing-a-blob-in-chunks, #mounting-a-blob-from-another-repository).
import type Router from '@koa/router';
import { respondEmpty, type RegistryContext, type RegistryState } from '../context.js';
import { RegistryError } from '../../oci/errors.js';
import { isDigestAlgorithm, parseDigest } from '../../oci/digest.js';
import { assertRepositoryName } from '../../oci/names.js';
import type { UploadSession } from '../../storage/uploads.js';
import { parseContentRange } from '../http-range.js';
import { declaredLength, requestBody } from '../request-body.js';

function blobLimit(ctx: RegistryContext): number {
  return ctx.state.config.limits.maxBlobBytes || Number.POSITIVE_INFINITY;
}

function queryString(ctx: RegistryContext, key: string): string | undefined {
  const v = ctx.query[key];
  if (Array.isArray(v)) throw new RegistryError('BLOB_UPLOAD_INVALID', `query parameter ${key} may be given once`);
  return v === undefined || v === '' ? undefined : v;
}

function requireDigestParam(ctx: RegistryContext): string {
  const digest = queryString(ctx, 'digest');
  if (!digest) throw new RegistryError('DIGEST_INVALID', 'the digest query parameter is required to complete an upload');
  parseDigest(digest);
  return digest;
}

/** Headers of an upload still in progress: Location, Range (0-<last byte>), Docker-Upload-UUID. */
function sessionHeaders(ctx: RegistryContext, s: UploadSession): void {
  ctx.set('Location', `/v2/${s.name}/blobs/uploads/${s.id}`);
  ctx.set('Range', `0-${Math.max(0, s.offset - 1)}`);
  ctx.set('Docker-Upload-UUID', s.id);
}

/** distribution's blob descriptors carry this type: ignore lists drop blob events by it. */
const BLOB_TYPE = 'application/octet-stream';

/** A blob push or mount event, queued before the client is answered. */
function blobEvent(ctx: RegistryContext, action: 'push' | 'mount', name: string, digest: string, size: number, from?: string): Promise<void> {
  return ctx.state.notifier?.record(ctx, action, [{ repository: name, kind: 'blob', mediaType: BLOB_TYPE, digest, size, ...(from ? { fromRepository: from } : {}) }]) ?? Promise.resolve();
}

function blobCreated(ctx: RegistryContext, name: string, digest: string): void {
  respondEmpty(ctx, 201);
  ctx.set('Location', `/v2/${name}/blobs/${digest}`);
  ctx.set('Docker-Content-Digest', digest);
}

/** The request body as a chunk, unless it is empty. */
function hasBody(ctx: RegistryContext): boolean {
  const len = declaredLength(ctx);
  return len === undefined ? ctx.get('Transfer-Encoding') !== '' : len > 0;
}

export function registerUploads(router: Router<RegistryState>): void {
  router.post('/v2/*name/blobs/uploads/', async (ctx) => {
    const name = ctx.params.name!;
    const store = ctx.state.store;

    const mount = queryString(ctx, 'mount');
    if (mount) {
      parseDigest(mount);
      const from = queryString(ctx, 'from');
      if (from) assertRepositoryName(from);
      const size = await store.mountBlob(name, from, mount);
      if (size !== undefined) {
        await blobEvent(ctx, 'mount', name, mount, size, from);
        blobCreated(ctx, name, mount);
        return;
      }
      // Not mountable: a plain upload session instead (202), as the spec allows.
    }

    const digest = queryString(ctx, 'digest');
    if (digest && !mount) {
      // Single POST: the body is the whole blob (distribution-spec/spec.md#single-post).
      parseDigest(digest);
      const expectedSize = declaredLength(ctx);
      const limit = blobLimit(ctx);
      if (expectedSize !== undefined && expectedSize > limit) throw new RegistryError('SIZE_INVALID', `blob exceeds the upload limit of ${limit} bytes`, { status: 413 });
      const stored = await store.putBlob(name, requestBody(ctx), { digest, limit, ...(expectedSize !== undefined ? { size: expectedSize } : {}) });
      await blobEvent(ctx, 'push', name, stored.digest, stored.size);
      blobCreated(ctx, name, stored.digest);
      return;
    }

    const algorithm = queryString(ctx, 'digest-algorithm') ?? 'sha256';
    if (!isDigestAlgorithm(algorithm)) throw new RegistryError('DIGEST_INVALID', `unsupported digest-algorithm ${JSON.stringify(algorithm.slice(0, 40))}: use sha256 or sha512`);
    // A body on a POST that opens a session is not content (distribution ignores it), but it is
    // read to its end first: a body cut off or badly framed fails the request before a session
    // exists, rather than leaving one behind an answer of 400.
    if (!ctx.req.complete) for await (const _ of requestBody(ctx));
    const session = await store.uploads.create(name, algorithm);
    respondEmpty(ctx, 202);
    sessionHeaders(ctx, session);
  });

  router.get('/v2/*name/blobs/uploads/:id', async (ctx) => {
    const session = await ctx.state.store.uploads.get(ctx.params.id!, ctx.params.name!);
    respondEmpty(ctx, 204);
    sessionHeaders(ctx, session);
  });

  router.patch('/v2/*name/blobs/uploads/:id', async (ctx) => {
    const range = parseContentRange(ctx.get('Content-Range') || undefined);
    const len = declaredLength(ctx);
    if (range && len !== undefined && len !== range.end - range.start + 1) {
      throw new RegistryError('RANGE_INVALID', `Content-Range ${range.start}-${range.end} does not match Content-Length ${len}`);
    }
    const session = await ctx.state.store.uploads.append(ctx.params.id!, ctx.params.name!, requestBody(ctx), range, blobLimit(ctx));
    respondEmpty(ctx, 202);
    sessionHeaders(ctx, session);
  });

  router.put('/v2/*name/blobs/uploads/:id', async (ctx) => {
    const name = ctx.params.name!;
    const digest = requireDigestParam(ctx);
    const range = parseContentRange(ctx.get('Content-Range') || undefined);
    const final = hasBody(ctx) ? { source: requestBody(ctx), limit: blobLimit(ctx), ...(range ? { range } : {}) } : undefined;
    const stored = await ctx.state.store.uploads.complete(ctx.params.id!, name, digest, final);
    await blobEvent(ctx, 'push', name, stored.digest, stored.size);
    blobCreated(ctx, name, stored.digest);
  });

  router.delete('/v2/*name/blobs/uploads/:id', async (ctx) => {
    await ctx.state.store.uploads.cancel(ctx.params.id!, ctx.params.name!);
    respondEmpty(ctx, 204);
  });
}
