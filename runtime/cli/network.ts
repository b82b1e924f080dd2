// What `berth network ls|create|rm|inspect|connect|disconnect|prune` and `berth port` do, with
// docker's output and messages; flags are declared in bin/commands.ts. Each returns
// the exit code. Objects are docker-shaped so that --format templates can read them.
import { inspectTemplateError, writeInspect } from '../../client/cli/inspect-output.js';
import { ContainerStore, NoSuchContainerError } from '../container-store.js';
import { connectContainer, createNetwork, disconnectContainer, findNetworks, listNetworks, NetworkError, networkJson, pruneNetworks, removeNetwork, type CreateNetworkOptions } from '../networks.js';
import type { NetworkRecord } from '../network-store.js';
import { portLines } from '../network.js';
import { RuntimeLayout } from '../runtime-layout.js';
import { writeStdout } from '../../client/cli/stdout.js';

const layout = new RuntimeLayout();
const store = new ContainerStore(layout);

/** docker's error line: "Error response from daemon: …" unless its CLI says it itself. */
function fail(err: unknown): number {
  const e = err as Error;
  const daemon = !(err instanceof NetworkError && err.clientSide);
  if (!(err instanceof NetworkError) && !(err instanceof NoSuchContainerError)) {
    process.stderr.write(`berth: ${e.message}\n`);
    return 1;
  }
  process.stderr.write(`${daemon ? 'Error response from daemon: ' : ''}${e.message}\n`);
  return 1;
}

async function running(): Promise<(id: string) => boolean> {
  const up = new Set<string>();
  for (const id of await store.ids()) if ((await store.state(id).catch(() => undefined))?.Status === 'running') up.add(id);
  return (id) => up.has(id);
}

/** A `network ls` row as docker's formatter has it (.ID .Name .Driver .Scope .IPv6 .Internal .Labels .CreatedAt). */
export interface NetworkRow {
  ID: string;
  Name: string;
  Driver: string;
  Scope: string;
  IPv6: string;
  Internal: string;
  Labels: string;
  CreatedAt: string;
}

export function networkRow(n: NetworkRecord, noTrunc = false): NetworkRow {
  return {
    ID: noTrunc ? n.Id : n.Id.slice(0, 12),
    Name: n.Name,
    Driver: n.Driver,
    Scope: 'local',
    IPv6: 'false',
    Internal: 'false',
    Labels: Object.entries(n.Labels).map(([k, v]) => `${k}=${v}`).join(','),
    CreatedAt: n.Created,
  };
}

/** docker's tabwriter: cells padded by 3, columns at least 10 wide, the last one unpadded. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(10, ...rows.map((r) => r[i]!.length + 3)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('').trimEnd() + '\n').join('');
}

/**
 * `network ls --filter KEY=VALUE` as docker's: name (substring), id (prefix), driver, label (KEY
 * or KEY=VALUE), type (builtin or custom). Filters of one key are ORed, of different keys ANDed.
 */
export function filterNetworks(networks: NetworkRecord[], filters: string[]): NetworkRecord[] {
  const byKey = new Map<string, string[]>();
  for (const f of filters) {
    const eq = f.indexOf('=');
    const key = eq < 0 ? f : f.slice(0, eq);
    if (!['name', 'id', 'driver', 'label', 'type'].includes(key) || eq < 0) throw new NetworkError(`invalid filter '${f}'`);
    byKey.set(key, [...(byKey.get(key) ?? []), f.slice(eq + 1)]);
  }
  const match = (n: NetworkRecord, key: string, v: string): boolean => {
    switch (key) {
      case 'name':
        return n.Name.includes(v);
      case 'id':
        return n.Id.startsWith(v);
      case 'driver':
        return n.Driver === v;
      case 'label': {
        const eq = v.indexOf('=');
        return eq < 0 ? v in n.Labels : n.Labels[v.slice(0, eq)] === v.slice(eq + 1);
      }
      default:
        if (v !== 'builtin' && v !== 'custom') throw new NetworkError(`invalid filter: 'type'='${v}'`);
        return (v === 'builtin') === ['bridge', 'host', 'none'].includes(n.Name);
    }
  };
  return networks.filter((n) => [...byKey].every(([key, values]) => values.some((v) => match(n, key, v))));
}

export async function networkRows(noTrunc = false, filters: string[] = []): Promise<NetworkRow[]> {
  return filterNetworks(await listNetworks(layout), filters).map((n) => networkRow(n, noTrunc));
}

