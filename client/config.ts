// The client's config file: the keys Docker users already have in /etc/docker/daemon.json
// (insecure-registries, registry-mirrors, max-concurrent-uploads/downloads) plus
// `registry-mirror-map`, a mirror list per registry so a mirror can front any registry.
import { readFile } from 'node:fs/promises';
import { configPath } from './paths.js';
import { DOCKER_HUB, isValidRegistryHost } from '../oci/reference.js';

export interface ClientConfig {
  /** Registries (host[:port]) and CIDRs allowed over plain HTTP or unverified TLS. */
  insecureRegistries: string[];
  /** Mirror base URLs (or hosts) per registry, tried in order before the registry itself. */
  mirrors: Record<string, string[]>;
  maxConcurrentUploads: number;
  maxConcurrentDownloads: number;
  /** Where the config was read from, for error messages that say how to change it. */
  source: string;
}

export function defaultConfig(source: string): ClientConfig {
  return { insecureRegistries: [], mirrors: {}, maxConcurrentUploads: 3, maxConcurrentDownloads: 3, source };
}

function stringList(v: unknown, key: string, source: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error(`${source}: ${key} must be an array of strings`);
  return v as string[];
}

function positiveInt(v: unknown, key: string, source: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new Error(`${source}: ${key} must be a positive integer`);
  return v;
}

/** Validates the parsed JSON of a config file. Unknown daemon.json keys are ignored, as they belong to dockerd. */
export function parseConfig(raw: unknown, source: string): ClientConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${source}: must be a JSON object`);
  const o = raw as Record<string, unknown>;
  const c = defaultConfig(source);
  c.insecureRegistries = stringList(o['insecure-registries'], 'insecure-registries', source).map((s) => s.replace(/^https?:\/\//, '').replace(/\/+$/, ''));
  const hub = stringList(o['registry-mirrors'], 'registry-mirrors', source);
  if (hub.length > 0) c.mirrors[DOCKER_HUB] = hub;
  const map = o['registry-mirror-map'];
  if (map !== undefined) {
    if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new Error(`${source}: registry-mirror-map must map registry hosts to arrays of mirror URLs`);
    for (const [host, list] of Object.entries(map)) {
      if (!isValidRegistryHost(host)) throw new Error(`${source}: registry-mirror-map: invalid registry host ${JSON.stringify(host)}`);
      const key = host === 'index.docker.io' ? DOCKER_HUB : host.toLowerCase();
      c.mirrors[key] = [...(c.mirrors[key] ?? []), ...stringList(list, `registry-mirror-map["${host}"]`, source)];
    }
  }
  for (const list of Object.values(c.mirrors)) {
    for (const m of list) parseMirror(m, source);
  }
  c.maxConcurrentUploads = positiveInt(o['max-concurrent-uploads'], 'max-concurrent-uploads', source, 3);
  c.maxConcurrentDownloads = positiveInt(o['max-concurrent-downloads'], 'max-concurrent-downloads', source, 3);
  return c;
}

/** A mirror entry: `https://mirror.example`, `http://10.0.0.5:5000`, or a bare host[:port]. */
export function parseMirror(entry: string, source = 'config'): { host: string; scheme?: 'http' | 'https' } {
  const m = /^(?:(https?):\/\/)?([^/]+)\/?$/.exec(entry.trim());
  if (!m || !isValidRegistryHost(m[2]!)) throw new Error(`${source}: invalid mirror ${JSON.stringify(entry)}: expected scheme://host[:port]`);
  return m[1] ? { host: m[2]!.toLowerCase(), scheme: m[1] as 'http' | 'https' } : { host: m[2]!.toLowerCase() };
}

/** Reads the config: a missing file means defaults unless the path was given explicitly. */
export async function loadConfig(flag?: string): Promise<ClientConfig> {
  const path = configPath(flag);
  const explicit = Boolean(flag || process.env.BERTH_CONFIG);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !explicit) return defaultConfig(path);
    throw new Error(`cannot read config ${path}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: invalid JSON: ${(e as Error).message}`);
  }
  return parseConfig(raw, path);
}
