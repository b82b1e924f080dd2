// Resource scopes (docker-registry-api/scope.md): `repository:<name>:<actions>` and
// `registry:catalog:*`, and which scope each API request needs.
import { isValidRepositoryName } from '../../oci/names.js';

export interface ResourceScope {
  type: 'repository' | 'registry';
  name: string;
  actions: string[];
}

export function formatScope(s: ResourceScope): string {
  return `${s.type}:${s.name}:${s.actions.join(',')}`;
}

/**
 * Parses one scope; unknown resource types and malformed entries give undefined (the token
 * service ignores what it does not grant). The name may itself hold ':' (a host:port prefix),
 * so the type is split at the first colon and the actions at the last (scope.md#resource-scope-grammar).
 */
export function parseScope(s: string): ResourceScope | undefined {
  const first = s.indexOf(':');
  const last = s.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  // `repository(plugin)` carries a resource class, which does not change what is granted.
  const type = s.slice(0, first).replace(/\([a-z0-9]+\)$/, '');
  const name = s.slice(first + 1, last);
  const actions = s.slice(last + 1).split(',').filter((a) => a !== '');
  if (type === 'repository' && isValidRepositoryName(name)) return { type, name, actions };
  if (type === 'registry' && name === 'catalog') return { type, name, actions };
  return undefined;
}

/** A `scope` query value may list several scopes separated by spaces (token.md#requesting-a-token). */
export function parseScopes(values: string[]): ResourceScope[] {
  return values.flatMap((v) => v.split(' ')).map(parseScope).filter((s): s is ResourceScope => s !== undefined);
}

export interface RequiredAccess {
  /** Scopes the request needs; empty for `/v2/` (which needs an authenticated caller only). */
  scopes: ResourceScope[];
  /** A cross-repository mount source (`?from=`): pull on it is checked, and the mount dropped without. */
  mountFrom?: string;
  catalog?: boolean;
}

const repo = (name: string, ...actions: string[]): ResourceScope => ({ type: 'repository', name, actions });

/** The scope an API request needs, from its method and path (distribution-spec endpoint table). */
export function requiredAccess(method: string, path: string, query: Record<string, unknown>): RequiredAccess {
  if (path === '/v2/' || path === '/v2') return { scopes: [] };
  if (path === '/v2/_catalog') return { scopes: [{ type: 'registry', name: 'catalog', actions: ['*'] }], catalog: true };
  const m = /^\/v2\/(.+)\/(tags\/list|manifests\/[^/]+|blobs\/uploads\/?[^/]*|blobs\/[^/]+|referrers\/[^/]+)$/.exec(path);
  if (!m || !isValidRepositoryName(m[1]!)) return { scopes: [] };
  const name = m[1]!;
  const what = m[2]!;
  const read = method === 'GET' || method === 'HEAD';
  if (what.startsWith('blobs/uploads')) {
    // The reference registry asks pull and push for uploads: a pusher reads back its session.
    const from = typeof query.from === 'string' && isValidRepositoryName(query.from) ? query.from : undefined;
    return { scopes: [repo(name, 'pull', 'push')], ...(method === 'POST' && from && query.mount ? { mountFrom: from } : {}) };
  }
  if (read) return { scopes: [repo(name, 'pull')] };
  if (method === 'DELETE') return { scopes: [repo(name, 'delete')] };
  return { scopes: [repo(name, 'pull', 'push')] };
}
