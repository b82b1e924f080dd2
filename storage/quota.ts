// Namespaces and their byte quotas. A repository belongs to the first configured namespace whose
// glob matches it, else to its first path segment (`team/app/api` → `team`). A namespace's usage
// is the size of every distinct digest some repository of it links (blob links and manifests),
// each counted once however many of its repositories link it; the metadata keeps it up to date
// with each link and unlink, in the same atomic step (storage/registry-metadata.ts).
import { RegistryError } from '../oci/errors.js';
import { repositoryGlob } from '../oci/names.js';

export interface NamespaceRule {
  /** A first path segment (`team`), or a glob of repository names (`ci/*\/cache`, `team/**`). */
  namespace: string;
  /** Bytes; absent: counted, not limited (unless `QuotaConfig.default` applies). */
  limit?: number;
}

export interface QuotaConfig {
  /** Limit of every namespace without a rule of its own; absent: unlimited. */
  default?: number;
  namespaces: NamespaceRule[];
}

/** How repositories group into namespaces: the part of the quota configuration the counters depend on. */
export class NamespaceScheme {
  private readonly globs: Array<{ name: string; re: RegExp }>;
  /** Changes when the grouping does: the counters are then recounted (storage/registry-metadata.ts). */
  readonly fingerprint: string;

  constructor(names: readonly string[] = []) {
    this.globs = names.filter(isGlobNamespace).map((name) => ({ name, re: repositoryGlob(name) }));
    this.fingerprint = JSON.stringify(['first-segment', ...this.globs.map((g) => g.name)]);
  }

  of(repository: string): string {
    for (const g of this.globs) if (g.re.test(repository)) return g.name;
    const slash = repository.indexOf('/');
    return slash < 0 ? repository : repository.slice(0, slash);
  }
}

/** A rule naming a glob (a wildcard or a `/`) rather than a first path segment. */
function isGlobNamespace(name: string): boolean {
  return /[*?/]/.test(name);
}

export class Quotas {
  readonly scheme: NamespaceScheme;
  private readonly limits = new Map<string, number | undefined>();
  private readonly defaultLimit: number | undefined;

  constructor(config: QuotaConfig = { namespaces: [] }) {
    this.scheme = new NamespaceScheme(config.namespaces.map((r) => r.namespace));
    for (const r of config.namespaces) if (!this.limits.has(r.namespace)) this.limits.set(r.namespace, r.limit);
    this.defaultLimit = config.default;
  }

  namespaceOf(repository: string): string {
    return this.scheme.of(repository);
  }

  /** Bytes `namespace` may hold, or undefined for no limit. */
  limitOf(namespace: string): number | undefined {
    return this.limits.has(namespace) ? (this.limits.get(namespace) ?? this.defaultLimit) : this.defaultLimit;
  }

  /** The limit that applies to a push into `repository`, if any. */
  limitFor(repository: string): number | undefined {
    return this.limitOf(this.namespaceOf(repository));
  }

  /** Namespaces named in the configuration (shown with zero usage before anything is pushed). */
  configured(): string[] {
    return [...this.limits.keys()];
  }
}

export interface NamespaceUsage {
  namespace: string;
  usedBytes: number;
  /** Absent: no limit. */
  limitBytes?: number;
}

/** A push that would take a namespace over its quota: DENIED (403), nothing linked. */
export class QuotaExceededError extends RegistryError {
  constructor(
    readonly namespace: string,
    readonly usedBytes: number,
    readonly limitBytes: number,
    readonly neededBytes: number,
  ) {
    super('DENIED', `quota exceeded for namespace "${namespace}": ${limitBytes} bytes (used ${formatBytes(usedBytes)} + ${formatBytes(neededBytes)})`, {
      detail: { namespace, usedBytes, limitBytes, neededBytes },
    });
  }
}

/** Checks an addition of `adding` bytes (content new to the namespace) against `limit`. */
export function assertWithinQuota(namespace: string, used: number, adding: number, limit: number | undefined): void {
  if (limit !== undefined && adding > 0 && used + adding > limit) throw new QuotaExceededError(namespace, used, limit, adding);
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  if (i === 0) return `${n} B`;
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i]}`;
}
