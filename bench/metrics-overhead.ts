// What metrics and the access log cost on the hottest read: manifest GET throughput measured by
// wrk against `berth serve` child processes (started through bin/berth, as users start it) with
// both off (log level warn, no --metrics-listen) and both on (--metrics-listen, log level info:
// every request serialized and written to the child's stdout, /dev/null, as to a file); also each
// alone, and off a second time as an A/A control (how far two identical servers differ here).
// Every measurement is a new server process, alone on the machine: started, warmed up (JIT),
// measured, stopped. Two identical processes differ by up to ~10 % (their JIT's choices, their
// memory layout), more than the effect measured, so each round samples that anew; idle servers
// beside the measured one (their timers) and their start order moved the figures too (an A/A
// control 3-4 % off 1.0 when a round's servers all ran at once). Each round drives every
// configuration in turn, starting with a different one each round.
// --pin: the server on CPU 1 and wrk on CPU 0 (taskset), so neither is moved onto the other's core.
//   node dist/bench/metrics-overhead.js [--rounds 7] [--seconds 4] [--warmup 2] [--connections 16] [--threads 1] [--configs 0,3,4] [--pin]
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { freePort, startBerth } from './registry-servers.js';
import { RegistryClient, tinyImage } from './registry-operations.js';

const run = promisify(execFile);

function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const rounds = Number(option('--rounds') ?? 7);
const seconds = Number(option('--seconds') ?? 4);
const connections = Number(option('--connections') ?? 16);
// One wrk thread: on a 2-core machine the other core is the server's (Node answers on one thread).
const threads = Number(option('--threads') ?? 1);
const warmup = Number(option('--warmup') ?? 2);
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const pin = process.argv.includes('--pin');

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

/** One wrk run: requests per second and requests made; any non-2xx answer or socket error fails the run. */
async function wrk(url: string, secs: number): Promise<{ rps: number; requests: number }> {
  const [cmd, pre] = pin ? ['taskset', ['-c', '0', 'wrk']] : ['wrk', []];
  const { stdout } = await run(cmd, [...pre, `-t${threads}`, `-c${connections}`, `-d${secs}s`, '-H', `Accept: ${OCI_MANIFEST}`, url], { maxBuffer: 1 << 20 });
  const rps = Number(/^Requests\/sec:\s+([\d.]+)/m.exec(stdout)?.[1]);
  const requests = Number(/^\s*(\d+) requests in/m.exec(stdout)?.[1]);
  if (/Non-2xx or 3xx responses/.test(stdout) || /Socket errors/.test(stdout) || !(rps > 0)) throw new Error(`wrk: ${stdout}`);
  return { rps, requests };
}

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
  // A second "off": its ratio to the first is what the machine's noise alone makes (an A/A control).
  { label: 'off again (A/A control)', args: async () => [], metrics: false },
];

const load0 = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
const img = tinyImage();
// --configs 0,3,4: a subset (indices into configs above; the first named is the baseline).
const chosen = option('--configs')?.split(',').map((i) => configs[Number(i)]!) ?? configs;

/** One server of configuration `c`, alone on the machine: started, given the image, warmed up (JIT), measured, its count checked, stopped. */
async function measureOnce(c: Config): Promise<{ rps: number; cpuUs: number }> {
  const args = await c.args();
  const server = await startBerth({ extraArgs: args });
  try {
    if (pin) await run('taskset', ['-a', '-p', '-c', '1', String(server.pid)]);
    const client = new RegistryClient(server.origin, 2);
    await client.pushSmall('perf/manifest', img.blob, img.blobDigest);
    await client.putManifest('perf/manifest', 'latest', img.manifest);
    await client.close();
    const url = `${server.origin}/v2/perf/manifest/manifests/latest`;
    let made = (await wrk(url, warmup)).requests;
    const cpu0 = await cpuSeconds(server.pid);
    const r = await wrk(url, seconds);
    const row = { rps: r.rps, cpuUs: (((await cpuSeconds(server.pid)) - cpu0) / r.requests) * 1e6 };
    made += r.requests;
    // The requests are counted: a wrong figure would be no figure.
    if (c.metrics) {
      const text = await (await fetch(`http://${args[args.indexOf('--metrics-listen') + 1]}/metrics`)).text();
      const n = Number(/^berth_http_requests_total\{method="GET",route="\/v2\/\{name\}\/manifests\/\{reference\}",status="200"\} (\d+)/m.exec(text)?.[1]);
      if (!(n >= made)) throw new Error(`${c.label}: metrics counted ${n} manifest GETs, wrk made ${made}+`);
    }
    return row;
  } finally {
    await server.stop();
  }
}

