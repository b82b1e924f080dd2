// The process's own metrics: prom-client's default collectors (CPU, memory, heap spaces, file
// descriptors, handles, event-loop delay, version) except its GC histogram, replaced by one that
// records every GC entry into plain counts. prom-client's observes each GC through a labelled
// Histogram.observe (labels validated and hashed every time), about 1 % of berth serve's CPU
// under a manifest GET load, where scavenges run hundreds of times a second; it also looks at
// the first entry of each batch only, so it undercounts. Same name, help, label and buckets.
import { createRequire } from 'node:module';
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import type { Registry } from 'prom-client';

type Collector = (registry: Registry, config: Record<string, unknown>) => void;

/** prom-client 15's default collectors (lib/defaultMetrics.js) but `gc`. */
const COLLECTORS = ['processCpuTotal', 'processStartTime', 'osMemoryHeap', 'processOpenFileDescriptors', 'processMaxFileDescriptors', 'eventLoopLag', 'processHandles', 'processRequests', 'heapSizeAndUsed', 'heapSpacesSizeAndUsed', 'version'];

const GC_BUCKETS = [0.001, 0.01, 0.1, 1, 2, 5];
const KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

interface GcKind {
  count: number;
  sum: number;
  /** Per bucket, not cumulative; the last one past the largest bound. */
  buckets: number[];
}

type Sample = { labels: Record<string, string | number>; value: number; metricName?: string };

/** Registers the process metrics with `registry`; the returned function stops the GC observer. */
export function collectProcessMetrics(registry: Registry): () => void {
  const require = createRequire(import.meta.url);
  const config = { eventLoopMonitoringPrecision: 10 };
  for (const name of COLLECTORS) (require(`prom-client/lib/metrics/${name}`) as Collector)(registry, config);
  if (typeof process.getActiveResourcesInfo === 'function') (require('prom-client/lib/metrics/processResources') as Collector)(registry, config);

  const kinds = new Map<string, GcKind>();
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries() as Array<PerformanceEntry & { detail?: { kind?: number } }>) {
      const kind = KINDS[entry.detail?.kind ?? -1] ?? 'unknown';
      let k = kinds.get(kind);
      if (!k) kinds.set(kind, (k = { count: 0, sum: 0, buckets: new Array<number>(GC_BUCKETS.length + 1).fill(0) }));
      const seconds = entry.duration / 1000;
      k.count++;
      k.sum += seconds;
      let i = 0;
      while (i < GC_BUCKETS.length && seconds > GC_BUCKETS[i]!) i++;
      k.buckets[i]!++;
    }
  });
  observer.observe({ entryTypes: ['gc'] });

  const name = 'nodejs_gc_duration_seconds';
  const help = 'Garbage collection duration by kind, one of major, minor, incremental or weakcb.';
  registry.registerMetric({
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get: async () => {
      const values: Sample[] = [];
      for (const [kind, k] of kinds) {
        let cumulative = 0;
        GC_BUCKETS.forEach((le, i) => {
          cumulative += k.buckets[i]!;
          values.push({ metricName: `${name}_bucket`, labels: { le, kind }, value: cumulative });
        });
        values.push({ metricName: `${name}_bucket`, labels: { le: '+Inf', kind }, value: k.count });
        values.push({ metricName: `${name}_sum`, labels: { kind }, value: k.sum });
        values.push({ metricName: `${name}_count`, labels: { kind }, value: k.count });
      }
      return { name, help, type: 'histogram', values, aggregator: 'sum' };
    },
  } as unknown as Parameters<Registry['registerMetric']>[0]);
  return () => observer.disconnect();
}
