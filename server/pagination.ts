// `n`/`last` pagination with an RFC 5988 Link header (distribution-spec/spec.md#listing-tags).
import { RegistryError } from '../oci/errors.js';
import type { RegistryContext } from './context.js';
import type { Page } from '../storage/registry-store.js';

export function pageParams(ctx: RegistryContext, defaultN: number, maxN: number): { n: number; last?: string } {
  const rawN = ctx.query.n;
  const rawLast = ctx.query.last;
  let n = defaultN;
  if (rawN !== undefined) {
    if (typeof rawN !== 'string' || !/^\d{1,9}$/.test(rawN)) throw new RegistryError('PAGINATION_NUMBER_INVALID', `n must be a non-negative integer, got ${JSON.stringify(rawN)}`);
    n = Math.min(Number(rawN), maxN);
  }
  if (rawLast !== undefined && typeof rawLast !== 'string') throw new RegistryError('PAGINATION_NUMBER_INVALID', 'last may be given once');
  return rawLast ? { n, last: rawLast } : { n };
}

/** Sets `Link: <path?n=..&last=..>; rel="next"` when another page follows. */
export function setNextLink(ctx: RegistryContext, path: string, n: number, page: Page<string>): void {
  if (page.next === undefined) return;
  const qs = new URLSearchParams({ n: String(n), last: page.next });
  ctx.set('Link', `<${path}?${qs.toString()}>; rel="next"`);
}
