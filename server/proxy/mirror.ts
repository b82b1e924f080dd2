// Mirror mode (docker-registry-api/mirror.md): a pull-through cache in front of an upstream
// registry. It sits before the routes: it makes sure what a pull asks for is in the local store
// (fetching it on a miss) and lets the ordinary routes serve it; an uncached blob is streamed to
// every client that wants it from one shared download (blob-fetch.ts). Writes are refused.
import { Readable } from 'node:stream';
import type { Middleware } from 'koa';
import type { Logger } from 'pino';
import { RegistryError } from '../../oci/errors.js';
import { digestOf, looksLikeDigest, parseDigest } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import { isValidRepositoryName, isValidTag } from '../../oci/names.js';
import type { RegistryStore } from '../../storage/registry-store.js';
import type { RegistryContext, RegistryState } from '../context.js';
import type { ServerConfig } from '../config.js';
import { BlobFetches } from './blob-fetch.js';
import { CacheRecords } from './cache-records.js';
import { removeIfUntouched } from '../../storage/gc.js';
import type { ProxyConfig } from './config.js';
import type { MirrorHooks } from '../metrics/hooks.js';
import { Upstream, UpstreamUnavailable } from './upstream.js';

const MANIFEST_ACCEPT = [MediaType.OciManifest, MediaType.OciIndex, MediaType.DockerManifest, MediaType.DockerManifestList].join(', ');

export interface Mirror {
  middleware: Middleware<RegistryState>;
  /** Evicts what was not used for `evictAfterHours`. */
  maintain(): Promise<void>;
  maintainIntervalMs: number;
  close(): Promise<void>;
  /** Upstream blob downloads started so far. */
  readonly upstreamBlobFetches: number;
}

function unavailable(e: UpstreamUnavailable, what: string): RegistryError {
  return new RegistryError('UNKNOWN', `${what} is not cached and the upstream registry cannot be reached (${e.message})`, { status: 503 });
}

export async function evictUnused(store: RegistryStore, records: CacheRecords, cutoff: number, log?: Logger): Promise<{ manifests: number; blobs: number; files: number }> {
  const out = { manifests: 0, blobs: 0, files: 0 };
  const started = Date.now();
  const candidates = new Set<string>();
  for await (const r of records.unusedSince(cutoff)) {
    try {
      if (r.kind === 'manifest') {
        await store.deleteManifest(r.name, r.digest);
        out.manifests++;
      } else {
        await store.unlinkBlob(r.name, r.digest);
        out.blobs++;
      }
    } catch (e) {
      if (!(e instanceof RegistryError)) throw e; // already gone
    }
    candidates.add(r.digest);
    await records.forget(r.name, r.digest);
  }
  if (candidates.size > 0) {
    // Content still linked elsewhere (another repository, a kept manifest) stays.
    const point = await store.meta.markPoint();
    const live = await store.referencedDigests();
    for (const d of candidates) {
      // Under GC's guard: content linked again since eviction started (another repository
      // pulling it through) is kept.
      if (!live.has(d) && (await removeIfUntouched(store, d, started, point)) !== undefined) {
        out.files++;
      }
    }
    log?.info(out, 'mirror: evicted content unused since ' + new Date(cutoff).toISOString());
  }
  return out;
}

