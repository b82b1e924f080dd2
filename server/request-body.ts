import type { RegistryContext } from './context.js';
import { RegistryError } from '../oci/errors.js';

/**
 * The request body as chunks, for every reader of a body: leaving the loop early (a limit, a
 * refused chunk, a failed write) does not destroy the request. A destroyed request is cut from its
 * socket, and its unread rest could no longer be drained within bounds by lingering-close.ts.
 */
export function requestBody(ctx: RegistryContext): AsyncIterable<Buffer> {
  return counted(ctx.req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>, ctx.state);
}

/** Adds what is read to `state.bodyBytes` (the access log's and the metrics' bytes in). */
async function* counted(source: AsyncIterable<Buffer>, state: RegistryContext['state']): AsyncIterable<Buffer> {
  for await (const chunk of source) {
    state.bodyBytes = (state.bodyBytes ?? 0) + chunk.length;
    yield chunk;
  }
}

/** Reads a small request body (a manifest, a form) whole, refusing it past `limit` bytes before buffering more. */
export async function readBoundedBody<E extends Error>(ctx: RegistryContext, limit: number, tooLarge: (limit: number) => E): Promise<Buffer> {
  const declared = ctx.get('Content-Length');
  if (declared && Number(declared) > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of requestBody(ctx)) {
    total += chunk.length;
    if (total > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

/** The declared body length, or undefined for a chunked body; garbage is SIZE_INVALID. */
export function declaredLength(ctx: RegistryContext): number | undefined {
  const raw = ctx.get('Content-Length');
  if (raw === '') return undefined;
  if (!/^\d+$/.test(raw)) throw new RegistryError('SIZE_INVALID', `invalid Content-Length ${JSON.stringify(raw.slice(0, 40))}`);
  return Number(raw);
}
