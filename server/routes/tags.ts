// GET /v2/<name>/tags/list (distribution-spec/spec.md#listing-tags).
import type Router from '@koa/router';
import type { RegistryState } from '../context.js';
import { pageParams, setNextLink } from '../pagination.js';

const TAGS_DEFAULT_N = 10_000;
const TAGS_MAX_N = 100_000;

export function registerTags(router: Router<RegistryState>): void {
  router.get('/v2/*name/tags/list', async (ctx) => {
    const name = ctx.params.name!;
    const { n, last } = pageParams(ctx, TAGS_DEFAULT_N, TAGS_MAX_N);
    const page = await ctx.state.store.listTags(name, n, last);
    setNextLink(ctx, `/v2/${name}/tags/list`, n, page);
    ctx.body = { name, tags: page.items };
  });
}
