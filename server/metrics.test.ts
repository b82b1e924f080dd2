// Operations of berth serve: Prometheus metrics on their own listener (off by default, prom-client
// then never loaded), /healthz and /readyz, the access log and X-Request-Id.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { pino } from 'pino';
import { startTestRegistry, type TestRegistry } from './testing.js';
import { sh } from './test-images.js';
import { DEFAULT_AUTH } from './auth/config.js';
import { DEFAULT_PROXY } from './proxy/config.js';
import { parseExposition, seriesKey, type Family } from './testing-exposition.js';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const REPO = 'zebra-team/quokka-app';

interface LogLine {
  msg: string;
  level: number;
  [k: string]: unknown;
}

function capture(): { logger: pino.Logger; lines: LogLine[]; text: () => string } {
  const raw: string[] = [];
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) {
        if (!line) continue;
        raw.push(line);
        lines.push(JSON.parse(line) as LogLine);
      }
      cb();
    },
  });
  return { logger: pino({ level: 'info', base: undefined }, sink), lines, text: () => raw.join('\n') };
}

/** The exposition, parsed strictly (server/testing-exposition.ts): `name{labels}` → value (labels as written). */
async function scrape(url: string): Promise<{ text: string; families: Map<string, Family>; value: (series: string) => number | undefined }> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const families = parseExposition(text);
  const samples = new Map<string, number>();
  for (const f of families.values()) for (const s of f.samples) samples.set(seriesKey(s), s.value);
  return { text, families, value: (s) => samples.get(s) };
}

async function until(what: string, check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function pushBlob(base: string, repo: string, bytes: Buffer, headers: Record<string, string> = {}): Promise<string> {
  const digest = sha256(bytes);
  const r = await fetch(`${base}/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: new Uint8Array(bytes), headers: { 'content-type': 'application/octet-stream', ...headers } });
  assert.equal(r.status, 201, await r.text());
  return digest;
}

async function pushImage(base: string, repo: string, tag: string, headers: Record<string, string> = {}): Promise<{ manifest: Buffer; digests: string[] }> {
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const layer = Buffer.alloc(3000, 7);
  const configDigest = await pushBlob(base, repo, config, headers);
  const layerDigest = await pushBlob(base, repo, layer, headers);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
    }),
  );
  const r = await fetch(`${base}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: new Uint8Array(manifest), headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json', ...headers } });
  assert.equal(r.status, 201, await r.text());
  return { manifest, digests: [configDigest, layerDigest, sha256(manifest)] };
}

let dir: string;
let reg: TestRegistry;
let log: ReturnType<typeof capture>;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-metrics-'));
  log = capture();
  reg = await startTestRegistry({ metrics: { listen: '127.0.0.1:0' }, gc: { intervalHours: 0, graceMinutes: 0 } }, { logger: log.logger });
});

after(async () => {
  await reg?.destroy();
  await rm(dir, { recursive: true, force: true });
});

