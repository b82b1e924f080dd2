// docker's search protocol, which the Docker engine still speaks to a registry for `docker search
// HOST/TERM` (moby registry/search_session.go): GET /v1/_ping (the engine's endpoint probe: any
// answer will do, HTTPS tried first, then HTTP for an insecure registry) and GET
// /v1/search?q=TERM&n=LIMIT[&page=P], answered with SearchResults JSON. Names containing the term,
// in byte order, only those the caller may pull.
import type Router from '@koa/router';
import { RegistryError } from '../../oci/errors.js';
import type { RegistryContext, RegistryState, Viewer } from '../context.js';
import { findRepositories, normaliseTerm } from '../repository-search.js';

/** docker's client refuses limits outside [1, 100] before it asks (search_session.go); 25 is its default. */
const DEFAULT_N = 25;
const MAX_N = 100;
const MAX_TERM = 255;

function intParam(ctx: RegistryContext, key: string, dflt: number, max: number): number {
  const raw = ctx.query[key];
  if (raw === undefined || raw === '') return dflt;
  if (typeof raw !== 'string' || !/^\d{1,9}$/.test(raw) || Number(raw) < 1) throw new RegistryError('PAGINATION_NUMBER_INVALID', `${key} must be a positive integer, got ${JSON.stringify(raw)}`);
  return Math.min(Number(raw), max);
}

export function registerSearch(router: Router<RegistryState>, viewerOf: (ctx: RegistryContext) => Promise<Viewer>): void {
  router.get('/v1/_ping', (ctx) => {
    ctx.set('X-Docker-Registry-Standalone', 'true');
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {};
  });

  router.get('/v1/search', async (ctx) => {
    const rawQ = ctx.query.q ?? '';
    if (typeof rawQ !== 'string') throw new RegistryError('UNSUPPORTED', 'q may be given once', { status: 400 });
    if (rawQ.length > MAX_TERM) throw new RegistryError('UNSUPPORTED', `q is longer than ${MAX_TERM} characters`, { status: 400 });
    const n = intParam(ctx, 'n', DEFAULT_N, MAX_N);
    const page = intParam(ctx, 'page', 1, 1_000_000);
    const viewer = await viewerOf(ctx);
    const term = normaliseTerm(rawQ);
    const found = await findRepositories(ctx.state.store.meta, term, { offset: (page - 1) * n, limit: n, canPull: viewer.canPull, pullPrefixes: viewer.pullPrefixes });
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      query: rawQ,
      num_results: found.total,
      num_pages: Math.ceil(found.total / n),
      page,
      page_size: n,
      results: found.names.map((name) => ({ name, description: '', star_count: 0, is_official: false, is_automated: false })),
    };
  });
}
