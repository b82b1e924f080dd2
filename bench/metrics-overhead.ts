// What metrics and the access log cost on the hottest read: manifest GET throughput of a berth
// serve child process with both off (log level warn, no --metrics-listen) against metrics on
// (--metrics-listen, scraped once per run) and the access log on (level info; the child's stdout
// is /dev/null, so every line is serialized and written, as to a file); also each alone.
//   node dist/bench/metrics-overhead.js [--rounds 3] [--seconds 3] [--slice-ms 250] [--warmup 2] [--connections 16]
import { readFile } from 'node:fs/promises';
import { freePort, startBerth } from './registry-servers.js';
import { RegistryClient, tinyImage } from './registry-operations.js';

function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const rounds = Number(option('--rounds') ?? 3);
const seconds = Number(option('--seconds') ?? 3);
const connections = Number(option('--connections') ?? 16);
const warmup = Number(option('--warmup') ?? 2);

/** User + system CPU seconds of a process (all threads), from /proc/PID/stat. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Config {
  label: string;
  args: () => Promise<string[]>;
  metrics: boolean;
}

const configs: Config[] = [
  { label: 'off (warn, no metrics)', args: async () => [], metrics: false },
  { label: 'metrics only', args: async () => ['--metrics-listen', `127.0.0.1:${await freePort()}`], metrics: true },
  { label: 'access log only', args: async () => ['--log-level', 'info'], metrics: false },
  { label: 'metrics + access log', args: async () => ['--log-level', 'info', '--metrics-listen', `127.0.0.1:${await freePort()}`], metrics: true },
];

// All four servers run at once, idle but one: each round drives them in turn for `slice` ms at a
// time until each had `seconds` of load, so a burst of load from other processes (this machine is
// shared) falls on every configuration alike instead of on whichever ran at that moment.
const sliceMs = Number(option('--slice-ms') ?? 250);
const img = tinyImage();
const servers = [];
for (const c of configs) {
  const args = await c.args();
  const server = await startBerth({ extraArgs: args });
  const client = new RegistryClient(server.origin, connections);
  servers.push({ c, args, server, client });
}
const results = new Map<string, Array<{ rps: number; cpuUs: number }>>();
try {
  for (const s of servers) {
    await s.client.pushSmall('perf/manifest', img.blob, img.blobDigest);
    await s.client.putManifest('perf/manifest', 'latest', img.manifest);
    await s.client.manifestLoad('perf/manifest', 'latest', img.manifest.length, connections, warmup); // warm-up (JIT)
  }
  const made = new Map<string, number>();
  for (let round = 0; round < rounds; round++) {
    const acc = servers.map(() => ({ requests: 0, seconds: 0, cpu: 0 }));
    for (let t = 0; t < seconds * 1000; t += sliceMs) {
      for (const [i, s] of servers.entries()) {
        const cpu0 = await cpuSeconds(s.server.pid);
        const r = await s.client.manifestLoad('perf/manifest', 'latest', img.manifest.length, connections, sliceMs / 1000);
        acc[i]!.cpu += (await cpuSeconds(s.server.pid)) - cpu0;
        acc[i]!.requests += r.requests;
        acc[i]!.seconds += r.requests / r.rps;
      }
    }
    for (const [i, s] of servers.entries()) {
      const a = acc[i]!;
      const row = { rps: a.requests / a.seconds, cpuUs: (a.cpu / a.requests) * 1e6 };
      (results.get(s.c.label) ?? results.set(s.c.label, []).get(s.c.label)!).push(row);
      made.set(s.c.label, (made.get(s.c.label) ?? 0) + a.requests);
      console.log(`round ${round + 1} ${s.c.label.padEnd(24)} ${row.rps.toFixed(0).padStart(6)} req/s  ${row.cpuUs.toFixed(1)} CPU-µs/req`);
    }
  }
  for (const s of servers.filter((x) => x.c.metrics)) {
    // The requests are counted: a wrong figure would be no figure.
    const text = await (await fetch(`http://${s.args[s.args.indexOf('--metrics-listen') + 1]}/metrics`)).text();
    const n = Number(/^berth_http_requests_total\{method="GET",route="\/v2\/\{name\}\/manifests\/\{reference\}",status="200"\} (\d+)/m.exec(text)?.[1]);
    if (!(n >= made.get(s.c.label)!)) throw new Error(`${s.c.label}: metrics counted ${n} manifest GETs, the load made ${made.get(s.c.label)}+`);
  }
} finally {
  for (const s of servers) {
    await s.client.close();
    await s.server.stop();
  }
}

const load = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
console.log(`\nmanifest GET, ${connections} keep-alive connections, ${seconds} s per configuration per round in ${sliceMs} ms slices, ${rounds} rounds (median); load average ${load}`);
const base = results.get(configs[0]!.label)!;
const baseRps = median(base.map((x) => x.rps));
const baseCpu = median(base.map((x) => x.cpuUs));
console.log('| configuration | req/s | vs off | server CPU-µs/request | vs off |');
console.log('|---|---:|---:|---:|---:|');
for (const c of configs) {
  const r = results.get(c.label)!;
  const rps = median(r.map((x) => x.rps));
  const cpu = median(r.map((x) => x.cpuUs));
  console.log(`| ${c.label} | ${rps.toFixed(0)} | ${(rps / baseRps).toFixed(3)} | ${cpu.toFixed(1)} | ${(cpu / baseCpu).toFixed(3)} |`);
}