test('requests are counted by method, route pattern and status; no repository name or digest appears in the exposition', async () => {
  const { manifest, digests } = await pushImage(reg.url, REPO, 'v1');
  for (let i = 0; i < 3; i++) assert.equal((await (await fetch(`${reg.url}/v2/${REPO}/manifests/v1`)).arrayBuffer()).byteLength, manifest.length);
  for (let i = 0; i < 2; i++) assert.equal((await fetch(`${reg.url}/v2/${REPO}/blobs/${digests[1]}`)).status, 200);
  assert.equal((await fetch(`${reg.url}/v2/${REPO}/manifests/nope`)).status, 404);
  assert.equal((await fetch(`${reg.url}/v2/${REPO}/manifests/v1`, { method: 'HEAD' })).status, 200);
  assert.equal((await fetch(`${reg.url}/some/unknown/path-${digests[0]}`)).status, 404);

  const m = await scrape(reg.metricsUrl!);
  const req = (method: string, route: string, status: number) => m.value(`berth_http_requests_total{method="${method}",route="${route}",status="${status}"}`);
  assert.equal(req('GET', '/v2/{name}/manifests/{reference}', 200), 3);
  assert.equal(req('GET', '/v2/{name}/manifests/{reference}', 404), 1);
  assert.equal(req('HEAD', '/v2/{name}/manifests/{reference}', 200), 1);
  assert.equal(req('PUT', '/v2/{name}/manifests/{reference}', 201), 1);
  assert.equal(req('POST', '/v2/{name}/blobs/uploads/', 201), 2);
  assert.equal(req('GET', '/v2/{name}/blobs/{digest}', 200), 2);
  assert.equal(req('GET', 'other', 404), 1);
  assert.equal(m.value('berth_http_request_duration_seconds_count{method="GET",route="/v2/{name}/manifests/{reference}",status="200"}'), 3);
  const duration = m.families.get('berth_http_request_duration_seconds')!;
  assert.equal(duration.type, 'histogram');
  const buckets = duration.samples.filter((x) => x.name.endsWith('_bucket') && seriesKey(x).includes('method="GET",route="/v2/{name}/manifests/{reference}",status="200"')).map((x) => x.value);
  const types = Object.fromEntries([...m.families.values()].filter((f) => f.name.startsWith('berth_')).map((f) => [f.name, f.type]));
  for (const [name, type] of Object.entries({ berth_http_requests_total: 'counter', berth_http_request_bytes_total: 'counter', berth_http_response_bytes_total: 'counter', berth_uploads_in_flight: 'gauge', berth_stored_blobs: 'gauge', berth_stored_bytes: 'gauge', berth_gc_runs_total: 'counter', berth_gc_freed_bytes_total: 'counter', berth_auth_failures_total: 'counter' })) {
    assert.equal(types[name], type, `${name} is a ${type}`);
    assert.ok(m.families.get(name)!.help, `${name} has a HELP line`);
  }
  assert.equal(buckets.length, 17);
  assert.deepEqual([...buckets].sort((x, y) => x - y), buckets, 'cumulative buckets');
  assert.equal(buckets.at(-1), 3, 'the +Inf bucket is the count');
  assert.equal(m.value('berth_http_response_bytes_total{route="/v2/{name}/manifests/{reference}"}')! >= 3 * manifest.length, true);
  assert.equal(m.value('berth_http_response_bytes_total{route="/v2/{name}/blobs/{digest}"}'), 2 * 3000);
  assert.equal(m.value('berth_http_request_bytes_total{route="/v2/{name}/blobs/uploads/"}'), 3000 + 37);
  assert.equal(m.value('berth_http_request_bytes_total{route="/v2/{name}/manifests/{reference}"}'), manifest.length);
  assert.ok(m.value('process_cpu_user_seconds_total')! >= 0, 'the process metrics are there');
  for (const name of ['process_resident_memory_bytes', 'process_open_fds', 'nodejs_heap_space_size_used_bytes', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_version_info', 'nodejs_active_handles_total']) assert.ok(m.families.get(name)?.samples.length, `${name} is there`);
  assert.equal(m.families.get('nodejs_gc_duration_seconds')?.type, 'histogram');
  assert.ok(m.value('nodejs_eventloop_lag_seconds')! >= 0);
  // Only the namespace gauges name a namespace (the first path segment), by design; the rest of the name never appears.
  assert.equal(m.value('berth_namespace_usage_bytes{namespace="zebra-team"}'), 3000 + 37 + manifest.length);
  const text = m.text.split('\n').filter((l) => !l.startsWith('berth_namespace_usage_bytes{namespace="zebra-team"}')).join('\n');
  for (const secret of ['zebra', 'quokka', ...digests.map((d) => d.slice(7, 19))]) assert.ok(!text.includes(secret), `${secret} is not in the exposition`);
  for (const line of m.text.split('\n').filter((l) => l.startsWith('berth_http_'))) {
    const route = /route="([^"]*)"/.exec(line)?.[1];
    assert.ok(route === 'other' || route === '/token' || route?.startsWith('/v2/'), line);
  }
  // The metrics listener serves /metrics only.
  assert.equal((await fetch(reg.metricsUrl!.replace('/metrics', '/v2/'))).status, 404);
});

