// Settings of mirror mode (`proxy:` in the config file), after the reference registry's `proxy:`
// section (docker-registry-api/mirror.md#configuring-the-cache).

import { configMapping, configNumber, configString, definedOnly } from '../config-values.js';

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


export function mergeProxy(base: ProxyConfig | undefined, o: ProxyOverrides | undefined): ProxyConfig | undefined {
  if (!o || Object.values(o).every((v) => v === undefined)) return base;
  return { ...DEFAULT_PROXY, remoteUrl: '', ...base, ...definedOnly(o) };
}


const str = configString;
const num = configNumber;

export function parseProxySection(raw: unknown, source: string): ProxyOverrides | undefined {
  if (raw === undefined || raw === null) return undefined;
  const o = configMapping(raw, source, 'proxy', ['remoteUrl', 'username', 'password', 'tagTtlSeconds', 'evictAfterHours']);
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