const results = new Map<string, Array<{ rps: number; cpuUs: number }>>();
for (let round = 0; round < rounds; round++) {
  for (let k = 0; k < chosen.length; k++) {
    const c = chosen[(k + round) % chosen.length]!;
    const row = await measureOnce(c);
    (results.get(c.label) ?? results.set(c.label, []).get(c.label)!).push(row);
    console.log(`round ${round + 1} ${c.label.padEnd(24)} ${row.rps.toFixed(0).padStart(6)} req/s  ${row.cpuUs.toFixed(1)} CPU-µs/req`);
  }
}

const load = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
console.log(`\nmanifest GET by wrk (${threads} thread, ${connections} connections, Accept: ${OCI_MANIFEST}${pin ? '; server on CPU 1, wrk on CPU 0' : ''}), ${seconds} s per configuration per round, ${rounds} rounds (median; min-max of req/s); load average ${load}`);
const base = results.get(chosen[0]!.label)!;
const baseRps = median(base.map((x) => x.rps));
const baseCpu = median(base.map((x) => x.cpuUs));
console.log('| configuration | req/s (median) | min-max | vs off | server CPU-µs/request | vs off |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const c of chosen) {
  const r = results.get(c.label)!;
  const rps = median(r.map((x) => x.rps));
  const cpu = median(r.map((x) => x.cpuUs));
  const lo = Math.min(...r.map((x) => x.rps));
  const hi = Math.max(...r.map((x) => x.rps));
  console.log(`| ${c.label} | ${rps.toFixed(0)} | ${lo.toFixed(0)}-${hi.toFixed(0)} | ${(rps / baseRps).toFixed(3)} | ${cpu.toFixed(1)} | ${(cpu / baseCpu).toFixed(3)} |`);
}
// Paired per round: each configuration's ratio to off in the same round (they ran seconds apart),
// so a burst of load from other processes mostly cancels; the median of those ratios.
console.log('\n| configuration | req/s vs off, paired per round (median) | CPU-µs/request vs off, paired (median) | per round (req/s ratio) |');
console.log('|---|---:|---:|---|');
for (const c of chosen.slice(1)) {
  const r = results.get(c.label)!;
  const rps = r.map((x, i) => x.rps / base[i]!.rps);
  const cpu = r.map((x, i) => x.cpuUs / base[i]!.cpuUs);
  console.log(`| ${c.label} | ${median(rps).toFixed(3)} | ${median(cpu).toFixed(3)} | ${rps.map((x) => x.toFixed(2)).join(' ')} |`);
}
// With the A/A control in the run, off is measured twice a round: against the mean of the two,
// a slow or fast baseline process moves a ratio half as much.
const aa = results.get(configs[4]!.label);
if (aa && chosen[0] === configs[0]) {
  console.log('\n| configuration | req/s vs the mean of both offs, paired (median) | CPU-µs/request, same (median) |');
  console.log('|---|---:|---:|');
  for (const c of chosen.filter((x) => x !== configs[0] && x !== configs[4])) {
    const r = results.get(c.label)!;
    const rps = r.map((x, i) => x.rps / ((base[i]!.rps + aa[i]!.rps) / 2));
    const cpu = r.map((x, i) => x.cpuUs / ((base[i]!.cpuUs + aa[i]!.cpuUs) / 2));
    console.log(`| ${c.label} | ${median(rps).toFixed(3)} | ${median(cpu).toFixed(3)} |`);
  }
}
console.log(`load average at the start ${load0}, at the end ${load}`);