test('a path keeps the series of its last request: another status or method, or another registry in the process, is counted where it belongs', async () => {
  // Both registries see the same path strings, so they share request-info's cached RouteInfo
  // (and its series slot): each must count only its own requests.
  const second = await startTestRegistry({ metrics: { listen: '127.0.0.1:0' } });
  try {
    const repo = 'slot-team/app';
    const { manifest } = await pushImage(reg.url, repo, 'v1');
    await pushImage(second.url, repo, 'v1');
    const path = `/v2/${repo}/manifests/v1`;
    const plan: Array<[TestRegistry, string, number]> = [
      [reg, 'GET', 200], [second, 'GET', 200], [reg, 'HEAD', 200], [reg, 'GET', 200], [second, 'GET', 200], [second, 'HEAD', 200], [reg, 'GET', 200],
    ];
    const before1 = await scrape(reg.metricsUrl!);
    const before2 = await scrape(second.metricsUrl!);
    for (const [r, method, status] of plan) assert.equal((await fetch(`${r.url}${path}`, { method })).status, status);
    // The same path answered 404 once its tag is gone: a new status for a path with a kept series.
    assert.equal((await fetch(`${reg.url}/v2/${repo}/manifests/${sha256(manifest)}`, { method: 'DELETE' })).status, 202);
    assert.equal((await fetch(`${reg.url}${path}`)).status, 404);
    assert.equal((await fetch(`${reg.url}${path}`)).status, 404);
    const after1 = await scrape(reg.metricsUrl!);
    const after2 = await scrape(second.metricsUrl!);
    const moved = (a: typeof after1, b: typeof before1, method: string, status: number) => {
      const key = `berth_http_requests_total{method="${method}",route="/v2/{name}/manifests/{reference}",status="${status}"}`;
      return (a.value(key) ?? 0) - (b.value(key) ?? 0);
    };
    assert.deepEqual([moved(after1, before1, 'GET', 200), moved(after1, before1, 'HEAD', 200), moved(after1, before1, 'GET', 404)], [3, 1, 2]);
    assert.deepEqual([moved(after2, before2, 'GET', 200), moved(after2, before2, 'HEAD', 200), moved(after2, before2, 'GET', 404)], [2, 1, 0]);
    const sent = (m: typeof after1) => m.value('berth_http_response_bytes_total{route="/v2/{name}/manifests/{reference}"}') ?? 0;
    const bytes = (a: typeof after1, b: typeof before1) => sent(a) - sent(b);
    // A GET's bytes are the manifest's; HEADs send none; the 404s' error bodies are counted too.
    assert.equal(bytes(after2, before2), 2 * manifest.length);
    assert.ok(bytes(after1, before1) > 3 * manifest.length);
  } finally {
    await second.destroy();
  }
});

test('uploads in flight are a gauge', async () => {
  const start = await fetch(`${reg.url}/v2/${REPO}/blobs/uploads/`, { method: 'POST' });
  assert.equal(start.status, 202);
  const location = new URL(start.headers.get('location')!, reg.url).href;
  let finish!: () => void;
  const held = new Promise<void>((r) => (finish = r));
  const body = new ReadableStream<Uint8Array>({
    async start(c) {
      c.enqueue(new Uint8Array(1000));
      await held;
      c.enqueue(new Uint8Array(24));
      c.close();
    },
  });
  const patch = fetch(location, { method: 'PATCH', body, duplex: 'half', headers: { 'content-type': 'application/octet-stream' } } as RequestInit);
  await until('the gauge to show the upload', async () => (await scrape(reg.metricsUrl!)).value('berth_uploads_in_flight') === 1);
  finish();
  assert.equal((await patch).status, 202);
  await until('the gauge to drop', async () => (await scrape(reg.metricsUrl!)).value('berth_uploads_in_flight') === 0);
  // A chunked body is counted as the body bytes read.
  assert.equal((await scrape(reg.metricsUrl!)).value('berth_http_request_bytes_total{route="/v2/{name}/blobs/uploads/{id}"}'), 1024);
});

