// What the access log and the metrics say about a request: its route pattern (a label of bounded
// cardinality: never a repository name, tag or digest), its repository, and its request id.
import { isValidRepositoryName } from '../oci/names.js';
import { randomHex } from '../storage/random-hex.js';

/**
 * A path's route pattern and repository, and a slot the metrics fill with the series the path's
 * last request was counted in (server/metrics/prometheus.ts): the next request of the path with the
 * same method and status is counted there without a lookup.
 */
export interface RouteInfo {
  readonly route: string;
  readonly repository: string | undefined;
  series: unknown;
}

// One regex for every /v2/<name>/... route: the name is everything before the last resource
// keyword, as the router's `*name` matches it.
const V2_NAMED = /^\/v2\/(.+)\/(?:(tags\/list)|(manifests)\/[^/]+|(blobs\/uploads)\/([^/]*)|(blobs)\/[^/]+|(referrers)\/[^/]+)$/;

// The routes of recent paths: a registry under load answers the same manifests and blobs again and
// again, and one Map lookup costs less than the two regular expressions. Bounded in entries and in
// path length, so unique or long paths cannot make it grow.
const recent = new Map<string, RouteInfo>();
const RECENT_ENTRIES = 4096;
const RECENT_PATH_CHARS = 256;

/** The route pattern of `path`, e.g. `/v2/{name}/blobs/{digest}`; `other` for anything unknown. */
export function routeOf(path: string): RouteInfo {
  let info = recent.get(path);
  if (info !== undefined) return info;
  info = parseRoute(path);
  if (path.length <= RECENT_PATH_CHARS) {
    if (recent.size >= RECENT_ENTRIES) recent.clear();
    recent.set(path, info);
  }
  return info;
}

/** Paths the route cache holds now (its test checks the bound). */
export function routeCacheSize(): number {
  return recent.size;
}

function parseRoute(path: string): RouteInfo {
  if (path === '/v2/' || path === '/v2') return info('/v2/');
  if (path === '/v2/_catalog') return info('/v2/_catalog');
  if (path === '/token') return info('/token');
  if (path === '/v1/search') return info('/v1/search');
  const m = V2_NAMED.exec(path);
  if (!m) return info('other');
  const name = m[1]!;
  let route: string;
  if (m[2]) route = '/v2/{name}/tags/list';
  else if (m[3]) route = '/v2/{name}/manifests/{reference}';
  else if (m[4]) route = m[5] ? '/v2/{name}/blobs/uploads/{id}' : '/v2/{name}/blobs/uploads/';
  else if (m[6]) route = '/v2/{name}/blobs/{digest}';
  else route = '/v2/{name}/referrers/{digest}';
  return info(route, isValidRepositoryName(name) ? name : undefined);
}

/** One object a path (its series slot is the path's own). */
function info(route: string, repository?: string): RouteInfo {
  return { route, repository, series: undefined };
}

/** The method as a label: the registry's methods, anything else `other`. */
export function methodLabel(method: string): string {
  switch (method) {
    case 'GET':
    case 'HEAD':
    case 'PUT':
    case 'POST':
    case 'PATCH':
    case 'DELETE':
    case 'OPTIONS':
      return method;
    default:
      return 'other';
  }
}

const WELL_FORMED_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The prefix of the request ids this process makes: `<prefix>-<number in base 36>`, the number
 * counted over the whole process (several apps in one process never repeat an id).
 */
export const REQUEST_ID_PREFIX = randomHex(4);
let requestCount = 0;

/** Whether a proxy's X-Request-Id is kept as the request's id. */
export function keepsRequestId(incoming: string): boolean {
  return incoming !== '' && WELL_FORMED_ID.test(incoming);
}

/** The number of the next request id this process makes (from 1). */
export function nextRequestNumber(): number {
  return ++requestCount;
}

/** The id of request number `n`: the access log writes it from `n` (server/access-log.ts) without reading this string. */
export function requestIdOf(n: number): string {
  return `${REQUEST_ID_PREFIX}-${n.toString(36)}`;
}
