// The `quotas:` and `retention:` sections of the serve config file (docs/server.md#quotas,
// #retention): config file only, like `notifications:` (lists of rules do not fit a flag).
import { configMapping, configNumber, configString } from './config-values.js';
import type { QuotaConfig, NamespaceRule } from '../storage/quota.js';
import type { RetentionRule } from '../storage/retention.js';
import { repositoryGlob } from '../oci/names.js';

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Bytes: a number, or a string such as `100m`, `1.5GiB`, `500MB` (k, m, g, t are powers of 1024). */
export function parseSize(v: unknown, what: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return configNumber(v, what);
  const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(v.trim()) : null;
  if (!m) throw new Error(`${what} must be a size such as 104857600, 100m or 2GiB, got ${JSON.stringify(v)}`);
  return Math.floor(Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!);
}

const DURATION_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** Milliseconds from a number of seconds or a string such as `90s`, `30m`, `12h`, `7d`, `2w`. */
export function parseDuration(v: unknown, what: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return configNumber(v, what)! * 1000;
  const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?)\s*([smhdw])$/.exec(v.trim()) : null;
  if (!m) throw new Error(`${what} must be a duration such as 30m, 12h or 7d (or a number of seconds), got ${JSON.stringify(v)}`);
  return Number(m[1]) * DURATION_UNITS[m[2]!]!;
}

export function parseQuotasSection(raw: unknown, source: string): QuotaConfig | undefined {
  if (raw === undefined || raw === null) return undefined;
  const o = configMapping(raw, source, 'quotas', ['default', 'namespaces']);
  const config: QuotaConfig = { namespaces: [] };
  const def = parseSize(o.default, `${source}: quotas.default`);
  if (def !== undefined) config.default = def;
  if (o.namespaces !== undefined && !Array.isArray(o.namespaces)) throw new Error(`${source}: quotas.namespaces must be a list`);
  ((o.namespaces as unknown[] | undefined) ?? []).forEach((entry, i) => {
    const where = `quotas.namespaces[${i}]`;
    const e = configMapping(entry, source, where, ['namespace', 'limit']);
    const namespace = configString(e.namespace, `${source}: ${where}.namespace`);
    if (!namespace) throw new Error(`${source}: ${where} needs a namespace (a first path segment such as team, or a glob such as ci/*/cache)`);
    checkGlob(namespace, `${source}: ${where}.namespace`);
    const rule: NamespaceRule = { namespace };
    const limit = parseSize(e.limit, `${source}: ${where}.limit`);
    if (limit !== undefined) rule.limit = limit;
    config.namespaces.push(rule);
  });
  return config;
}

export function parseRetentionSection(raw: unknown, source: string): RetentionRule[] | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!Array.isArray(raw)) throw new Error(`${source}: retention must be a list of rules ({repositories, keepNewest, keepTags, untaggedOlderThan})`);
  return raw.map((entry, i) => {
    const where = `retention[${i}]`;
    const e = configMapping(entry, source, where, ['repositories', 'keepNewest', 'keepTags', 'untaggedOlderThan']);
    const repositories = configString(e.repositories, `${source}: ${where}.repositories`);
    if (!repositories) throw new Error(`${source}: ${where} needs repositories (a glob such as team/** or *)`);
    checkGlob(repositories, `${source}: ${where}.repositories`);
    const rule: RetentionRule = { repositories };
    const keepNewest = configNumber(e.keepNewest, `${source}: ${where}.keepNewest`);
    if (keepNewest !== undefined) {
      if (!Number.isInteger(keepNewest)) throw new Error(`${source}: ${where}.keepNewest must be a whole number`);
      rule.keepNewest = keepNewest;
    }
    if (e.keepTags !== undefined) {
      const list = typeof e.keepTags === 'string' ? [e.keepTags] : e.keepTags;
      if (!Array.isArray(list) || list.some((p) => typeof p !== 'string')) throw new Error(`${source}: ${where}.keepTags must be a regular expression or a list of them`);
      for (const p of list as string[]) {
        try {
          new RegExp(`^(?:${p})$`);
        } catch (err) {
          throw new Error(`${source}: ${where}.keepTags: ${JSON.stringify(p)} is not a regular expression: ${(err as Error).message}`);
        }
      }
      rule.keepTags = list as string[];
    }
    const age = parseDuration(e.untaggedOlderThan, `${source}: ${where}.untaggedOlderThan`);
    if (age !== undefined) rule.untaggedOlderThanMs = age;
    if (rule.keepNewest === undefined && rule.keepTags === undefined && rule.untaggedOlderThanMs === undefined) {
      throw new Error(`${source}: ${where} removes nothing: give keepNewest, keepTags or untaggedOlderThan`);
    }
    return rule;
  });
}

function checkGlob(glob: string, what: string): void {
  try {
    repositoryGlob(glob);
  } catch (err) {
    throw new Error(`${what}: ${JSON.stringify(glob)} is not a repository glob: ${(err as Error).message}`);
  }
}