test('a GC run moves the GC counters and recounts the stored blobs', async () => {
  const orphan = Buffer.alloc(5000, 3);
  const digest = await pushBlob(reg.url, REPO, orphan);
  assert.equal((await fetch(`${reg.url}/v2/${REPO}/blobs/${digest}`, { method: 'DELETE' })).status, 202);
  const before = await scrape(reg.metricsUrl!);
  assert.equal(before.value('berth_gc_runs_total'), 0);
  reg.collectGarbage();
  await until('the GC run', async () => (await scrape(reg.metricsUrl!)).value('berth_gc_runs_total') === 1);
  const m = await scrape(reg.metricsUrl!);
  assert.equal(m.value('berth_gc_removed_blobs_total'), 1);
  assert.equal(m.value('berth_gc_freed_bytes_total'), 5000);
  // Config, layer and manifest of the first test's image stay; the recount follows the GC run.
  await until('the recount', async () => (await scrape(reg.metricsUrl!)).value('berth_stored_blobs') === 3);
  const after = await scrape(reg.metricsUrl!);
  assert.ok(after.value('berth_stored_bytes')! > 3000);
  assert.ok(Math.abs(after.value('berth_stored_content_counted_timestamp_seconds')! - Date.now() / 1000) < 60);
});

test('the access log: one line per request with route, repository, bytes, duration and request id; X-Request-Id echoed', async () => {
  const from = log.lines.length;
  const given = await fetch(`${reg.url}/v2/${REPO}/manifests/v1`, { headers: { 'x-request-id': 'lb-7f3a.42:x' } });
  assert.equal(given.headers.get('x-request-id'), 'lb-7f3a.42:x');
  const bad = await fetch(`${reg.url}/v2/`, { headers: { 'x-request-id': 'has spaces and "quotes"' } });
  const generated = bad.headers.get('x-request-id')!;
  assert.match(generated, /^[0-9a-f]{8}-[0-9a-z]+$/);
  const another = (await fetch(`${reg.url}/v2/`)).headers.get('x-request-id');
  assert.notEqual(another, generated);
  await until('the access log lines', async () => log.lines.slice(from).filter((l) => l.msg === 'request').length === 3);
  const [first, second] = log.lines.slice(from).filter((l) => l.msg === 'request');
  assert.equal(first!.reqId, 'lb-7f3a.42:x');
  assert.equal(first!.method, 'GET');
  assert.equal(first!.route, '/v2/{name}/manifests/{reference}');
  assert.equal(first!.path, `/v2/${REPO}/manifests/v1`);
  assert.equal(first!.repository, REPO);
  assert.equal(first!.status, 200);
  assert.equal(first!.bytesIn, 0);
  assert.ok((first!.bytesOut as number) > 100);
  assert.equal(typeof first!.ms, 'number');
  assert.equal(first!.level, 30);
  assert.equal(second!.reqId, generated);
  assert.equal(second!.repository, undefined);
});