export async function ls(o: { quiet?: boolean; noTrunc?: boolean; filter?: string[]; format?: string }): Promise<number> {
  try {
    if (o.format !== undefined && o.format !== '' && !(o.quiet && o.format === 'table')) {
      const [f, { networkContext, NETWORK_FORMAT }] = await Promise.all([import('../../client/cli/format.js'), import('./format-contexts.js')]);
      const records = filterNetworks(await listNetworks(layout), o.filter ?? []);
      return f.writeFormatted(() => f.formatList(o.format!, records.map((n) => networkContext(networkRow(n, o.noTrunc), n.Labels)), NETWORK_FORMAT));
    }
    const rows = await networkRows(o.noTrunc, o.filter);
    if (o.quiet) writeStdout(rows.map((r) => `${r.ID}\n`).join(''));
    else writeStdout(table([['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'], ...rows.map((r) => [r.ID, r.Name, r.Driver, r.Scope])]));
    return 0;
  } catch (err) {
    return fail(err);
  }
}

/** `--label k=v` (a key alone is k=""). */
export function parseLabels(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list) {
    const eq = l.indexOf('=');
    out[eq < 0 ? l : l.slice(0, eq)] = eq < 0 ? '' : l.slice(eq + 1);
  }
  return out;
}

export async function create(o: CreateNetworkOptions): Promise<number> {
  try {
    const n = await createNetwork(layout, o);
    writeStdout(`${n.Id}\n`);
    return 0;
  } catch (err) {
    return fail(err);
  }
}

export async function rm(refs: string[]): Promise<number> {
  let code = 0;
  for (const ref of refs) {
    try {
      await removeNetwork(layout, ref);
      writeStdout(`${ref}\n`);
    } catch (err) {
      code = fail(err);
    }
  }
  return code;
}

/** The `network inspect` objects of `refs` (errors for the unknown ones), for the JSON and --format. */
export async function inspectObjects(refs: string[]): Promise<{ found: object[]; missing: NetworkError[] }> {
  const isRunning = await running();
  const found: object[] = [];
  const missing: NetworkError[] = [];
  for (const r of await findNetworks(layout, refs)) {
    if (r instanceof NetworkError) missing.push(r);
    else found.push(networkJson(r, isRunning));
  }
  return { found, missing };
}

export async function inspect(refs: string[], o: { format?: string } = {}): Promise<number> {
  const templateError = await inspectTemplateError(o.format);
  if (templateError !== undefined) return templateError;
  const { found, missing } = await inspectObjects(refs);
  const code = await writeInspect(found, o.format);
  for (const m of missing) fail(m);
  return Math.max(code, missing.length > 0 ? 1 : 0);
}

export async function connect(network: string, container: string, o: { aliases?: string[]; ip?: string }): Promise<number> {
  try {
    await connectContainer(store, network, await store.lookup(container), { aliases: o.aliases, ip: o.ip });
    return 0;
  } catch (err) {
    return fail(err);
  }
}

export async function disconnect(network: string, container: string): Promise<number> {
  try {
    await disconnectContainer(store, network, await store.lookup(container));
    return 0;
  } catch (err) {
    return fail(err);
  }
}


export async function prune(o: { force?: boolean }): Promise<number> {
  if (!o.force && !(await (await import('../../client/cli/confirm.js')).confirm('WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] '))) return 0;
  try {
    const removed = await pruneNetworks(layout);
    if (removed.length > 0) writeStdout(['Deleted Networks:', ...removed, '', ''].join('\n'));
    return 0;
  } catch (err) {
    return fail(err);
  }
}

/** `berth port CONTAINER [PRIVATE_PORT[/PROTO]]`: nothing for a container that is not running (docker's). */
export async function port(container: string, privatePort?: string): Promise<number> {
  try {
    const id = await store.lookup(container);
    const config = await store.config(id);
    const state = await store.state(id);
    const bindings = state.Status === 'running' ? (config.NetworkSettings?.Ports ?? []) : [];
    const lines = portLines(bindings, privatePort);
    if (!lines) {
      process.stderr.write(`Error: No public port '${privatePort}' published for ${container}\n`);
      return 1;
    }
    writeStdout(lines.map((l) => `${l}\n`).join(''));
    return 0;
  } catch (err) {
    if (err instanceof NoSuchContainerError) return fail(err);
    process.stderr.write(`Error: ${(err as Error).message}\n`);
    return 1;
  }
}
