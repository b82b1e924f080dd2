// Webhook notifications against real receivers: an HTTP server in the test that fails its first
// calls (a 500, then no answer within the timeout) and then accepts. The registry runs in this
// process, as a `berth serve` child killed with SIGKILL while events wait, as two replicas on one
// PostgreSQL, and is pushed to by skopeo.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { startTestRegistry, type TestRegistry } from './testing.js';
import { startBerthProcess, type BerthProcess } from '../conformance-tests/fixtures/berth-process.js';
import { postgresMissing, startPostgres, type TestPostgres } from '../storage/testing/postgres.js';
import { buildTestImage, hostOf, skopeoCopy } from './test-images.js';
import { parseNotificationsSection } from './notifications/config.js';
import { EVENTS_MEDIA_TYPE } from './notifications/notifier.js';
import { parseExposition, seriesKey } from './testing-exposition.js';


interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
  answered: number | 'none';
  /** When the call's body had arrived (ms, performance.now()). */
  at: number;
}

interface Event {
  id: string;
  timestamp: string;
  action: string;
  target: { mediaType?: string; digest?: string; size?: number; length?: number; repository: string; url?: string; tag?: string; fromRepository?: string; references?: unknown[] };
  request: { id: string; addr: string; host: string; method: string; useragent: string };
  actor: { name?: string };
  source: { addr: string; instanceID: string };
}

/** A webhook receiver: answers each call by the plan (a status, or 'hang' for no answer), then 200. */
class Receiver {
  readonly calls: Delivery[] = [];
  private server!: Server;
  private hanging: Array<() => void> = [];
  url = '';

  constructor(private plan: Array<number | 'hang'> = []) {}

  async start(port = 0): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const step = this.plan.shift() ?? 200;
        this.calls.push({ headers: req.headers, body: Buffer.concat(chunks).toString(), answered: step === 'hang' ? 'none' : step, at: performance.now() });
        if (step === 'hang') {
          this.hanging.push(() => res.destroy());
          return;
        }
        res.writeHead(step).end();
      });
    });
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
    return this;
  }

  /** Events of the calls answered 2xx, in arrival order. */
  accepted(): Event[] {
    return this.calls.filter((c) => typeof c.answered === 'number' && c.answered < 300).flatMap((c) => (JSON.parse(c.body) as { events: Event[] }).events);
  }

  async until(what: string, pred: () => boolean, ms = 20_000): Promise<void> {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`receiver: ${what} not within ${ms} ms; got ${JSON.stringify(this.accepted().map((e) => [e.action, e.target.repository, e.target.tag ?? e.target.digest?.slice(0, 15)]))}`);
      await sleep(25);
    }
  }

  async stop(): Promise<void> {
    for (const h of this.hanging) h();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

async function call(base: string, method: string, path: string, body?: Buffer | string, headers: Record<string, string> = {}): Promise<Response> {
  const res = await fetch(base + path, { method, headers, ...(body !== undefined ? { body: typeof body === "string" ? body : new Uint8Array(body) } : {}) });
  await res.arrayBuffer();
  return res;
}

/** A blob pushed monolithically (POST ?digest=). */
async function pushBlob(base: string, repo: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const res = await call(base, 'POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, bytes, { 'Content-Type': 'application/octet-stream' });
  assert.equal(res.status, 201);
  return digest;
}

/** A blob pushed through a session (POST, then PUT ?digest= with the bytes). */
async function pushBlobInSession(base: string, repo: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const start = await call(base, 'POST', `/v2/${repo}/blobs/uploads/`);
  assert.equal(start.status, 202);
  const loc = start.headers.get('location')!;
  const res = await call(base, 'PUT', `${loc}?digest=${digest}`, bytes, { 'Content-Type': 'application/octet-stream' });
  assert.equal(res.status, 201);
  return digest;
}

function imageManifest(config: { digest: string; size: number }, layer: { digest: string; size: number }): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
    }),
  );
}