test('each answer is logged as it ends, with the bytes it sent: in memory, streamed, ranged, empty, refused, and one the client left', async () => {
  // More than the loopback socket buffers hold, so the server writes it only as the client reads.
  const big = Buffer.alloc(24 << 20, 5);
  const bigDigest = await pushBlob(reg.url, REPO, big);
  const { manifest, digests } = await pushImage(reg.url, REPO, 'v2');
  const from = log.lines.length;
  const get = (id: string, path: string, init: RequestInit = {}) => fetch(`${reg.url}/v2/${REPO}/${path}`, { ...init, headers: { 'x-request-id': id, ...(init.headers as Record<string, string>) } });
  assert.equal((await (await get('w-manifest', 'manifests/v2')).arrayBuffer()).byteLength, manifest.length);
  assert.equal((await get('w-head', 'manifests/v2', { method: 'HEAD' })).status, 200);
  const refused = await get('w-refused', 'manifests/nope');
  assert.equal(refused.status, 404);
  const refusedBytes = (await refused.arrayBuffer()).byteLength;
  assert.equal((await (await get('w-blob', `blobs/${digests[1]}`)).arrayBuffer()).byteLength, 3000);
  const ranged = await get('w-range', `blobs/${digests[1]}`, { headers: { range: 'bytes=0-99' } });
  assert.equal(ranged.status, 206);
  assert.equal((await ranged.arrayBuffer()).byteLength, 100);
  // Read slowly: the line is written when the last byte is, not when the route returned.
  const slow = (await get('w-slow', `blobs/${bigDigest}`)).body!.getReader();
  let got = (await slow.read()).value!.byteLength;
  await new Promise((r) => setTimeout(r, 400));
  for (let c = await slow.read(); !c.done; c = await slow.read()) got += c.value.byteLength;
  assert.equal(got, big.length);
  const ac = new AbortController();
  const left = (await get('w-left', `blobs/${bigDigest}`, { signal: ac.signal })).body!.getReader();
  await left.read();
  ac.abort();
  await left.read().catch(() => undefined);

  const ids = ['w-manifest', 'w-head', 'w-refused', 'w-blob', 'w-range', 'w-slow'];
  await until('the access-log lines', async () => [...ids, 'w-left'].every((id) => log.lines.slice(from).some((l) => l.msg === 'request' && l.reqId === id)));
  const line = (id: string) => log.lines.slice(from).find((l) => l.msg === 'request' && l.reqId === id)!;
  assert.deepEqual(ids.map((id) => [line(id).status, line(id).bytesOut]), [
    [200, manifest.length],
    [200, 0],
    [404, refusedBytes],
    [200, 3000],
    [206, 100],
    [200, big.length],
  ]);
  assert.ok((line('w-slow').ms as number) >= 350, `the slow answer took ${line('w-slow').ms} ms`);
  assert.equal(line('w-left').route, '/v2/{name}/blobs/{digest}');
  assert.equal(line('w-refused').route, '/v2/{name}/manifests/{reference}');
  // The metrics saw the same answers.
  const m = await scrape(reg.metricsUrl!);
  assert.equal(m.value('berth_http_requests_total{method="GET",route="/v2/{name}/blobs/{digest}",status="206"}'), 1);
});

test('/healthz and /readyz answer a word, are not logged at info, and /readyz is 503 when the metadata is closed', async () => {
  const from = log.lines.length;
  for (const p of ['/healthz', '/readyz']) {
    const r = await fetch(reg.url + p);
    assert.equal(r.status, 200);
    assert.equal(await r.text(), 'ok\n');
  }
  assert.equal((await fetch(`${reg.url}/healthz`, { method: 'POST' })).status, 405);
  const other = await startTestRegistry();
  try {
    assert.equal((await fetch(`${other.url}/readyz`)).status, 200);
    await other.store.meta.close();
    const r = await fetch(`${other.url}/readyz`);
    assert.equal(r.status, 503);
    assert.equal(await r.text(), 'unavailable\n');
    assert.equal((await fetch(`${other.url}/healthz`)).status, 200);
    assert.equal(other.metricsUrl, undefined);
  } finally {
    await other.destroy();
  }
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(log.lines.slice(from).filter((l) => String(l.path ?? '').endsWith('z')), []);
  // Health checks are not requests of the registry API: not counted either.
  assert.ok(!(await scrape(reg.metricsUrl!)).text.includes('healthz'));
});

