// A retention run of the registry (before each GC, server/serve.ts): the rules of the config
// file applied to the store, each removal logged.
import type { Logger } from 'pino';
import type { RegistryStore } from '../storage/registry-store.js';
import { applyRetention, RetentionPolicy, type RetentionResult, type RetentionRule } from '../storage/retention.js';

export async function runRetention(store: RegistryStore, rules: RetentionRule[], opts: { graceMs: number; log: Logger; signal?: AbortSignal }): Promise<RetentionResult> {
  const { log } = opts;
  const result = await applyRetention(store, new RetentionPolicy(rules), {
    graceMs: opts.graceMs,
    ...(opts.signal ? { signal: opts.signal } : {}),
    onRemoved: (r) => {
      if (r.what === 'tag') log.info({ repository: r.repository, tag: r.tag, digest: r.digest }, 'retention removed tag');
      else log.info({ repository: r.repository, digest: r.digest, mediaType: r.mediaType, reason: r.reason }, 'retention removed manifest');
    },
  });
  log.info(result as object, 'retention done');
  return result;
}
