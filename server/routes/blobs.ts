// /v2/<name>/blobs/<digest>: GET (with Range), HEAD, DELETE
// (distribution-spec/spec.md#pulling-blobs, #deleting-blobs).
import type Router from '@koa/router';
import { respondEmpty, type RegistryContext, type RegistryState } from '../context.js';
import { parseRangeHeader } from '../http-range.js';
import { sendFileRange } from '../blob-response.js';
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
  return { name, digest, size };
}

export function registerBlobs(router: Router<RegistryState>): void {
  router.head('/v2/*name/blobs/:digest', async (ctx) => {
    const { size } = await blobHeaders(ctx);
    ctx.set('Content-Length', String(size));
  });

  router.get('/v2/*name/blobs/:digest', async (ctx) => {
    const { digest, size } = await blobHeaders(ctx);
    const range = parseRangeHeader(ctx.get('Range') || undefined, size);
    if (range === 'unsatisfiable') {
      ctx.status = 416;
      ctx.set('Content-Range', `bytes */${size}`);
      ctx.body = '';
      return;
    }
    if (range && !(range.start === 0 && range.end === size - 1)) {
      ctx.status = 206;
      ctx.set('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
      ctx.length = range.end - range.start + 1;
      ctx.respond = false;
      await sendFileRange(ctx.res, ctx.state.store.layout.blobPath(digest), range.start, range.end);
      return;
    }
    if (size === 0) {
      ctx.body = Buffer.alloc(0);
      return;
    }
    ctx.length = size;
    // Koa's stream body costs a buffer allocation per read: see blob-response.ts.
    ctx.respond = false;
    await sendFileRange(ctx.res, ctx.state.store.layout.blobPath(digest), 0, size - 1);
  });

  router.delete('/v2/*name/blobs/:digest', async (ctx) => {
    requireDeleteEnabled(ctx);
    const { name, digest } = ctx.params as { name: string; digest: string };
    await ctx.state.store.unlinkBlob(name, digest);
    respondEmpty(ctx, 202);
  });
}