test('htpasswd mode: health endpoints need no credentials, auth failures are counted, the user is logged, no secret is', async () => {
  const users = join(dir, 'users');
  await sh('htpasswd', ['-B', '-c', '-b', users, 'alice', 'alice-pw-s3cr3t']);
  const cap = capture();
  const auth = await startTestRegistry({ metrics: { listen: '127.0.0.1:0' }, auth: { ...DEFAULT_AUTH, mode: 'htpasswd', htpasswd: users } }, { logger: cap.logger });
  try {
    const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
    assert.equal((await fetch(`${auth.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${auth.url}/readyz`)).status, 200);
    assert.equal((await fetch(`${auth.url}/v2/`)).status, 401, 'no credentials: a challenge, not a failure');
    assert.equal((await fetch(`${auth.url}/v2/`, { headers: basic('alice', 'wrong-pw-s3cr3t') })).status, 401);
    assert.equal((await fetch(`${auth.url}/v2/`, { headers: { authorization: 'Bearer tok3n.s3cr3t.value' } })).status, 401);
    await pushImage(auth.url, 'team/app', 'v1', basic('alice', 'alice-pw-s3cr3t'));
    const state = await fetch(`${auth.url}/v2/team/app/blobs/uploads/`, { method: 'POST', headers: basic('alice', 'alice-pw-s3cr3t') });
    const loc = new URL(state.headers.get('location')!, auth.url);
    loc.searchParams.set('_state', 'st4te-s3cr3t');
    await (await fetch(loc, { headers: basic('alice', 'alice-pw-s3cr3t') })).arrayBuffer();

    const m = await scrape(auth.metricsUrl!);
    assert.equal(m.value('berth_auth_failures_total{mode="htpasswd"}'), 2);
    assert.equal(m.value('berth_http_requests_total{method="GET",route="/v2/",status="401"}'), 3);

    await until('the access log', async () => cap.lines.filter((l) => l.msg === 'request').length >= 8);
    const pushes = cap.lines.filter((l) => l.msg === 'request' && l.method === 'PUT');
    assert.equal(pushes[0]!.user, 'alice');
    assert.equal(cap.lines.find((l) => l.msg === 'request' && l.status === 401)!.user, undefined);
    const text = cap.text();
    assert.ok(!/s3cr3t/i.test(text), 'no password, token or upload state in the log');
    assert.ok(!text.includes(Buffer.from('alice:alice-pw-s3cr3t').toString('base64')));
    assert.ok(!/authorization/i.test(text));
  } finally {
    await auth.destroy();
  }
});

test('mirror mode: hits, misses and upstream errors are counted', async () => {
  const upstream = await startTestRegistry();
  const mirror = await startTestRegistry({ metrics: { listen: '127.0.0.1:0' }, proxy: { ...DEFAULT_PROXY, remoteUrl: upstream.url } });
  try {
    const { digests } = await pushImage(upstream.url, 'lib/app', 'v1');
    for (let i = 0; i < 2; i++) assert.equal((await (await fetch(`${mirror.url}/v2/lib/app/manifests/v1`)).arrayBuffer()).byteLength > 0, true);
    assert.equal((await (await fetch(`${mirror.url}/v2/lib/app/blobs/${digests[1]}`)).arrayBuffer()).byteLength, 3000);
    await until('the blob to be cached', async () => (await mirror.store.blobLink('lib/app', digests[1]!)) !== undefined);
    assert.equal((await (await fetch(`${mirror.url}/v2/lib/app/blobs/${digests[1]}`)).arrayBuffer()).byteLength, 3000);
    await upstream.close(100);
    assert.equal((await fetch(`${mirror.url}/v2/lib/app/manifests/v1`)).status, 200, 'within the tag TTL: from the cache');
    assert.equal((await fetch(`${mirror.url}/v2/lib/app/manifests/v2`)).status, 503);
    const m = await scrape(mirror.metricsUrl!);
    assert.equal(m.value('berth_mirror_misses_total{kind="manifest"}'), 2);
    assert.equal(m.value('berth_mirror_hits_total{kind="manifest"}'), 2);
    assert.equal(m.value('berth_mirror_misses_total{kind="blob"}'), 1);
    assert.equal(m.value('berth_mirror_hits_total{kind="blob"}'), 1);
    assert.equal(m.value('berth_mirror_upstream_errors_total{kind="manifest"}'), 1);
  } finally {
    await mirror.destroy();
    await upstream.destroy();
  }
});

