// `berth fsck`: checks a registry's store (storage/fsck.ts), opened from the same flags,
// environment and config file as `berth serve`. Exit codes: 0 consistent (or every problem
// repaired, confirmed by a second check), 1 problems found (or some left after --repair),
// 2 the check could not run (bad configuration, the data folder in use, storage unreachable),
// 125 bad usage (like every berth verb; the command line is bin/commands.ts's).
import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { loadConfig, type ServerConfig } from './config.js';
import { addStorageOptions, storageOverrides, type StorageFlags } from './storage-options.js';
import { openStore } from './open-store.js';
import { fsck, type FsckProblem, type FsckRemoval, type FsckReport } from '../storage/fsck.js';
import type { RegistryStore } from '../storage/registry-store.js';

/** Declares `berth fsck`'s flags and action on `cmd`. */
export function defineFsck(cmd: Command): void {
  addStorageOptions(cmd)
    .description(
      "Check a registry's stored data: every tag points at a manifest, every manifest's bytes and the blobs it references are stored and hash to their digests, every blob link's content is there with its size.\n" +
        'Stop `berth serve` first when the metadata is LevelDB (the default). Orphans (content nothing references) are counted, not problems: garbage collection removes them.\n' +
        'Exit 0: consistent; 1: problems (listed); 2: could not check; 125: usage.',
    )
    .option('--repair', 'remove dangling metadata, never content: tags, manifest links, blob links and referrer entries whose content is missing or corrupt')
    .option('--fast', 'check that blobs are stored with the right size, without hashing them (manifests are still hashed: they are read anyway)')
    .option('--format <format>', 'text (default) or json')
    .action((o: StorageFlags & { repair?: boolean; fast?: boolean; format?: string }) => check(o));
}

async function check(o: StorageFlags & { repair?: boolean; fast?: boolean; format?: string }): Promise<number> {
  const format = o.format ?? 'text';
  if (format !== 'text' && format !== 'json') {
    process.stderr.write(`berth fsck: --format must be text or json, got ${JSON.stringify(format)}\n`);
    return 125;
  }
  const json = format === 'json';

  let config: ServerConfig;
  let store: RegistryStore;
  try {
    config = await loadConfig({ file: o.config, flags: storageOverrides(o) });
    // LevelDB would create an empty store in a folder that holds none: a typo'd --data would
    // then look clean.
    if (config.metadata === undefined && !(await stat(`${config.data}/meta`).catch(() => undefined))?.isDirectory()) {
      throw new Error(`no berth data in ${config.data} (no meta/ folder): check --data`);
    }
    store = await openStore(config);
  } catch (e) {
    const message = (e as Error).message.split('\n')[0]!;
    process.stderr.write(`berth fsck: ${message}${/LevelDB lock/.test(message) ? ': stop it first, or check a registry on --metadata postgres:// while it runs' : ''}\n`);
    return 2;
  }

  const out = (line: string) => process.stdout.write(line + '\n');
  let report: FsckReport;
  let remaining: FsckProblem[] | undefined;
  try {
    const where = `${config.data} (${store.meta.kind} metadata, ${store.blobs.kind} blobs)`;
    if (!json) out(`berth fsck: checking ${where}${o.fast ? ', blobs by size only (--fast)' : ''}`);
    report = await fsck(store, {
      verifyContent: !o.fast,
      repair: o.repair === true,
      uploadPurgeAgeMs: config.uploads.purgeAfterHours * 3600 * 1000,
      mirror: config.proxy !== undefined,
      ...(json ? {} : { onProblem: (p: FsckProblem) => out(problemLine(p)) }),
    });
    // After a repair, a second pass (presence and sizes: whatever was corrupt lost its links)
    // confirms what is left is consistent.
    if (o.repair && report.problems.length > 0) remaining = (await fsck(store, { verifyContent: false, mirror: config.proxy !== undefined })).problems;
  } catch (e) {
    process.stderr.write(`berth fsck: the check failed: ${(e as Error).message.split('\n')[0]}\n`);
    await store.close().catch(() => undefined);
    return 2;
  }
  await store.close();

  const ok = report.problems.length === 0 || (remaining !== undefined && remaining.length === 0);
  if (json) {
    out(JSON.stringify({ ...report, ...(remaining ? { remainingAfterRepair: remaining } : {}), ok }, null, 2));
    return ok ? 0 : 1;
  }
  for (const r of report.removed) out(removalLine(r));
  out(
    `checked ${plural(report.repositories, 'repository', 'repositories')}: ${plural(report.tags, 'tag')}, ${plural(report.manifests, 'manifest')}, ${plural(report.blobLinks, 'blob link')}, ` +
      `${plural(report.referrers, 'referrer entry', 'referrer entries')}; ${plural(report.blobsChecked, 'distinct blob')}${report.contentVerified ? `, ${bytes(report.bytesHashed)} hashed` : ' (sizes only)'} in ${(report.durationMs / 1000).toFixed(1)} s`,
  );
  out(`orphans: ${plural(report.orphans.count, 'blob')}, ${bytes(report.orphans.bytes)} that nothing links or references (not a problem: garbage collection removes them)`);
  out(`stale upload sessions: ${report.staleUploads} (idle over ${config.uploads.purgeAfterHours} h: the registry's purge removes them)`);
  if (report.uncachedReferences > 0) out(`mirror: ${plural(report.uncachedReferences, 'reference')} of cached manifests not fetched yet (not a problem)`);
  if (report.problems.length === 0) out('clean: no problems');
  else if (!o.repair) out(`${plural(report.problems.length, 'problem')} found: berth fsck --repair removes the dangling metadata (content is never removed)`);
  else if (ok) out(`${plural(report.problems.length, 'problem')} repaired (${plural(report.removed.length, 'record')} removed); a second check found no problem`);
  else {
    for (const p of remaining!) out(`still: ${problemLine(p)}`);
    out(`${plural(remaining!.length, 'problem')} left after the repair`);
  }
  return ok ? 0 : 1;
}

function problemLine(p: FsckProblem): string {
  return `${p.kind.padEnd(17)} ${p.repository} ${p.reference}: ${p.detail}`;
}

function removalLine(r: FsckRemoval): string {
  if (r.what === 'manifest') return `removed manifest ${r.repository}@${r.reference}${r.tags && r.tags.length > 0 ? ` with its tags ${r.tags.join(', ')}` : ''}`;
  if (r.what === 'tag') return `removed tag ${r.repository}:${r.reference}`;
  if (r.what === 'blob-link') return `removed blob link ${r.repository} ${r.reference}`;
  if (r.what === 'usage') return `recounted the usage of namespace ${r.reference}`;
  return `removed referrer entry ${r.repository} ${r.reference}`;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}
