// The access log's own serializer writes what pino writes for the same record (byte for byte,
// escapes and absent fields included), its byte encoder writes the same bytes, the log batch
// keeps every line whole and in order, and berth serve's access lines, written straight into its
// log destination, arrive on stdout in order with its other lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { pino } from 'pino';
import { accessLine, createAccessLog, encodeAccessLine, type AccessRecord } from './access-log.js';
import { LineBatch, type LineSink } from './log-batch.js';
import { REQUEST_ID_PREFIX, requestIdOf } from './request-info.js';
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname } from 'node:path';
import { BERTH_LAUNCHER, startBerthProcess } from '../conformance-tests/fixtures/berth-process.js';
import { freePort } from '../conformance-tests/fixtures/reference-registry.js';

const TIME = 1765000000123;

/** What pino (berth serve's settings: no base, epoch-ms time) writes for info(record, 'request'). */
function pinoLine(r: AccessRecord): string {
  let out = '';
  const sink = new Writable({ write: (c: Buffer, _e, cb) => ((out += c.toString()), cb()) });
  const log = pino({ level: 'info', base: undefined, timestamp: () => `,"time":${TIME}` }, sink);
  // reqNumber says how the id was made; the line has the id only.
  const { reqNumber: _made, ...fields } = r;
  log.info(fields, 'request');
  return out;
}

const base: AccessRecord = { reqId: 'a1b2c3d4-1z', reqNumber: 0, method: 'GET', route: '/v2/{name}/manifests/{reference}', path: '/v2/team/app/manifests/v1', repository: 'team/app', status: 200, bytesIn: 0, bytesOut: 473, ms: 0.4, user: 'alice' };

test('accessLine is pino’s line for the same record', async () => {
  const cases: AccessRecord[] = [
    base,
    { ...base, repository: undefined, user: undefined },
    { ...base, path: '/v2/a"b\\c/\u0001\n\t/manifests/x', user: 'zoë 🚢', reqId: 'lb-7f3a.42:x' },
    { ...base, path: '/v2/x/manifests/y', ms: 1234.5, bytesOut: 9007199254740991, status: 404 },
    { ...base, method: 'PATCH', ms: 0, bytesIn: 5 << 20, user: '' },
    { ...base, path: '/v2/\u007f\u2028\u2029é' },
  ];
  for (const r of cases) {
    assert.equal(accessLine(r, TIME), pinoLine(r), JSON.stringify(r));
  }
  // One difference, on purpose: a lone surrogate (no UTF-8 form) is written as JSON's \ud800
  // escape, where pino writes it raw and the UTF-8 encoder turns it into U+FFFD.
  const lone = { ...base, path: '/v2/\ud800x' };
  assert.equal(JSON.parse(accessLine(lone, TIME)).path, '/v2/\ud800x');
  assert.ok(accessLine(lone, TIME).includes('"/v2/\\ud800x"'));
});

test('an id this process made is written from its number: the same characters as its string', () => {
  const buf = Buffer.alloc(1024);
  for (const n of [1, 35, 36, 46655, 46656, 2 ** 31, Number.MAX_SAFE_INTEGER]) {
    const r = { ...base, reqId: requestIdOf(n), reqNumber: n };
    assert.equal(r.reqId, `${REQUEST_ID_PREFIX}-${n.toString(36)}`);
    const line = buf.subarray(0, encodeAccessLine(r, TIME, buf, 0)).toString();
    assert.equal(JSON.parse(line).reqId, r.reqId);
    assert.equal(line, accessLine(r, TIME));
  }
  assert.match(requestIdOf(46656), /^[0-9a-f]{8}-1000$/);
  // A number beyond a safe integer (not one the counter reaches) is not trusted: the id's characters are written.
  for (const reqNumber of [2 ** 60, 1.5, Number.NaN]) {
    const r = { ...base, reqId: 'lb-1.x', reqNumber };
    assert.equal(buf.subarray(0, encodeAccessLine(r, TIME, buf, 0)).toString(), accessLine(r, TIME));
  }
});

