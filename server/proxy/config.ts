// Settings of mirror mode (`proxy:` in the config file), after the reference registry's `proxy:`
// section (docker-registry-api/mirror.md#configuring-the-cache).

export interface ProxyConfig {
  /** The upstream registry, e.g. https://registry-1.docker.io. */
  remoteUrl: string;
  username?: string;
  password?: string;
  /** A cached tag is served without asking upstream for this long. */
  tagTtlSeconds: number;
  /** Cached content not served for this long is removed; 0 keeps everything. */
  evictAfterHours: number;
}

export const DEFAULT_PROXY: Omit<ProxyConfig, 'remoteUrl'> = { tagTtlSeconds: 300, evictAfterHours: 7 * 24 };

export type ProxyOverrides = Partial<ProxyConfig>;

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function mergeProxy(base: ProxyConfig | undefined, o: ProxyOverrides | undefined): ProxyConfig | undefined {
  if (!o || Object.values(o).every((v) => v === undefined)) return base;
  return { ...DEFAULT_PROXY, remoteUrl: '', ...base, ...defined(o) };
}

function str(v: unknown, what: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new Error(`${what} must be a string`);
  return v;
}

function num(v: unknown, what: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !(v >= 0)) throw new Error(`${what} must be a non-negative number`);
  return v;
}

export function parseProxySection(raw: unknown, source: string): ProxyOverrides | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${source}: proxy must be a mapping`);
  const o = raw as Record<string, unknown>;
  const known = new Set(['remoteUrl', 'username', 'password', 'tagTtlSeconds', 'evictAfterHours']);
  for (const k of Object.keys(o)) if (!known.has(k)) throw new Error(`${source}: unknown key proxy.${k} (known: ${[...known].join(', ')})`);
  return {
    remoteUrl: str(o.remoteUrl, `${source}: proxy.remoteUrl`),
    username: str(o.username, `${source}: proxy.username`),
    password: str(o.password, `${source}: proxy.password`),
    tagTtlSeconds: num(o.tagTtlSeconds, `${source}: proxy.tagTtlSeconds`),
    evictAfterHours: num(o.evictAfterHours, `${source}: proxy.evictAfterHours`),
  };
}

export function validateProxy(p: ProxyConfig): void {
  let u: URL;
  try {
    u = new URL(p.remoteUrl);
  } catch {
    throw new Error(`proxy.remoteUrl must be an http(s) URL, got ${JSON.stringify(p.remoteUrl)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`proxy.remoteUrl must be an http(s) URL, got ${JSON.stringify(p.remoteUrl)}`);
  if ((p.username === undefined) !== (p.password === undefined)) throw new Error('proxy username and password go together');
}
