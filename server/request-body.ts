import type { RegistryContext } from './context.js';
import { RegistryError } from '../oci/errors.js';

/** Reads a small request body (a manifest) whole, refusing it past `limit` bytes before buffering more. */
export async function readBoundedBody(ctx: RegistryContext, limit: number, tooLarge: (limit: number) => RegistryError): Promise<Buffer> {
  const declared = ctx.get('Content-Length');
  if (declared && Number(declared) > limit) {
    ctx.req.resume();
    throw tooLarge(limit);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of ctx.req) {
    total += (chunk as Buffer).length;
    if (total > limit) {
      ctx.req.resume();
      throw tooLarge(limit);
    }
    chunks.push(chunk as Buffer);
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