// Any string (lone surrogates, controls, quotes, astral characters) and any number (negative,
// fractional, huge, NaN, infinite), as well as the usual ASCII ones.
const anyString = fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ maxLength: 40 }), fc.constantFrom('GET', '/v2/{name}/manifests/{reference}', 'a1b2c3d4-1z', ''));
const anyNumber = fc.oneof(fc.nat(), fc.integer(), fc.double(), fc.nat({ max: 100000 }).map((k) => k / 10), fc.constantFrom(0, -0, 1e21, 2 ** 53, 2 ** 31, 2 ** 31 - 1, 1765000000123, Number.NaN, Infinity, -Infinity));
// An id this process made (written from its number) or any other (written from its characters).
const madeNumber = fc.oneof(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), fc.integer({ min: 1, max: 50000 }), fc.constantFrom(1, 35, 36, 1295, 1296, 46655, 46656, 2 ** 31 - 1, 2 ** 31, 2 ** 32, Number.MAX_SAFE_INTEGER));
const anyId = fc.oneof(
  anyString.map((reqId) => ({ reqId, reqNumber: 0 })),
  madeNumber.map((n) => ({ reqId: requestIdOf(n), reqNumber: n })),
);
const anyRecord = fc.tuple(anyId, fc.record({
  method: anyString,
  route: anyString,
  path: anyString,
  repository: fc.option(anyString, { nil: undefined }),
  status: anyNumber,
  bytesIn: anyNumber,
  bytesOut: anyNumber,
  ms: anyNumber,
  user: fc.option(anyString, { nil: undefined }),
})).map(([id, rest]): AccessRecord => ({ ...id, ...rest }));

test('encodeAccessLine writes accessLine’s bytes, for any record and time', () => {
  const buf = Buffer.alloc(64 * 1024, 0xee);
  fc.assert(
    fc.property(anyRecord, anyNumber, fc.nat({ max: 1000 }), (r, time, at) => {
      const end = encodeAccessLine(r, time, buf, at);
      assert.equal(buf.subarray(at, end).toString('latin1'), Buffer.from(accessLine(r, time)).toString('latin1'));
    }),
    { numRuns: 2000 },
  );
});

test('encodeAccessLine’s kept parts (time, method, path, counts) never leak into the next line: runs of records from small pools', () => {
  const buf = Buffer.alloc(256 * 1024);
  const pick = <T>(xs: T[]) => fc.constantFrom(...xs);
  const pooled = fc.tuple(pick([{ reqId: 'a-1', reqNumber: 0 }, { reqId: 'x"y', reqNumber: 0 }, { reqId: requestIdOf(7), reqNumber: 7 }, { reqId: requestIdOf(46656), reqNumber: 46656 }]), fc.record({
    method: pick(['GET', 'HEAD', 'GET']),
    route: pick(['/v2/{name}/manifests/{reference}', 'other']),
    path: pick(['/v2/a/manifests/v1', '/v2/b/blobs/x', '/v2/zoë/manifests/"q"']),
    repository: pick([undefined, 'a', 'b']),
    status: pick([200, 404, -0, 0, Number.NaN]),
    bytesIn: pick([0, 5, -0]),
    bytesOut: pick([0, 528, 1e21, 0.5]),
    ms: pick([0, 0.4, 12.5, 1 / 3]),
    user: pick([undefined, 'alice']),
  })).map(([id, rest]): AccessRecord => ({ ...id, ...rest }));
  fc.assert(
    fc.property(fc.array(fc.tuple(pooled, pick([1765000000123, 1765000000124, 0, Number.NaN])), { maxLength: 60 }), (run) => {
      let pos = 0;
      for (const [r, time] of run) pos = encodeAccessLine(r, time, buf, pos);
      assert.equal(buf.subarray(0, pos).toString(), run.map(([r, time]) => accessLine(r, time)).join(''));
    }),
    { numRuns: 1000 },
  );
});

