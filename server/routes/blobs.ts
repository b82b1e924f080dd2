// /v2/<name>/blobs/<digest>: GET (with Range), HEAD, DELETE
// (distribution-spec/spec.md#pulling-blobs, #deleting-blobs).
import type Router from '@koa/router';
import { respondEmpty, type RegistryContext, type RegistryState } from '../context.js';
import { parseRangeHeader } from '../http-range.js';
import { sendFileRange, sendStream } from '../blob-response.js';
import { requireDeleteEnabled } from './delete-policy.js';

async function blobHeaders(ctx: RegistryContext): Promise<{ name: string; digest: string; size: number }> {
  const { name, digest } = ctx.params as { name: string; digest: string };
  const size = await ctx.state.store.statBlob(name, digest);
  ctx.status = 200;
  ctx.set('Docker-Content-Digest', digest);
  ctx.set('ETag', `"${digest}"`);
  ctx.set('Accept-Ranges', 'bytes');
  ctx.set('Cache-Control', 'max-age=31536000');
  ctx.type = 'application/octet-stream';
  // distribution sends a pull event for GET and HEAD alike; queued off the answer's path.
  if (ctx.state.notifier?.wants('pull')) void ctx.state.notifier.record(ctx, 'pull', [{ repository: name, kind: 'blob', mediaType: 'application/octet-stream', digest, size }]);
  return { name, digest, size };
}

export function registerBlobs(router: Router<RegistryState>): void {
  router.head('/v2/*name/blobs/:digest', async (ctx) => {
    const { size } = await blobHeaders(ctx);
    ctx.set('Content-Length', String(size));
  });

  router.get('/v2/*name/blobs/:digest', async (ctx) => {
    const { digest, size } = await blobHeaders(ctx);
    const storage = ctx.state.config.storage;
    const driver = ctx.state.store.blobs;
    // S3: a pre-signed URL the client fetches itself (distribution's default), unless
    // --no-s3-redirect asks for the bytes through the registry. The client resends Range there.
    if (storage.driver === 's3' && storage.redirect && driver.redirectUrl) {
      const url = await driver.redirectUrl(digest, 20 * 60);
      if (url) {
        ctx.status = 307;
        ctx.set('Location', url);
        ctx.body = '';
        return;
      }
    }
    const range = parseRangeHeader(ctx.get('Range') || undefined, size);
    if (range === 'unsatisfiable') {
      ctx.status = 416;
      ctx.set('Content-Range', `bytes */${size}`);
      ctx.body = '';
      return;
    }
    const partial = range && !(range.start === 0 && range.end === size - 1) ? range : undefined;
    if (partial) {
      ctx.status = 206;
      ctx.set('Content-Range', `bytes ${partial.start}-${partial.end}/${size}`);
    }
    if (size === 0) {
      ctx.body = Buffer.alloc(0);
      return;
    }
    const { start, end } = partial ?? { start: 0, end: size - 1 };
    ctx.length = end - start + 1;
    const path = driver.localPath?.(digest);
    if (path) {
      // Koa's stream body costs a buffer allocation per read: see blob-response.ts.
      ctx.respond = false;
      await sendFileRange(ctx.res, path, start, end);
      return;
    }
    const source = await driver.read(digest, { start, end });
    ctx.respond = false;
    await sendStream(ctx.res, source);
  });

  router.delete('/v2/*name/blobs/:digest', async (ctx) => {
    requireDeleteEnabled(ctx);
    const { name, digest } = ctx.params as { name: string; digest: string };
    await ctx.state.store.unlinkBlob(name, digest);
    await ctx.state.notifier?.record(ctx, 'delete', [{ repository: name, digest }]);
    respondEmpty(ctx, 202);
  });
}
