// GET /v2/ (distribution-spec/spec.md#determining-support) and GET /v2/_catalog.
import type Router from '@koa/router';
import type { RegistryState } from '../context.js';
import { pageParams, setNextLink } from '../pagination.js';

const CATALOG_DEFAULT_N = 1000;
const CATALOG_MAX_N = 10_000;

export function registerBase(router: Router<RegistryState>): void {
  router.get('/v2/', (ctx) => {
    ctx.body = {};
  });

  // docker-registry-api/api.md#catalog: a page costs O(page): repositories are one key range.
  router.get('/v2/_catalog', async (ctx) => {
    const { n, last } = pageParams(ctx, CATALOG_DEFAULT_N, CATALOG_MAX_N);
    const page = await ctx.state.store.listRepositories(n, last);
    setNextLink(ctx, '/v2/_catalog', n, page);
    ctx.body = { repositories: page.items };
  });
}
