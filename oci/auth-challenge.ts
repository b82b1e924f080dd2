// WWW-Authenticate challenges (RFC 7235 §2.1, §4.1; docker-registry-api/token.md#how-to-authenticate)
// and which token realms may be asked for a token. One implementation for both registry clients:
// the client's transport (client/transport/registry-client.ts) and the mirror's upstream
// (server/proxy/upstream.ts).
import type { AccessPolicy } from './access-policy.js';

export interface Challenge {
  scheme: 'basic' | 'bearer';
  /** auth-params, names lowercased, quoted values unescaped. */
  params: Record<string, string>;
}

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const PARAM = new RegExp(`(${TOKEN})[ \\t]*=[ \\t]*(?:"((?:[^"\\\\]|\\\\.)*)"|([^,\\s"]*))`, 'y');
const SCHEME = new RegExp(`(${TOKEN})(?:[ \\t]+[A-Za-z0-9._~+/-]+=*(?=[ \\t]*(?:,|$)))?`, 'y');
const SEPARATORS = /[\s,]*/y;

/**
 * Every challenge of a WWW-Authenticate value (several headers are one comma-separated list):
 * `Bearer realm="…",service="…", Basic realm="…"` is two challenges. A challenge's token68
 * (`Negotiate abc==`) is skipped; quoted values may hold commas and `\`-escapes.
 */
export function parseChallenges(header: string | string[] | undefined): Array<{ scheme: string; params: Record<string, string> }> {
  const value = Array.isArray(header) ? header.join(', ') : (header ?? '');
  const out: Array<{ scheme: string; params: Record<string, string> }> = [];
  let pos = 0;
  while (pos < value.length) {
    SEPARATORS.lastIndex = pos;
    SEPARATORS.exec(value);
    pos = SEPARATORS.lastIndex;
    if (pos >= value.length) break;
    const current = out[out.length - 1];
    if (current) {
      PARAM.lastIndex = pos;
      const p = PARAM.exec(value);
      if (p) {
        current.params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
        pos = PARAM.lastIndex;
        continue;
      }
    }
    SCHEME.lastIndex = pos;
    const s = SCHEME.exec(value);
    if (!s) break; // not a challenge list: keep what was understood
    out.push({ scheme: s[1]!.toLowerCase(), params: {} });
    pos = SCHEME.lastIndex;
  }
  return out;
}

/** The first Basic or Bearer challenge of a WWW-Authenticate header (scheme names are case-insensitive). */
export function parseChallenge(header: string | string[] | undefined): Challenge | undefined {
  const c = parseChallenges(header).find((x) => x.scheme === 'basic' || x.scheme === 'bearer');
  return c ? { scheme: c.scheme as Challenge['scheme'], params: c.params } : undefined;
}

/**
 * Why the Bearer `realm` may not be asked for a token for the registry answering at `registry`
 * (`scheme://host`), or undefined when it may. token.md#requesting-a-token sends the client's
 * Basic credentials to the realm, so: the realm is https, or plain http only when the registry
 * itself was reached over plain http (never an https → http downgrade) and the realm's host is one
 * `policy` allows plain HTTP to (loopback or listed insecure). A refused realm gets no request at
 * all, anonymous ones included, as the client has always done.
 */
export function realmRefusal(realm: URL, registry: string, policy: AccessPolicy): string | undefined {
  const where = `${realm.origin}${realm.pathname}`;
  if (realm.protocol === 'https:') return undefined;
  if (realm.protocol !== 'http:') return `token realm ${realm.href} has unsupported scheme ${realm.protocol}`;
  if (!registry.startsWith('http://')) return `token realm ${where} is plain HTTP but registry ${registry} is HTTPS: refusing to send credentials over an unencrypted connection`;
  if (!policy.isInsecure(realm.host)) return `token realm ${where} is plain HTTP and ${realm.host} is not an insecure registry`;
  return undefined;
}
