// `berth version`: docker's layout, a Client section and, when a berth registry answers on the
// address (`berth serve`'s default 127.0.0.1:5000, or $BERTH_HOST), a Server section read from its
// /v2/ answer (Docker-Distribution-API-Version, Berth-Version). Berth runs no daemon: without a
// registry the client section alone is the whole answer (exit 0), as docker's without its daemon.
import { hostPlatform } from '../platform.js';
import { berthVersion } from '../../oci/version.js';
import { writeStdout } from './stdout.js';

/** Where `berth version` looks for a registry: $BERTH_HOST (host:port), else berth serve's default. */
export const DEFAULT_REGISTRY_ADDRESS = '127.0.0.1:5000';

export interface VersionInfo {
  Client: { Version: string; NodeVersion: string; Os: string; Arch: string; Context: string };
  Server: { Address: string; Version: string; ApiVersion: string } | null;
}

/** The registry on `address`, if one answers /v2/ within `timeoutMs` (401 included: it is there, it wants a login). */
export async function probeRegistry(address: string, timeoutMs = 1000): Promise<VersionInfo['Server']> {
  let res: Response;
  try {
    res = await fetch(`http://${address}/v2/`, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
  } catch {
    return null;
  }
  await res.body?.cancel().catch(() => undefined);
  const api = res.headers.get('docker-distribution-api-version');
  if (!api) return null; // something else listens there
  return { Address: address, Version: res.headers.get('berth-version') ?? 'unknown (not berth)', ApiVersion: api };
}

export async function versionInfo(address = process.env.BERTH_HOST || DEFAULT_REGISTRY_ADDRESS): Promise<VersionInfo> {
  const p = hostPlatform();
  return {
    Client: { Version: berthVersion(), NodeVersion: process.version, Os: p.os, Arch: p.architecture + (p.variant ? `/${p.variant}` : ''), Context: 'default' },
    Server: await probeRegistry(address),
  };
}

/** docker's text: aligned `Key: value` lines under Client: and Server: (Registry:). */
export function versionText(v: VersionInfo): string {
  const rows = (indent: string, pairs: [string, string][]) => pairs.map(([k, val]) => `${indent}${`${k}:`.padEnd(19 - indent.length)}${val}\n`).join('');
  let out = `Client:\n${rows(' ', [
    ['Version', v.Client.Version],
    ['Node.js version', v.Client.NodeVersion],
    ['OS/Arch', `${v.Client.Os}/${v.Client.Arch}`],
    ['Context', v.Client.Context],
  ])}`;
  if (v.Server) {
    out += `\nServer:\n Registry:\n${rows('  ', [
      ['Version', v.Server.Version],
      ['API version', v.Server.ApiVersion],
      ['Address', v.Server.Address],
    ])}`;
  }
  return out;
}

export async function main(o: { format?: string }): Promise<number> {
  const v = await versionInfo();
  if (o.format === undefined || o.format === '') {
    writeStdout(versionText(v));
    return 0;
  }
  const { FormatError, formatValue, goStruct, reportFormatError } = await import('./format.js');
  try {
    const value = goStruct('system.versionInfo', {
      Client: goStruct('system.clientVersion', v.Client),
      Server: v.Server ? goStruct('types.Version', v.Server) : null,
    });
    writeStdout(formatValue(o.format, value, 'version'));
    return 0;
  } catch (e) {
    if (e instanceof FormatError) return reportFormatError(e);
    throw e;
  }
}
