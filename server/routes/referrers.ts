// GET /v2/<name>/referrers/<digest> (distribution-spec/spec.md#listing-referrers).
import type Router from '@koa/router';
import type { RegistryState } from '../context.js';
import { MediaType } from '../../oci/media-types.js';

export function registerReferrers(router: Router<RegistryState>): void {
  router.get('/v2/*name/referrers/:digest', async (ctx) => {
    const artifactType = typeof ctx.query.artifactType === 'string' && ctx.query.artifactType !== '' ? ctx.query.artifactType : undefined;
    const manifests = await ctx.state.store.referrers(ctx.params.name!, ctx.params.digest!, artifactType);
    if (artifactType) ctx.set('OCI-Filters-Applied', 'artifactType');
    ctx.type = MediaType.OciIndex;
    ctx.body = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests });
  });
}
