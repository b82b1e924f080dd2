// /v2/<name>/manifests/<reference>: GET, HEAD, PUT, DELETE
// (distribution-spec/spec.md#pulling-manifests, #pushing-manifests, #deleting-manifests).
import type Router from '@koa/router';
import { respondEmpty, type RegistryContext, type RegistryState } from '../context.js';
import { RegistryError } from '../../oci/errors.js';
import { looksLikeDigest } from '../../oci/digest.js';
import { bareMediaType } from '../../oci/media-types.js';
import { parseManifest } from '../../oci/manifest.js';
import { readBoundedBody } from '../request-body.js';
import { requireDeleteEnabled } from './delete-policy.js';

/**
 * True when the client's Accept admits `mediaType`. No header, a wildcard or application/json
 * admit everything; content-negotiation.md's schema1 rewrites are not done: Berth never rewrites
 * a manifest, so a client that explicitly refuses the stored type gets MANIFEST_UNKNOWN, as the
 * reference registry answers for OCI content.
 */
function accepts(header: string | undefined, mediaType: string): boolean {
  if (!header) return true;
  for (const part of header.split(',')) {
    const t = bareMediaType(part);
    if (t === mediaType || t === '*/*' || t === 'application/*' || t === 'application/json' || t === '') return true;
  }
  return false;
}

async function fetchManifest(ctx: RegistryContext, withBytes: boolean) {
  const { name, reference } = ctx.params as { name: string; reference: string };
  const m = await ctx.state.store.getManifest(name, reference, { withBytes });
  if (!accepts(ctx.get('Accept') || undefined, m.mediaType)) {
    throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${reference} is of type ${m.mediaType}, which the Accept header does not include`);
  }
  ctx.status = 200;
  ctx.set('Docker-Content-Digest', m.digest);
  ctx.set('ETag', `"${m.digest}"`);
  ctx.type = m.mediaType;
  // distribution sends a pull event for GET and HEAD alike (its HEAD runs the GET handler);
  // queued off the answer's path.
  const notifier = ctx.state.notifier;
  if (notifier?.wants('pull')) {
    const references = notifier.includeReferences && withBytes ? referencesOf(m.bytes, m.mediaType) : undefined;
    void notifier.record(ctx, 'pull', [{ repository: name, kind: 'manifest', mediaType: m.mediaType, digest: m.digest, size: m.size, ...(looksLikeDigest(reference) ? {} : { tag: reference }), ...(references ? { references } : {}) }]);
  }
  return m;
}

function referencesOf(bytes: Buffer, mediaType: string) {
  try {
    const p = parseManifest(bytes, mediaType);
    return [...p.blobs, ...p.manifests];
  } catch {
    return undefined;
  }
}

export function registerManifests(router: Router<RegistryState>): void {
  router.get('/v2/*name/manifests/:reference', async (ctx) => {
    const m = await fetchManifest(ctx, true);
    ctx.body = m.bytes;
  });

  router.head('/v2/*name/manifests/:reference', async (ctx) => {
    const m = await fetchManifest(ctx, false);
    ctx.set('Content-Length', String(m.size));
  });

  router.put('/v2/*name/manifests/:reference', async (ctx) => {
    const { name, reference } = ctx.params as { name: string; reference: string };
    const limit = ctx.state.config.limits.maxManifestBytes;
    const bytes = await readBoundedBody(ctx, limit, (n) => new RegistryError('SIZE_INVALID', `manifest is larger than the limit of ${n} bytes`, { status: 413 }));
    const tagParams = ctx.query.tag === undefined ? [] : ([] as string[]).concat(ctx.query.tag);
    if (tagParams.length > 0 && !looksLikeDigest(reference)) {
      throw new RegistryError('TAG_INVALID', '?tag= may only be used when pushing by digest', { status: 400 });
    }
    const events = ctx.state.notifier?.wants('push') ? ctx.state.notifier.manifestPushEvents(ctx, name) : undefined;
    const result = await ctx.state.store.putManifest(name, reference, bytes, ctx.get('Content-Type') || undefined, tagParams, events ? { notifications: events.build } : {});
    events?.queued();
    respondEmpty(ctx, 201);
    ctx.set('Location', `/v2/${name}/manifests/${result.digest}`);
    ctx.set('Docker-Content-Digest', result.digest);
    if (result.subject) ctx.set('OCI-Subject', result.subject);
    if (tagParams.length > 0) ctx.set('OCI-Tag', tagParams.join(', '));
  });

  router.delete('/v2/*name/manifests/:reference', async (ctx) => {
    requireDeleteEnabled(ctx);
    const { name, reference } = ctx.params as { name: string; reference: string };
    if (!(await ctx.state.store.repositoryExists(name))) throw new RegistryError('NAME_UNKNOWN', `repository ${name} is not known to this registry`);
    if (looksLikeDigest(reference)) {
      const tags = await ctx.state.store.deleteManifest(name, reference);
      // As distribution: the manifest's delete event, then one per tag that went with it.
      await ctx.state.notifier?.record(ctx, 'delete', [{ repository: name, digest: reference }, ...tags.map((tag) => ({ repository: name, tag }))]);
    } else {
      await ctx.state.store.deleteTag(name, reference);
      await ctx.state.notifier?.record(ctx, 'delete', [{ repository: name, tag: reference }]);
    }
    respondEmpty(ctx, 202);
  });
}