/** Pushes config + layer + manifest under `tag`; the manifest's digest. */
async function pushImage(base: string, repo: string, tag: string): Promise<{ manifest: string; config: string; layer: string; size: number }> {
  const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, n: randomBytes(4).toString('hex') }));
  const layerBytes = randomBytes(3000);
  const config = await pushBlob(base, repo, configBytes);
  const layer = await pushBlobInSession(base, repo, layerBytes);
  const m = imageManifest({ digest: config, size: configBytes.length }, { digest: layer, size: layerBytes.length });
  const res = await call(base, 'PUT', `/v2/${repo}/manifests/${tag}`, m, { 'Content-Type': OCI_MANIFEST });
  assert.equal(res.status, 201);
  return { manifest: sha256(m), config, layer, size: m.length };
}

const summary = (e: Event) => [e.action, e.target.repository, e.target.tag, e.target.digest].filter(Boolean).join(' ');

describe('webhook notifications', { timeout: 180_000 }, () => {
  describe('an in-process registry with two endpoints', () => {
    let main: Receiver;
    let pushesOnly: Receiver;
    let reg: TestRegistry;
    const logged: string[] = [];
    before(async () => {
      // 1st call: 500; 2nd: no answer within the 300 ms timeout; then accepted.
      main = await new Receiver([500, 'hang']).start();
      pushesOnly = await new Receiver().start();
      const notifications = parseNotificationsSection(
        {
          endpoints: [
            { name: 'main', url: main.url, headers: { Authorization: ['Bearer s3cret-token'], 'X-Multi': ['a', 'b'] }, timeout: '300ms', threshold: 1, backoff: '100ms', maxbackoff: '400ms' },
            { name: 'pushes-only', url: pushesOnly.url, ignoredmediatypes: ['application/octet-stream'], ignore: { actions: ['pull', 'delete', 'mount'] }, backoff: '100ms' },
            { name: 'off', url: 'http://127.0.0.1:1/never', disabled: true },
          ],
        },
        'test config',
      );
      const sink = new Writable({ write: (c: Buffer, _e, cb) => (logged.push(c.toString()), cb()) });
      reg = await startTestRegistry({ notifications: notifications!, metrics: { listen: '127.0.0.1:0' }, logLevel: 'debug' }, { logger: pino({ level: 'debug' }, sink) });
    });
    after(async () => {
      await reg?.destroy();
      await main?.stop();
      await pushesOnly?.stop();
    });

    it('delivers every event in distribution\'s envelope, in order, after a 500 and a timeout; ignore lists filter', async () => {
      const base = reg.url;
      const img = await pushImage(base, 'team/app', 'v1');
      const pull = await call(base, 'GET', '/v2/team/app/manifests/v1', undefined, { Accept: OCI_MANIFEST, 'User-Agent': 'webhook-test/1.0' });
      assert.equal(pull.status, 200);
      const reqId = pull.headers.get('x-request-id')!;
      assert.equal((await call(base, 'HEAD', `/v2/team/app/blobs/${img.layer}`)).status, 200);
      assert.equal((await call(base, 'POST', `/v2/team/other/blobs/uploads/?mount=${img.layer}&from=team/app`)).status, 201);
      assert.equal((await call(base, 'DELETE', '/v2/team/app/manifests/v1')).status, 202);
      assert.equal((await call(base, 'PUT', '/v2/team/app/manifests/v2', imageManifest({ digest: img.config, size: 0 }, { digest: img.layer, size: 3000 }), { 'Content-Type': OCI_MANIFEST })).status, 201);
      const second = sha256(imageManifest({ digest: img.config, size: 0 }, { digest: img.layer, size: 3000 }));
      assert.equal((await call(base, 'DELETE', `/v2/team/app/manifests/${second}`)).status, 202);
      assert.equal((await call(base, 'DELETE', `/v2/team/other/blobs/${img.layer}`)).status, 202);
      // Refused requests make no event.
      assert.equal((await call(base, 'GET', '/v2/team/app/manifests/nope')).status, 404);

      const expected = [
        `push team/app ${img.config}`,
        `push team/app ${img.layer}`,
        `push team/app v1 ${img.manifest}`,
        `pull team/app v1 ${img.manifest}`,
        `pull team/app ${img.layer}`,
        `mount team/other ${img.layer}`,
        'delete team/app v1',
        `push team/app v2 ${second}`,
        `delete team/app ${second}`,
        'delete team/app v2',
        `delete team/other ${img.layer}`,
      ];
      await main.until('all events', () => main.accepted().length >= expected.length);
      await sleep(300);
      const events = main.accepted();
      assert.deepEqual(events.map(summary), expected);
      // The first event was tried three times (500, timeout, accepted), the same event each time.
      assert.deepEqual(main.calls.slice(0, 3).map((c) => c.answered), [500, 'none', 200]);
      const firstIds = main.calls.slice(0, 3).map((c) => (JSON.parse(c.body) as { events: Event[] }).events[0]!.id);
      assert.equal(new Set(firstIds).size, 1);
      // Backoff 100 ms doubling from the first failure (threshold 1): the retry after the 500 waits
      // 100 ms; the one after the timeout waits the 300 ms timeout, then 200 ms.
      const [c0, c1, c2] = main.calls as [Delivery, Delivery, Delivery];
      assert.ok(c1.at - c0.at >= 95, `retry after the 500 came ${Math.round(c1.at - c0.at)} ms later, not after the 100 ms backoff`);
      assert.ok(c2.at - c1.at >= 490, `retry after the timeout came ${Math.round(c2.at - c1.at)} ms later, not after 300 ms + the doubled 200 ms backoff`);
      assert.equal(main.calls.length, expected.length + 2, 'each event sent once it was accepted');
      assert.equal(new Set(events.map((e) => e.id)).size, events.length, 'ids are unique');

      for (const c of main.calls) {
        assert.equal(c.headers['content-type'], EVENTS_MEDIA_TYPE);
        assert.equal(c.headers.authorization, 'Bearer s3cret-token');
        assert.equal(c.headers['x-multi'], 'a, b');
        assert.equal((JSON.parse(c.body) as { events: Event[] }).events.length, 1, 'one event per request, as distribution');
      }
      const [blobPush, , manifestPush, manifestPull, blobPull, mount, tagDelete] = events as [Event, Event, Event, Event, Event, Event, Event];
      assert.deepEqual(Object.keys(manifestPush), ['id', 'timestamp', 'action', 'target', 'request', 'actor', 'source']);
      assert.deepEqual(manifestPush.target, { mediaType: OCI_MANIFEST, digest: img.manifest, size: img.size, length: img.size, repository: 'team/app', url: `${base}/v2/team/app/manifests/${img.manifest}`, tag: 'v1' });
      assert.equal(manifestPush.request.method, 'PUT');
      assert.deepEqual(blobPush.target, { mediaType: 'application/octet-stream', digest: img.config, size: blobPush.target.size, length: blobPush.target.size, repository: 'team/app', url: `${base}/v2/team/app/blobs/${img.config}` });
      assert.ok(Math.abs(Date.parse(manifestPull.timestamp) - Date.now()) < 60_000);
      assert.match(manifestPull.id, /^[0-9a-f-]{36}$/);
      assert.deepEqual(manifestPull.request, { id: reqId, addr: manifestPull.request.addr, host: hostOf(base), method: 'GET', useragent: 'webhook-test/1.0' });
      assert.match(manifestPull.request.addr, /^127\.0\.0\.1:\d+$/);
      assert.deepEqual(manifestPull.actor, {});
      assert.match(manifestPull.source.addr, new RegExp(`:${reg.port}$`));
      assert.match(manifestPull.source.instanceID, /^[0-9a-f-]{36}$/);
      assert.equal(blobPull.request.method, 'HEAD');
      assert.equal(mount.target.fromRepository, 'team/app');
      assert.deepEqual(tagDelete.target, { repository: 'team/app', tag: 'v1' });

      // Only manifest pushes reach the endpoint that ignores blob media types and other actions.
      await pushesOnly.until('manifest pushes', () => pushesOnly.accepted().length >= 2);
      assert.deepEqual(pushesOnly.accepted().map(summary), [`push team/app v1 ${img.manifest}`, `push team/app v2 ${second}`]);

      // Metrics per endpoint, the queue empty.
      const text = await (await fetch(reg.metricsUrl!)).text();
      const samples = new Map([...parseExposition(text).values()].flatMap((f) => f.samples.map((x) => [seriesKey(x), x.value] as const)));
      const value = (series: string) => samples.get(series);
      assert.equal(value('berth_notifications_queued_total{endpoint="main"}'), expected.length);
      assert.equal(value('berth_notifications_sent_total{endpoint="main"}'), expected.length);
      assert.equal(value('berth_notifications_failed_total{endpoint="main"}'), 2);
      assert.equal(value('berth_notifications_pending{endpoint="main"}'), 0);
      assert.equal(value('berth_notifications_queued_total{endpoint="pushes-only"}'), 2);

      // The failures were logged, the header's secret never.
      const all = logged.join('');
      assert.match(all, /notification delivery failed/);
      assert.match(all, /answered 500/);
      assert.match(all, /no answer within 300 ms/);
      assert.ok(!all.includes('s3cret-token'), 'the Authorization value is not in the log');
    });
  });

  it('config: distribution\'s keys are read, mistakes refused with the key named', () => {
    const c = parseNotificationsSection({ events: { includereferences: true }, endpoints: [{ name: 'a', url: 'https://hooks.example/x', headers: { Authorization: 'Bearer t' }, timeout: '1m30s', threshold: 3, backoff: 1_500_000_000 }] }, 'f.yaml')!;
    assert.equal(c.includeReferences, true);
    assert.deepEqual(c.endpoints[0], { name: 'a', url: 'https://hooks.example/x', headers: { Authorization: ['Bearer t'] }, timeoutMs: 90_000, threshold: 3, backoffMs: 1500, maxBackoffMs: 300_000, ignoreMediaTypes: [], ignoreActions: [] });
    for (const [bad, re] of [
      [{ endpoints: [{ name: 'a', url: 'ftp://x' }] }, /endpoints\[0\]\.url must be an http/],
      [{ endpoints: [{ name: 'a', url: 'http://x', timeout: 'soon' }] }, /endpoints\[0\]\.timeout must be a duration/],
      [{ endpoints: [{ name: 'a', url: 'http://x', ignore: { actions: ['pul'] } }] }, /"pul" is not one of push, pull, delete, mount/],
      [{ endpoints: [{ name: 'a', url: 'http://x', treshold: 3 }] }, /unknown key notifications\.endpoints\[0\]\.treshold/],
      [{ endpoints: [{ name: 'a', url: 'http://x' }, { name: 'a', url: 'http://y' }] }, /a is named twice/],
      [{ endpoints: [{ name: 'a\0b', url: 'http://x' }] }, /name must be/],
      [{ endpoints: [{ name: 'a', url: 'http://x', headers: { Authorization: ['Bearer secret\r\nX: y'] } }] }, /Authorization: a value holds a line break/],
    ] as const) {
      assert.throws(() => parseNotificationsSection(bad, 'f.yaml'), (e: Error) => re.test(e.message) && !e.message.includes('secret'), JSON.stringify(bad));
    }
  });

  it('events waiting when berth serve is killed with SIGKILL are delivered after the restart', async () => {
    const work = await mkdtemp(join(tmpdir(), 'berth-notify-kill-'));
    // A port nobody listens on yet: deliveries fail (connection refused) until the receiver starts.
    const placeholder = await new Receiver().start();
    const port = Number(new URL(placeholder.url).port);
    await placeholder.stop();
    const configFile = join(work, 'berth.json');
    await writeFile(configFile, JSON.stringify({ notifications: { endpoints: [{ name: 'later', url: `http://127.0.0.1:${port}/hook`, timeout: '500ms', threshold: 1, backoff: '200ms', maxbackoff: '1s' }] } }));
    let berth: BerthProcess | undefined;
    let receiver: Receiver | undefined;
    try {
      berth = await startBerthProcess(join(work, 'data'), ['--config', configFile]);
      const img = await pushImage(berth.url, 'crash/app', 'v1');
      await berth.waitForLog('notification delivery failed');
      berth.child.kill('SIGKILL');
      assert.equal(await berth.exited, 'SIGKILL');
      receiver = await new Receiver().start(port);
      berth = await startBerthProcess(join(work, 'data'), ['--config', configFile]);
      await receiver.until('the three push events', () => receiver!.accepted().length >= 3);
      await sleep(300);
      assert.deepEqual(receiver.accepted().map(summary), [`push crash/app ${img.config}`, `push crash/app ${img.layer}`, `push crash/app v1 ${img.manifest}`]);
    } finally {
      if (berth && berth.child.exitCode === null && berth.child.signalCode === null) {
        berth.child.kill('SIGTERM');
        await berth.exited;
      }
      await receiver?.stop();
      await rm(work, { recursive: true, force: true });
    }
  });

  const pgMissing = postgresMissing();
  it('two replicas on one PostgreSQL: each event delivered exactly once, in order', { skip: pgMissing ?? false }, async () => {
    const work = await mkdtemp(join(tmpdir(), 'berth-notify-pg-'));
    let pg: TestPostgres | undefined;
    const replicas: BerthProcess[] = [];
    // Fails a few times so that both replicas find events waiting.
    const receiver = await new Receiver([500, 500, 503]).start();
    try {
      pg = await startPostgres();
      const db = await pg.createDatabase('notify');
      const configFile = join(work, 'berth.json');
      await writeFile(configFile, JSON.stringify({ notifications: { endpoints: [{ name: 'hook', url: receiver.url, threshold: 1, backoff: '100ms', maxbackoff: '300ms' }] } }));
      for (let i = 0; i < 2; i++) replicas.push(await startBerthProcess(join(work, 'data'), ['--config', configFile, '--metadata', db]));
      const digests: string[] = [];
      // Pushed alternately through both replicas, one at a time so that the order is defined.
      for (let i = 0; i < 24; i++) digests.push(await pushBlob(replicas[i % 2]!.url, 'pg/app', randomBytes(100 + i)));
      await receiver.until('24 events', () => receiver.accepted().length >= 24);
      await sleep(2500); // both replicas poll every second: a duplicate would arrive by now
      const events = receiver.accepted();
      assert.equal(events.length, 24, 'no event twice');
      assert.equal(new Set(events.map((e) => e.id)).size, 24);
      assert.deepEqual(events.map((e) => e.target.digest), digests, 'in the order pushed');
      const instances = new Set(events.map((e) => e.source.instanceID));
      assert.equal(instances.size, 2, 'events made by both replicas');
      assert.equal((await pg.psql('select count(*) from notifications', 'notify')).trim(), '0');
    } finally {
      for (const r of replicas) {
        r.child.kill('SIGTERM');
        await r.exited;
      }
      await receiver.stop();
      await pg?.stop();
      await rm(work, { recursive: true, force: true });
    }
  });

  const skopeoMissing = existsSync('/usr/bin/skopeo') && existsSync('/usr/bin/umoci') ? undefined : 'skopeo and umoci not installed (apt-get install skopeo umoci; .ci/run does)';
  it('a push by skopeo makes the events distribution makes: each blob, then the manifest with its tag', { skip: skopeoMissing ?? false }, async () => {
    const receiver = await new Receiver().start();
    const notifications = parseNotificationsSection({ endpoints: [{ name: 'r', url: receiver.url }] }, 'test')!;
    const reg = await startTestRegistry({ notifications });
    try {
      const image = await buildTestImage({ randomBytes: 64 << 10 });
      await skopeoCopy(image.ref, `docker://${hostOf(reg.url)}/skopeo/app:1.0`);
      await receiver.until('the manifest push', () => receiver.accepted().some((e) => e.target.tag === '1.0'));
      await sleep(200);
      const events = receiver.accepted();
      const pushes = events.filter((e) => e.action === 'push');
      const manifest = pushes.at(-1)!;
      assert.equal(manifest.target.tag, '1.0');
      assert.equal(manifest.target.mediaType, OCI_MANIFEST);
      assert.equal(manifest.request.method, 'PUT');
      assert.match(manifest.request.useragent, /skopeo|containers/i);
      const m = JSON.parse(Buffer.from(await (await fetch(`${reg.url}/v2/skopeo/app/manifests/1.0`, { headers: { Accept: OCI_MANIFEST } })).arrayBuffer()).toString()) as { config: { digest: string }; layers: Array<{ digest: string }> };
      const blobs = [m.config.digest, ...m.layers.map((l) => l.digest)].sort();
      const blobPushes = pushes.slice(0, -1);
      assert.deepEqual(blobPushes.map((e) => e.target.digest).sort(), blobs, 'one push event per blob, before the manifest\'s');
      for (const e of blobPushes) assert.equal(e.target.mediaType, 'application/octet-stream');
      // skopeo checks each blob with a HEAD first: a missing blob is no event; no other action happened.
      assert.ok(events.every((e) => e.action === 'push' || e.action === 'pull'), events.map(summary).join('\n'));
    } finally {
      await reg.destroy();
      await receiver.stop();
    }
  });
});
