// `berth serve retention [--dry-run]`: the retention rules of the config file (docs/server.md#retention)
// applied once to a registry's store, opened from the same flags, environment and config file as
// `berth serve`. With LevelDB metadata (the default) the registry must be stopped (or send it
// SIGUSR2: its own run does retention, then GC); with PostgreSQL it may run beside the replicas.
// Exit codes: 0 done, 2 could not run, 125 bad usage (the command line is bin/commands.ts's).
import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { loadConfig, type ServerConfig } from './config.js';
import { addStorageOptions, storageOverrides, type StorageFlags } from './storage-options.js';
import { openStore } from './open-store.js';
import { applyRetention, RetentionPolicy, type RetentionRemoval, type RetentionResult } from '../storage/retention.js';
import { collectGarbage, type GcResult } from '../storage/gc.js';
import type { RegistryStore } from '../storage/registry-store.js';

/** Declares `berth serve retention`'s flags and action on `cmd`. */
export function defineRetention(cmd: Command): void {
  addStorageOptions(cmd)
    .description(
      'Apply the retention rules of the config file (retention: in --config) once: remove the tags they do not keep, the manifests nothing kept needs, and the blob links only those held.\n' +
        'Stop `berth serve` first when the metadata is LevelDB (the default); a running registry applies the same rules before each GC.',
    )
    .option('--dry-run', 'print what would be removed; remove nothing')
    .option('--gc', 'then collect the garbage (content nothing references any more), as the registry does after its own retention run')
    .option('--format <format>', 'text (default): one line per removal; json: one JSON object per removal, then the summary')
    .action((o: StorageFlags & { dryRun?: boolean; gc?: boolean; format?: string }) => retain(o));
}

async function retain(o: StorageFlags & { dryRun?: boolean; gc?: boolean; format?: string }): Promise<number> {
  const format = o.format ?? 'text';
  if (format !== 'text' && format !== 'json') {
    process.stderr.write(`berth serve retention: --format must be text or json, got ${JSON.stringify(format)}\n`);
    return 125;
  }
  const dryRun = o.dryRun === true;
  if (dryRun && o.gc) {
    process.stderr.write('berth serve retention: --gc removes content: not with --dry-run\n');
    return 125;
  }

  let config: ServerConfig;
  let store: RegistryStore;
  try {
    config = await loadConfig({ file: o.config, flags: storageOverrides(o) });
    if (!config.retention?.length) throw new Error(`no retention rules: add a retention: section to the config file${o.config ? ` ${o.config}` : ' (--config)'}`);
    if (config.metadata === undefined && !(await stat(`${config.data}/meta`).catch(() => undefined))?.isDirectory()) {
      throw new Error(`no berth data in ${config.data} (no meta/ folder): check --data`);
    }
    store = await openStore(config);
  } catch (e) {
    const message = (e as Error).message.split('\n')[0]!;
    process.stderr.write(`berth serve retention: ${message}${/LevelDB lock/.test(message) ? ': stop it first (or send it SIGUSR2: it runs retention, then GC)' : ''}\n`);
    return 2;
  }

  const out = (line: string) => process.stdout.write(line + '\n');
  const json = format === 'json';
  let result: RetentionResult;
  let gc: GcResult | undefined;
  try {
    result = await applyRetention(store, new RetentionPolicy(config.retention), {
      dryRun,
      graceMs: config.gc.graceMinutes * 60_000,
      onRemoved: (r) => out(json ? JSON.stringify(r) : removalLine(r, dryRun)),
    });
    if (o.gc) gc = await collectGarbage(store, { graceMs: config.gc.graceMinutes * 60_000 });
  } catch (e) {
    process.stderr.write(`berth serve retention: the run failed: ${(e as Error).message.split('\n')[0]}\n`);
    await store.close().catch(() => undefined);
    return 2;
  }
  await store.close();
  if (json) {
    out(JSON.stringify({ summary: result, ...(gc ? { gc } : {}) }));
    return 0;
  }
  const verb = dryRun ? 'would remove' : 'removed';
  out(
    `${dryRun ? 'dry run: ' : ''}${plural(result.repositories, 'repository', 'repositories')} under a rule: ${verb} ${plural(result.removedTags, 'tag')}, ${plural(result.removedManifests, 'manifest')}, ` +
      `${plural(result.unlinkedBlobs, 'blob link')}${result.skipped > 0 ? `; ${result.skipped} kept as they changed meanwhile` : ''}`,
  );
  if (gc) out(`garbage collection: ${plural(gc.removed, 'blob')} removed, ${gc.freedBytes} bytes freed`);
  else if (!dryRun) out('the content of the removed blob links goes at the next GC (berth serve retention --gc, or the registry\'s own)');
  return 0;
}

/** One line per removal; the same words dry or not, but the verb. */
export function removalLine(r: RetentionRemoval, dryRun: boolean): string {
  const verb = dryRun ? 'would remove' : 'removed';
  const when = r.pushed !== undefined ? `pushed ${new Date(r.pushed).toISOString()}` : 'push time unknown';
  if (r.what === 'tag') return `${verb} tag ${r.repository}:${r.tag} (${r.digest}, ${when})`;
  return `${verb} manifest ${r.repository}@${r.digest} (${r.reason}, ${r.mediaType}, ${when})`;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
