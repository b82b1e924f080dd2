// CPU per access-log line, in one process, written to /dev/null: pino's `info(record, 'request')`
// into a sonic-boom destination with a 4 KiB minLength (berth serve's logger at first), the hand
// serializer's string into that destination line by line, those strings joined per 16 KiB (berth
// serve's before), and the line encoded into LineBatch's bytes (berth serve's now).
// docs/performance.md, "Metrics and access log overhead".
//   npm run build && node dist/bench/access-log-line.js [--lines 300000] [--garbage]
import { pino } from 'pino';
import { accessLine, createAccessLog, type AccessRecord } from '../server/access-log.js';
import { LineBatch, type LineSink } from '../server/log-batch.js';
import { requestIdOf } from '../server/request-info.js';

const i = process.argv.indexOf('--lines');
const LINES = i >= 0 ? Number(process.argv[i + 1]) : 300_000;

const record = (n: number): AccessRecord => ({ reqId: requestIdOf(n + 1), reqNumber: n + 1, method: 'GET', route: '/v2/{name}/manifests/{reference}', path: '/v2/perf/manifest/manifests/latest', repository: 'perf/manifest', status: 200, bytesIn: 0, bytesOut: 473, ms: 0.4, user: undefined });

// --garbage: each call first makes ~20 KB of short-lived objects, as a request through Koa and
// node:http does, beside 200 000 long-lived ones: the young generation scavenges as often as in
// berth serve under load, and lines waiting in a batch can be caught live by it.
const GARBAGE = process.argv.includes('--garbage');
const longLived = GARBAGE ? Array.from({ length: 200_000 }, (_, k) => ({ k, s: `x${k}` })) : [];
let made = 0;
function requestGarbage(n: number): void {
  const junk: Array<{ k: number; s: string; a: number[] }> = [];
  for (let k = 0; k < 200; k++) junk.push({ k, s: `hdr-${k}${n}`, a: [k, n] });
  made += junk.length;
}

/** CPU µs (all threads: user + system) per call of `write`, yielding to the event loop every 16 calls as a server does between requests. */
async function measure(writeLine: (n: number) => void): Promise<number> {
  const write = GARBAGE ? (n: number) => (requestGarbage(n), writeLine(n)) : writeLine;
  for (let n = 0; n < 20_000; n++) write(n);
  const c0 = process.cpuUsage();
  for (let n = 0; n < LINES; n++) {
    write(n);
    if (n % 16 === 0) await new Promise((r) => setImmediate(r));
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / LINES;
}

async function baseline(): Promise<number> {
  return measure((n) => void record(n));
}

async function pinoLine(): Promise<number> {
  const dest = pino.destination({ dest: '/dev/null', sync: false, minLength: 4096 });
  const log = pino({ level: 'info', base: undefined }, dest);
  // Through berth's pino path (a destination it does not own): the record's fields as pino's
  // object, without reqNumber, which says how the id was made and is not in the line.
  const accessLog = createAccessLog(log);
  const us = await measure((n) => accessLog(record(n), Date.now()));
  dest.flushSync();
  return us;
}

async function handIntoSonicBoom(): Promise<number> {
  const dest = pino.destination({ dest: '/dev/null', sync: false, minLength: 4096 });
  const us = await measure((n) => dest.write(accessLine(record(n), Date.now())));
  dest.flushSync();
  return us;
}

/** berth serve's path before: each line a string, 16 KiB of them joined and written in this thread. */
async function stringsJoined(): Promise<number> {
  const dest = pino.destination({ dest: '/dev/null', sync: true, minLength: 0 });
  let parts: string[] = [];
  let chars = 0;
  const us = await measure((n) => {
    const line = accessLine(record(n), Date.now());
    parts.push(line);
    chars += line.length;
    if (chars >= 16 * 1024) {
      dest.write(parts.join(''));
      parts = [];
      chars = 0;
    }
  });
  dest.flushSync();
  return us;
}

/** berth serve's path: each line encoded into LineBatch's buffer, written by sonic-boom in this thread (`sync`) or the threadpool. */
async function encodedIntoBatch(sync: boolean): Promise<number> {
  const dest = pino.destination({ dest: '/dev/null', sync, minLength: 0, contentMode: 'buffer' });
  // LineBatch fills its buffer again once write() returns: a sink writing later needs its own copy.
  const sink: LineSink = sync ? (dest as unknown as LineSink) : { write: (b) => dest.write(Buffer.from(b) as unknown as string), flushSync: () => dest.flushSync() };
  const batch = new LineBatch(sink);
  const accessLog = createAccessLog(pino({ enabled: false }), batch);
  const us = await measure((n) => accessLog(record(n), Date.now()));
  batch.stop();
  return us;
}

const cases: Array<[string, () => Promise<number>]> = [
  ['making the record only (baseline)', baseline],
  ['pino info(record) → sonic-boom, minLength 4 KiB (before)', pinoLine],
  ['accessLine → sonic-boom write per line, minLength 4 KiB', handIntoSonicBoom],
  ['accessLine strings joined per 16 KiB → sonic-boom, sync writes (before)', stringsJoined],
  ['encodeAccessLine → LineBatch 64 KiB bytes → sonic-boom, async writes (threadpool)', () => encodedIntoBatch(false)],
  ['encodeAccessLine → LineBatch 64 KiB bytes → sonic-boom, sync writes', () => encodedIntoBatch(true)],
];
const results = new Map<string, number[]>();
// Three rounds, the cases in turn: a burst of load from elsewhere falls on all of them.
for (let round = 0; round < 3; round++) for (const [label, fn] of cases) (results.get(label) ?? results.set(label, []).get(label)!).push(await fn());
console.log(`${LINES} lines per case, 3 rounds, median CPU µs per line${GARBAGE ? ` (each after ~20 KB of request garbage, ${made} objects made, beside ${longLived.length} long-lived ones)` : ''}; load ${(await import('node:os')).loadavg()[0]!.toFixed(1)}; node ${process.version}`);
console.log('| path | CPU µs / line |\n|---|---:|');
for (const [label] of cases) {
  const xs = results.get(label)!.sort((a, b) => a - b);
  console.log(`| ${label} | ${xs[1]!.toFixed(2)} |`);
}
