// Image references as docker writes them (distribution/reference's grammar): `busybox`,
// `ns/app:1.0`, `host:5000/team/app@sha256:…`. Only this module knows Docker Hub's defaults
// (`docker.io`, `library/`, `latest`), so the client and the runtime normalise the same way.
import { parseDigest } from './digest.js';
import { isValidRepositoryName, isValidTag } from './names.js';

export const DOCKER_HUB = 'docker.io';
/** The host that serves Docker Hub's Distribution API (docker.io itself only redirects). */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
/** The host of Docker Hub's index, which serves docker's search (/v1/search). */
export const DOCKER_HUB_INDEX_HOST = 'index.docker.io';
export const DEFAULT_TAG = 'latest';

export class ReferenceError extends Error {
  constructor(input: string, why: string) {
    super(`invalid reference ${JSON.stringify(input.slice(0, 300))}: ${why}`);
    this.name = 'ReferenceError';
  }
}

export interface ImageReference {
  /** Normalised registry host[:port]: `docker.io`, `127.0.0.1:5000`, `[::1]:5000`. */
  registry: string;
  /** Repository path within the registry: `library/busybox`, `team/app`. */
  repository: string;
  tag?: string;
  digest?: string;
}

// A domain component (RFC 1123 label), an IPv6 literal in brackets, then an optional port.
const DOMAIN_RE = /^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$/;
/** docker caps the whole name (domain + '/' + path) at 255 characters. */
const MAX_FULL_NAME = 255;

export function isValidRegistryHost(host: string): boolean {
  return DOMAIN_RE.test(host);
}

/** Splits off the domain as docker does: the first component is a host when it has '.' or ':', or is `localhost`. */
function splitDomain(name: string): { registry: string; path: string } {
  const slash = name.indexOf('/');
  const first = slash < 0 ? '' : name.slice(0, slash);
  if (slash < 0 || !(first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase())) {
    return { registry: DOCKER_HUB, path: name };
  }
  return { registry: first, path: name.slice(slash + 1) };
}

/**
 * Parses and normalises a reference. Without tag or digest the tag is `latest` unless
 * `defaultTag` is false. Throws ReferenceError with the reason.
 */
export function parseReference(input: string, opts: { defaultTag?: boolean } = {}): ImageReference {
  const s = input.trim();
  if (s === '') throw new ReferenceError(input, 'empty reference');
  if (s.length > 1024) throw new ReferenceError(input, 'too long');
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    try {
      parseDigest(digest);
    } catch (e) {
      throw new ReferenceError(input, (e as Error).message);
    }
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isValidTag(tag)) throw new ReferenceError(input, 'tag must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}');
  }
  let { registry, path } = splitDomain(rest);
  if (!isValidRegistryHost(registry)) throw new ReferenceError(input, `invalid registry host ${JSON.stringify(registry)}`);
  registry = registry.toLowerCase();
  if (registry === 'index.docker.io' || registry === DOCKER_HUB_API_HOST) registry = DOCKER_HUB;
  if (path !== path.toLowerCase()) throw new ReferenceError(input, 'repository name must be lowercase');
  if (registry === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;
  if (!isValidRepositoryName(path)) throw new ReferenceError(input, 'repository name must match [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/…)*');
  if (registry.length + 1 + path.length > MAX_FULL_NAME) throw new ReferenceError(input, `name longer than ${MAX_FULL_NAME} characters`);
  if (tag === undefined && digest === undefined && opts.defaultTag !== false) tag = DEFAULT_TAG;
  const ref: ImageReference = { registry, repository: path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** `registry/repository` fully qualified: `docker.io/library/busybox`. */
export function repositoryName(ref: Pick<ImageReference, 'registry' | 'repository'>): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The repository as docker shows it: `busybox`, `ns/app`, `127.0.0.1:5000/team/app`. */
export function familiarRepository(ref: Pick<ImageReference, 'registry' | 'repository'>): string {
  if (ref.registry !== DOCKER_HUB) return repositoryName(ref);
  return ref.repository.startsWith('library/') && ref.repository.split('/').length === 2 ? ref.repository.slice('library/'.length) : ref.repository;
}

/** Fully qualified string: `docker.io/library/busybox:latest`, `host/app@sha256:…`. */
export function formatReference(ref: ImageReference): string {
  return `${repositoryName(ref)}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** Short form as docker prints it: `busybox:latest`. */
export function familiarReference(ref: ImageReference): string {
  return `${familiarRepository(ref)}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** Registry host[:port] without brackets handling: the hostname part, for address checks. */
export function registryHostname(registry: string): string {
  if (registry.startsWith('[')) return registry.slice(1, registry.indexOf(']'));
  const colon = registry.lastIndexOf(':');
  return colon >= 0 ? registry.slice(0, colon) : registry;
}