/** A sink that keeps what it is given (copied: LineBatch fills its buffer again). */
function keepingSink(): LineSink & { writes: Buffer[]; text: () => string } {
  const writes: Buffer[] = [];
  return { writes, write: (b) => (writes.push(Buffer.from(b)), true), flushSync: () => undefined, text: () => Buffer.concat(writes).toString() };
}

test('the log batch keeps lines whole and in order: access lines, other lines, one longer than a batch', () => {
  const sink = keepingSink();
  const batch = new LineBatch(sink);
  const log = createAccessLog(pino({ enabled: false }), batch);
  // Each line as written: a string, or the record of an access line (its time is the batch's).
  const expected: Array<string | AccessRecord> = [];
  for (let n = 0; n < 2000; n++) {
    const r: AccessRecord = { ...base, reqId: `r-${n}`, path: `/v2/team/app/manifests/v${n}`, user: n % 7 ? undefined : 'zoë 🚢' };
    if (n % 100 === 0) {
      const other = `{"level":40,"msg":"other ${n} ${'é'.repeat(n % 300 ? 10 : 40000)}"}`;
      batch.write(`${other}\n`);
      expected.push(other);
    }
    log(r, Date.now());
    expected.push(r);
  }
  assert.ok(sink.writes.length > 5, 'the batches were written as they filled');
  batch.stop();
  const lines = sink.text().split('\n');
  assert.equal(lines.pop(), '', 'the output ends with a whole line');
  assert.equal(lines.length, expected.length);
  const t0 = Date.now() - 60_000;
  lines.forEach((line, i) => {
    const want = expected[i]!;
    if (typeof want === 'string') return assert.equal(line, want);
    const time = (JSON.parse(line) as { time: number }).time;
    assert.ok(time > t0 && time <= Date.now());
    assert.equal(`${line}\n`, accessLine(want, time));
  });
  assert.equal(batch.used, 0);
  // Stopped: a line goes out as it comes.
  const n = sink.writes.length;
  batch.write('{"msg":"late"}\n');
  assert.equal(sink.writes.length, n + 1);
  assert.equal(sink.writes.at(-1)!.toString(), '{"msg":"late"}\n');
});

test('an access line too long for any batch (a path of 20 000 escaped characters) is written whole', () => {
  const sink = keepingSink();
  const batch = new LineBatch(sink);
  const r: AccessRecord = { ...base, path: `/v2/${'"\u0001'.repeat(10000)}/manifests/x` };
  createAccessLog(pino({ enabled: false }), batch)(r, Date.now());
  batch.stop();
  const line = JSON.parse(sink.text()) as { path: string };
  assert.equal(line.path, r.path);
});

test('berth serve writes its access lines to stdout, one JSON line per request, with the request id it echoed', async () => {
  const work = await mkdtemp(join(tmpdir(), 'berth-access-log-'));
  const berth = await startBerthProcess(join(work, 'data'));
  try {
    const res = await fetch(`${berth.url}/v2/team/app/manifests/v1`, { headers: { 'x-request-id': 'from-the-proxy.1' } });
    assert.equal(res.status, 404);
    assert.equal(res.headers.get('x-request-id'), 'from-the-proxy.1');
    const line = await berth.waitForLog('request');
    assert.equal(line.level, 30);
    assert.ok(Math.abs((line.time as number) - Date.now()) < 60_000);
    const { time: _t, ms, bytesOut, ...rest } = line;
    assert.deepEqual(rest, { level: 30, reqId: 'from-the-proxy.1', method: 'GET', route: '/v2/{name}/manifests/{reference}', path: '/v2/team/app/manifests/v1', repository: 'team/app', status: 404, bytesIn: 0, msg: 'request' });
    assert.equal(typeof ms, 'number');
    assert.ok((bytesOut as number) > 0);
  } finally {
    berth.child.kill('SIGTERM');
    await berth.exited;
    await rm(work, { recursive: true, force: true });
  }
});