/** Starts a registry in a child process and reports whether prom-client was loaded. */
async function promClientLoadedIn(metricsOn: boolean): Promise<{ loaded: boolean; listening: boolean }> {
  const testing = new URL('./testing.js', import.meta.url).href;
  const code = `
    import { createRequire } from 'node:module';
    const { startTestRegistry } = await import(${JSON.stringify(testing)});
    const reg = await startTestRegistry(${metricsOn ? "{ metrics: { listen: '127.0.0.1:0' } }" : '{}'});
    await (await fetch(reg.url + '/v2/')).arrayBuffer();
    const cache = Object.keys(createRequire(import.meta.url).cache);
    const loaded = cache.some((p) => p.includes('/node_modules/prom-client/'));
    await reg.destroy();
    process.stdout.write(JSON.stringify({ loaded, listening: reg.metricsUrl !== undefined }));
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const status = await new Promise<number | null>((r) => child.once('exit', r));
  assert.equal(status, 0);
  return JSON.parse(out) as { loaded: boolean; listening: boolean };
}

test('metrics are off by default: no listener, prom-client never loaded (and loaded when on: the check sees it)', async () => {
  assert.deepEqual(await promClientLoadedIn(false), { loaded: false, listening: false });
  assert.deepEqual(await promClientLoadedIn(true), { loaded: true, listening: true });
});

test('the exposition parser is strict: it refuses what a Prometheus server refuses', () => {
  const ok = '# HELP a_total A.\n# TYPE a_total counter\na_total{x="1\\"q\\\\"} 3\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 4\nh_count 2\n';
  const f = parseExposition(ok);
  assert.equal(f.get('a_total')!.help, 'A.');
  assert.deepEqual(f.get('a_total')!.samples[0]!.labels, [['x', '1"q\\']]);
  assert.equal(seriesKey(f.get('a_total')!.samples[0]!), 'a_total{x="1\\"q\\\\"}');
  for (const [bad, why] of [
    ['a 1', /no newline/],
    ['a{x="1} 1\n', /unterminated/],
    ['a{x=1} 1\n', /not quoted/],
    ['a one\n', /bad value/],
    ['a 1 2 3\n', /after the timestamp/],
    ['# TYPE a counter\na -1\n', /counter below 0/],
    ['a 1\n# TYPE a gauge\n', /TYPE of a after its samples/],
    ['# TYPE a gauge\n# TYPE a gauge\n', /second TYPE/],
    ['# TYPE a gauge\na{x="1"} 1\nb 1\na{x="2"} 1\n', /not contiguous/],
    ['a{x="1"} 1\na{x="1"} 2\n', /twice/],
    ['# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_count 1\n', /not cumulative/],
    ['# TYPE h histogram\nh_bucket{le="1"} 1\nh_count 1\n', /no \+Inf bucket/],
    ['# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_count 1\n', /_count 1 is not/],
    ['# TYPE a strange\n', /unknown type/],
    ['9a 1\n', /no metric name/],
  ] as Array<[string, RegExp]>) {
    assert.throws(() => parseExposition(bad), why, JSON.stringify(bad));
  }
});

test('GC durations: every collection counted by kind (scavenges made here are seen, as many as an observer of this process sees)', async () => {
  const before = (await scrape(reg.metricsUrl!)).value('nodejs_gc_duration_seconds_count{kind="minor"}') ?? 0;
  // The registry runs in this process: a PerformanceObserver of its own counts the same scavenges.
  let observed = 0;
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if ((e as { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) observed++;
  });
  observer.observe({ entryTypes: ['gc'] });
  // Young-generation garbage: several scavenges.
  let keep = 0;
  for (let i = 0; i < 200_000; i++) keep += new Array<number>(64).fill(i).length;
  assert.ok(keep > 0);
  await new Promise((r) => setTimeout(r, 50)); // GC entries reach observers after the task
  observer.disconnect();
  const m = await scrape(reg.metricsUrl!);
  const counted = m.value('nodejs_gc_duration_seconds_count{kind="minor"}')! - before;
  assert.ok(observed > 3, `${observed} scavenges made`);
  // Scavenges while the scrapes ran are counted too: a few more, never fewer.
  assert.ok(counted >= observed && counted <= observed + 20, `counted ${counted}, observed ${observed}`);
  assert.ok(m.value('nodejs_gc_duration_seconds_sum{kind="minor"}')! > 0);
  for (const x of m.families.get('nodejs_gc_duration_seconds')!.samples) assert.ok(['minor', 'major', 'incremental', 'weakcb'].includes(x.labels.find(([n]) => n === 'kind')![1]));
});
