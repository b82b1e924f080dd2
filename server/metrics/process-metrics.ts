// The process's own metrics: prom-client's default collectors (CPU, memory, heap spaces, file
// descriptors, handles, event-loop delay, version) except its GC histogram, replaced by one fed
// by node:v8's GCProfiler, which V8's GC callbacks fill in C++, read once a second and at each
// scrape. prom-client's (a PerformanceObserver of 'gc' entries) cost ~2.5 % of berth serve's
// manifest GET throughput, where scavenges run ~100 times a second: Node builds each entry in JS
// with four deprecated accessors (util.deprecate, Object.setPrototypeOf) before any observer sees
// it (docs/performance.md, "Metrics and access log overhead"); it also looked at the first entry
// of each batch only, so it undercounted. Same name, help, label and buckets.
import { createRequire } from 'node:module';
import { GCProfiler } from 'node:v8';
import type { Registry } from 'prom-client';

type Collector = (registry: Registry, config: Record<string, unknown>) => void;

/** prom-client 15's default collectors (lib/defaultMetrics.js) but `gc`. */
const COLLECTORS = ['processCpuTotal', 'processStartTime', 'osMemoryHeap', 'processOpenFileDescriptors', 'processMaxFileDescriptors', 'eventLoopLag', 'processHandles', 'processRequests', 'heapSizeAndUsed', 'heapSpacesSizeAndUsed', 'version'];

const GC_BUCKETS = [0.001, 0.01, 0.1, 1, 2, 5];
// GCProfiler's gcType names (node's src/node_v8.cc) as the kinds prom-client labels.
const KINDS: Record<string, string> = {
  Scavenge: 'minor',
  MinorMarkSweep: 'minor',
  MarkSweepCompact: 'major',
  IncrementalMarking: 'incremental',
  ProcessWeakCallbacks: 'weakcb',
};
/** How often the profiler's entries (~3 KB of JSON per collection) are read and counted. */
const HARVEST_MS = 1000;

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
  let profiler = new GCProfiler();
  profiler.start();
  let stopped = false;
  const harvest = () => {
    // A scrape after the stop reads what was counted; no profiler starts again.
    if (stopped) return;
    // The next profiler starts before this one stops: no collection falls between them.
    const next = new GCProfiler();
    next.start();
    const report = profiler.stop() as unknown as { statistics: Array<{ gcType: string; cost: number }> } | undefined;
    profiler = next;
    for (const entry of report?.statistics ?? []) {
      const kind = KINDS[entry.gcType] ?? 'unknown';
      let k = kinds.get(kind);
      if (!k) kinds.set(kind, (k = { count: 0, sum: 0, buckets: new Array<number>(GC_BUCKETS.length + 1).fill(0) }));
      const seconds = entry.cost / 1e6; // microseconds
      k.count++;
      k.sum += seconds;
      let i = 0;
      while (i < GC_BUCKETS.length && seconds > GC_BUCKETS[i]!) i++;
      k.buckets[i]!++;
    }
  };
  const timer = setInterval(harvest, HARVEST_MS);
  timer.unref();

  const name = 'nodejs_gc_duration_seconds';
  const help = 'Garbage collection duration by kind, one of major, minor, incremental or weakcb.';
  registry.registerMetric({
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get: async () => {
      harvest();
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
  return () => {
    clearInterval(timer);
    harvest();
    stopped = true;
    profiler.stop();
  };
}