test('a stdout that fails (a full disk: /dev/full) never fails a request: said once on stderr, the server answers on and stops cleanly', async () => {
  const work = await mkdtemp(join(tmpdir(), 'berth-log-full-'));
  const port = await freePort();
  const full = openSync('/dev/full', 'w');
  const child = spawn('/bin/sh', [BERTH_LAUNCHER, 'serve', '--listen', `127.0.0.1:${port}`, '--data', join(work, 'data'), '--log-level', 'info'], {
    stdio: ['ignore', full, 'pipe'],
    env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` },
  });
  closeSync(full);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  try {
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      const up = await fetch(`${base}/healthz`).then((r) => r.ok, () => false);
      if (up) break;
      assert.ok(i < 200, `berth serve did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    // Enough lines for several 64 KiB batches, and time for the 100 ms flush in between.
    for (let round = 0; round < 10; round++) {
      const statuses = await Promise.all(Array.from({ length: 100 }, (_, k) => fetch(`${base}/v2/${k % 2 ? '' : 'team/app/manifests/v1'}`).then((r) => r.status)));
      assert.deepEqual([...new Set(statuses)].sort(), [200, 404]);
      await new Promise((r) => setTimeout(r, 30));
    }
    assert.equal(stderr.match(/writing the log to stdout failed \(ENOSPC\)/g)?.length, 1, stderr);
    assert.equal(child.exitCode, null, 'still running');
  } finally {
    child.kill('SIGTERM');
    // The lines still waiting are tried once: a full disk does not hold up the exit.
    const ended = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running 15 s after SIGTERM'), 15_000))]);
    if (ended !== 0) child.kill('SIGKILL');
    assert.equal(ended, 0, stderr);
    await rm(work, { recursive: true, force: true });
  }
});

test('lines written while the log’s disk is full wait, and are written whole and in order once it has room again (a 256 KiB tmpfs)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-log-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dir]);
  t.after(async () => {
    execFileSync('umount', [dir]);
    await rm(dir, { recursive: true, force: true });
  });
  const filler = join(dir, 'filler');
  const dest = pino.destination({ dest: join(dir, 'log'), sync: true, minLength: 0, contentMode: 'buffer', maxLength: 1 << 20 });
  const batch = new LineBatch(dest as unknown as LineSink);
  const errors: string[] = [];
  dest.on('error', (e: NodeJS.ErrnoException) => (errors.push(e.code ?? e.message), batch.sinkFailed()));
  const log = createAccessLog(pino({ enabled: false }), batch);
  const sent: AccessRecord[] = [];
  const burst = (n: number) => {
    for (let i = 0; i < n; i++) {
      const r = { ...base, reqId: `r-${sent.length}`, path: `/v2/team/app/manifests/v${sent.length}` };
      sent.push(r);
      log(r, Date.now());
    }
  };
  burst(100);
  batch.drain();
  // Fill the disk, then log more than a batch: the writes fail.
  try {
    writeFileSync(filler, Buffer.alloc(1 << 20));
  } catch (e) {
    assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
  }
  burst(600);
  batch.drain();
  assert.ok(errors.length > 0 && errors.every((c) => c === 'ENOSPC'), `writes failed: ${errors.join(' ')}`);
  // Room again: what waited goes first, then the rest.
  await rm(filler);
  burst(100);
  batch.stop();
  await new Promise((r) => (dest.once('close', r), dest.end()));
  const lines = readFileSync(join(dir, 'log'), 'utf8').split('\n');
  assert.equal(lines.pop(), '');
  assert.equal(lines.length, sent.length);
  lines.forEach((line, i) => {
    const time = (JSON.parse(line) as { time: number }).time;
    assert.equal(`${line}\n`, accessLine(sent[i]!, time), `line ${i}`);
  });
});