export async function createMirror(store: RegistryStore, config: ServerConfig, log: Logger, hooks?: MirrorHooks): Promise<Mirror> {
  const cfg = config.proxy as ProxyConfig;
  /** An upstream that cannot be reached: counted, then the 503 of `unavailable`. */
  const upstreamDown = (e: UpstreamUnavailable, what: string, kind: 'manifest' | 'blob'): RegistryError => {
    hooks?.upstreamError(kind);
    return unavailable(e, what);
  };
  const upstream = new Upstream(cfg, log);
  const fetches = new BlobFetches(store, upstream);
  const evictMs = cfg.evictAfterHours * 3_600_000;
  const records = new CacheRecords(store, evictMs > 0 ? evictMs : 3_600_000);
  const manifestFlights = new Map<string, Promise<string>>();

  /** Fetches a manifest from upstream and stores it (under `tag` too when given); returns its digest. */
  const fetchManifest = async (name: string, reference: string, tag: string | undefined): Promise<string> => {
    const res = await upstream.fetch('GET', name, `/v2/${name}/manifests/${reference}`, { accept: MANIFEST_ACCEPT });
    if (res.statusCode === 404) {
      await res.body.dump();
      throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${reference} is not in ${name} upstream`, { detail: { name, reference } });
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      if (res.statusCode >= 500) hooks?.upstreamError('manifest');
      throw new RegistryError('UNKNOWN', `upstream answered ${res.statusCode} for manifest ${reference}`, { status: 502 });
    }
    const limit = config.limits.maxManifestBytes;
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const c of res.body as AsyncIterable<Buffer>) {
      total += c.length;
      if (total > limit) {
        res.body.destroy();
        throw new RegistryError('MANIFEST_INVALID', `upstream manifest ${reference} exceeds ${limit} bytes`, { status: 502 });
      }
      chunks.push(c);
    }
    const bytes = Buffer.concat(chunks, total);
    const digest = looksLikeDigest(reference) ? reference : digestOf(bytes);
    if (looksLikeDigest(reference) && digestOf(bytes, parseDigest(reference).algorithm) !== reference) {
      throw new RegistryError('UNKNOWN', `upstream manifest content does not match ${reference}`, { status: 502 });
    }
    const contentType = typeof res.headers['content-type'] === 'string' ? res.headers['content-type'] : undefined;
    await store.putManifest(name, digest, bytes, contentType, tag ? [tag] : [], { requireReferences: false });
    await records.touch(name, digest, 'manifest');
    return digest;
  };

  /** Makes sure `reference` of `name` is in the store and current enough; returns the digest to serve. */
  const ensureManifest = async (name: string, reference: string): Promise<void> => {
    if (looksLikeDigest(reference)) {
      parseDigest(reference);
      if (await store.manifestLink(name, reference)) {
        hooks?.hit('manifest');
        return void (await records.touch(name, reference, 'manifest'));
      }
    } else {
      if (!isValidTag(reference)) return; // the route answers TAG_INVALID
      const local = await store.resolveTag(name, reference);
      const checked = await records.tagCheckedAt(name, reference);
      if (local && checked !== undefined && Date.now() - checked < cfg.tagTtlSeconds * 1000) {
        hooks?.hit('manifest');
        return void (await records.touch(name, local, 'manifest'));
      }
      try {
        // Revalidate with a HEAD: the manifest is downloaded again only when the tag moved.
        if (local) {
          const head = await upstream.fetch('HEAD', name, `/v2/${name}/manifests/${reference}`, { accept: MANIFEST_ACCEPT });
          await head.body.dump();
          if (head.statusCode === 200 && head.headers['docker-content-digest'] === local) {
            hooks?.hit('manifest');
            await records.tagChecked(name, reference);
            await records.touch(name, local, 'manifest');
            return;
          }
        }
      } catch (e) {
        if (e instanceof UpstreamUnavailable && local) {
          hooks?.upstreamError('manifest');
          log.warn({ repository: name, tag: reference, err: e.message }, 'mirror: upstream unreachable, serving the cached tag');
          return;
        }
        throw e instanceof UpstreamUnavailable ? upstreamDown(e, `${name}:${reference}`, 'manifest') : e;
      }
    }
    hooks?.miss('manifest');
    const key = `${name}@${reference}`;
    let flight = manifestFlights.get(key);
    if (!flight) {
      flight = fetchManifest(name, reference, looksLikeDigest(reference) ? undefined : reference).finally(() => manifestFlights.delete(key));
      manifestFlights.set(key, flight);
    }
    try {
      await flight;
      if (!looksLikeDigest(reference)) await records.tagChecked(name, reference);
    } catch (e) {
      if (e instanceof UpstreamUnavailable) {
        const local = looksLikeDigest(reference) ? undefined : await store.resolveTag(name, reference);
        if (local) {
          hooks?.upstreamError('manifest');
          log.warn({ repository: name, tag: reference, err: e.message }, 'mirror: upstream unreachable, serving the cached tag');
          return;
        }
        throw upstreamDown(e, `${name}:${reference}`, 'manifest');
      }
      throw e;
    }
  };

  /**
   * A blob cached for another repository (or stored by another replica): linked here once upstream
   * confirms this repository has it, so the mirror never opens one repository's content to another.
   */
  const linkCachedElsewhere = async (name: string, digest: string): Promise<boolean> => {
    try {
      const head = await upstream.fetch('HEAD', name, `/v2/${name}/blobs/${digest}`);
      await head.body.dump();
      if (head.statusCode !== 200) return false;
    } catch (e) {
      if (!(e instanceof UpstreamUnavailable)) throw e;
      throw upstreamDown(e, `blob ${digest}`, 'blob');
    }
    const size = await store.blobs.stat(digest);
    if (size === undefined) return false;
    await store.linkBlob(name, digest, size);
    await records.touch(name, digest, 'blob');
    return true;
  };

  const serveBlob = async (ctx: RegistryContext, name: string, digest: string, next: () => Promise<unknown>): Promise<unknown> => {
    if (await store.blobLink(name, digest)) {
      hooks?.hit('blob');
      await records.touch(name, digest, 'blob');
      return next();
    }
    let f = fetches.get(name, digest);
    if (f?.done) {
      // Finished between the check above and now: it is linked, unless evicted since.
      if (await store.blobLink(name, digest)) {
        hooks?.hit('blob');
        return next();
      }
      f = undefined;
    }
    hooks?.miss('blob');
    if (!f && (await store.hasBlob(digest))) {
      if (await linkCachedElsewhere(name, digest)) return next();
    }
    if (ctx.method === 'HEAD' && !f) {
      let head;
      try {
        head = await upstream.fetch('HEAD', name, `/v2/${name}/blobs/${digest}`);
      } catch (e) {
        throw e instanceof UpstreamUnavailable ? upstreamDown(e, `blob ${digest}`, 'blob') : e;
      }
      await head.body.dump();
      if (head.statusCode !== 200) throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} is not in ${name} upstream`, { detail: { digest } });
      ctx.status = 200;
      ctx.set('Docker-Content-Digest', digest);
      ctx.set('Content-Length', String(head.headers['content-length'] ?? ''));
      ctx.type = 'application/octet-stream';
      return;
    }
    f ??= fetches.join(name, digest);
    for (let attempt = 0; ; attempt++) {
      try {
        await f.ready;
      } catch (e) {
        // The download ended before this client came (a fast failure) or failed before any byte.
        if (e instanceof UpstreamUnavailable) throw upstreamDown(e, `blob ${digest}`, 'blob');
        throw e;
      }
      if (!f.elsewhere) break;
      // Another replica downloaded it meanwhile: serve what it stored; if it failed, try once here.
      if ((await store.blobLink(name, digest)) || (await linkCachedElsewhere(name, digest))) return next();
      if (attempt > 0) throw new RegistryError('UNAVAILABLE', `blob ${digest}: another replica's download of it did not complete; retry`);
      f = fetches.join(name, digest);
    }
    if (f.done) return next();
    ctx.status = 200;
    ctx.set('Docker-Content-Digest', digest);
    ctx.set('ETag', `"${digest}"`);
    ctx.type = 'application/octet-stream';
    if (f.size !== undefined) ctx.length = f.size;
    if (ctx.method === 'HEAD') return;
    // A Range on a blob still arriving is answered whole (200), as RFC 9110 allows.
    ctx.body = Readable.from(f.tail(), { objectMode: false });
    await records.touch(name, digest, 'blob');
  };

  const middleware: Middleware<RegistryState> = async (ctx, next) => {
    if (!ctx.path.startsWith('/v2/') || ctx.path === '/v2/') return next();
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      throw new RegistryError('UNSUPPORTED', `this registry is a pull-through cache of ${upstream.base}: push to the upstream registry`, { status: 405 });
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(ctx.path);
    if (!m || !isValidRepositoryName(m[1]!)) return next();
    const [, name, kind, ref] = m as unknown as [string, string, string, string];
    if (kind === 'manifests') {
      await ensureManifest(name, ref);
      return next();
    }
    parseDigest(ref);
    return serveBlob(ctx as RegistryContext, name, ref, next);
  };

  return {
    middleware,
    maintainIntervalMs: evictMs > 0 ? Math.min(3_600_000, Math.max(60_000, evictMs / 4)) : 3_600_000,
    async maintain() {
      if (evictMs > 0) await evictUnused(store, records, Date.now() - evictMs, log);
    },
    async close() {
      await upstream.close();
      await fetches.idle();
    },
    get upstreamBlobFetches() {
      return fetches.started;
    },
  };
}
