// The access log's own serializer writes what pino writes for the same record (byte for byte,
// escapes and absent fields included), and berth serve's access lines, written straight into its
// log destination, arrive on stdout in order with its other lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { accessLine, type AccessRecord } from './access-log.js';
import { startBerthProcess } from '../conformance-tests/fixtures/berth-process.js';

const TIME = 1765000000123;

/** What pino (berth serve's settings: no base, epoch-ms time) writes for info(record, 'request'). */
function pinoLine(r: AccessRecord): string {
  let out = '';
  const sink = new Writable({ write: (c: Buffer, _e, cb) => ((out += c.toString()), cb()) });
  const log = pino({ level: 'info', base: undefined, timestamp: () => `,"time":${TIME}` }, sink);
  log.info(r, 'request');
  return out;
}

const base: AccessRecord = { reqId: 'a1b2c3d4-1z', method: 'GET', route: '/v2/{name}/manifests/{reference}', path: '/v2/team/app/manifests/v1', repository: 'team/app', status: 200, bytesIn: 0, bytesOut: 473, ms: 0.4, user: 'alice' };

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
