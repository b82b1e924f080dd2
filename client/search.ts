// docker's search protocol as a client speaks it (moby registry/search.go, search_session.go): the
// term `[REGISTRY/]TERM` names Docker Hub unless its first segment looks like a host, and the
// registry answers GET /v1/search?q=TERM&n=LIMIT with SearchResults JSON. Registries that
// implement only the Distribution API (distribution, zot, Harbor's core) answer 404 there.
import { DOCKER_HUB, DOCKER_HUB_API_HOST, DOCKER_HUB_INDEX_HOST, isValidRegistryHost } from '../oci/reference.js';
import { RegistryError } from '../oci/errors.js';
import type { Transport } from './transport/registry-client.js';

/** docker refuses limits outside [1, 100] before it asks (search_session.go). */
export const MAX_LIMIT = 100;
export const DEFAULT_LIMIT = 25;

export interface SearchResult {
  name: string;
  description: string;
  star_count: number;
  is_official: boolean;
  is_automated: boolean;
}

export interface SearchResults {
  query: string;
  num_results: number;
  results: SearchResult[];
}

/** The registry cannot search (no /v1/search): the message is the one line a user reads. */
export class SearchUnsupportedError extends Error {
  constructor(readonly registry: string, status: number) {
    super(`${registry} does not offer search (GET /v1/search answered HTTP ${status}): it implements only the Distribution API; list its repositories with GET /v2/_catalog`);
    this.name = 'SearchUnsupportedError';
  }
}

/**
 * Splits `[REGISTRY/]TERM` as docker's splitReposSearchTerm does: the first segment is a registry
 * when it contains `.` or `:` or is `localhost`; otherwise the whole input is a term on Docker Hub.
 */
export function splitSearchTerm(input: string): { registry: string; term: string } {
  const slash = input.indexOf('/');
  const first = slash < 0 ? '' : input.slice(0, slash);
  if (slash < 0 || !(first.includes('.') || first.includes(':') || first === 'localhost')) return { registry: DOCKER_HUB, term: input };
  let registry = first.toLowerCase();
  if (!isValidRegistryHost(registry)) throw new Error(`invalid registry ${JSON.stringify(first)} in search term ${JSON.stringify(input)}`);
  if (registry === DOCKER_HUB_INDEX_HOST || registry === DOCKER_HUB_API_HOST) registry = DOCKER_HUB;
  return { registry, term: input.slice(slash + 1) };
}

function isResult(v: unknown): v is SearchResult {
  return typeof v === 'object' && v !== null && typeof (v as { name?: unknown }).name === 'string';
}

/** Searches `registry` for `term`; at most `limit` results, as the registry orders them. */
export async function searchRegistry(transport: Transport, registry: string, term: string, limit = DEFAULT_LIMIT): Promise<SearchResults> {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new Error(`limit ${limit} is outside the range [1, ${MAX_LIMIT}]`);
  if (term === '') throw new Error('a search term is required');
  // Docker Hub's search is served by its index host, not by the Distribution API host.
  const client = transport.client(registry === DOCKER_HUB ? DOCKER_HUB_INDEX_HOST : registry);
  const path = `/v1/search?${new URLSearchParams({ q: term, n: String(limit) }).toString()}`;
  // The scope docker asks a token service for (moby registry/search.go: catalog search).
  const res = await client.request({ path, scopes: ['registry:catalog:search'], ok: [200, 404, 405, 501], headers: { accept: 'application/json' } });
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new SearchUnsupportedError(registry, res.statusCode);
  }
  const text = await res.body.text();
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new RegistryError('UNKNOWN', `${registry}: /v1/search answered something other than JSON: ${JSON.stringify(text.slice(0, 80))}`);
  }
  const raw = (doc as { results?: unknown } | null)?.results;
  if (!Array.isArray(raw)) throw new RegistryError('UNKNOWN', `${registry}: /v1/search answered JSON without a results list`);
  const results = raw.filter(isResult).map((r) => ({
    name: r.name,
    description: typeof r.description === 'string' ? r.description : '',
    star_count: typeof r.star_count === 'number' ? r.star_count : 0,
    is_official: r.is_official === true,
    is_automated: r.is_automated === true,
  }));
  const total = (doc as { num_results?: unknown }).num_results;
  return { query: term, num_results: typeof total === 'number' ? total : results.length, results: results.slice(0, limit) };
}
