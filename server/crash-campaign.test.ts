// The crash campaign of the reliability issue: rounds of `kill -9` of `berth serve` at a random
// moment while 8 clients push (chunked and monolithic, shared and fresh blobs, mounts), delete
// (manifests, tags, blob links) and pull, and garbage collection (grace 0) runs every 1-2 s. After
// each kill: fsck (content hashed) of the data folder finds no problem and every file under blobs/
// hashes to its name; after each restart, everything acknowledged (a 201 or a 202) is as the
// client was told: every manifest and blob link pushed and not deleted is pullable byte-identical,
// every tag whose last write is known resolves to its manifest, everything deleted stays deleted.
//
// The ledger is conservative: before a client sends a write it marks what the write touches as
// unknown, and only the answer makes it known again; so the one request per client cut off by
// the kill never makes the check guess. Tags are per client (one repository each), so no two
// clients race on a tag; blobs are shared across repositories (a pool every client pushes or
// mounts) so links, unlinks, mounts and GC race on the same digests.
//
// Default: BERTH_CRASH_ROUNDS=10 (≈ 40-90 s on 2 shared cores, depending on their load). The campaign of the issue:
//   BERTH_CRASH_ROUNDS=100 BERTH_TEST_FILTER=crash-campaign node scripts/run-tests.mjs
// BERTH_CAMPAIGN_SEED replays the clients' decisions (not the timing).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startBerthProcess, type BerthProcess } from '../conformance-tests/fixtures/berth-process.js';
import { auditBlobFiles } from '../conformance-tests/fixtures/data-dir.js';
import { CampaignHttp, errorCode, isConnectionError, seededRandom, sha256, type CampaignResponse } from '../conformance-tests/fixtures/campaign.js';
import { RegistryStore } from '../storage/registry-store.js';
import { fsck } from '../storage/fsck.js';

const ROUNDS = Number(process.env.BERTH_CRASH_ROUNDS ?? 10);
const SEED = Number(process.env.BERTH_CAMPAIGN_SEED ?? Math.floor(Math.random() * 2 ** 31));
const CLIENTS = 8;
const MAX_LIVE_MANIFESTS = 4;
const KiB = 1024;
const MiB = 1024 * KiB;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';

const rand = seededRandom(SEED);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const between = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));

interface Blob {
  digest: string;
  size: number;
  bytes: Buffer;
}

function blobOf(bytes: Buffer): Blob {
  return { digest: sha256(bytes), size: bytes.length, bytes };
}

/** A few KiB to a few MiB, most small. */
function randomSize(): number {
  const r = rand();
  if (r < 0.6) return between(2 * KiB, 64 * KiB);
  if (r < 0.9) return between(64 * KiB, MiB);
  return between(MiB, 4 * MiB);
}

// Every client pushes these too (fresh copies of the same digests), mounts them from each other
// and unlinks them: the digests GC, links and mounts race on.
const SHARED: Blob[] = [3 * KiB, 17 * KiB, 100 * KiB, 700 * KiB, 1536 * KiB, 3 * MiB].map((n) => blobOf(randomBytes(n)));

type Known<T> = { state: 'known'; value: T } | { state: 'unknown' };

interface Image {
  digest: string;
  bytes: Buffer;
  blobs: Array<{ digest: string; size: number }>;
  state: 'live' | 'deleted' | 'unknown';
  deletedChecks?: number;
}

interface Counters {
  manifestsAcked: number;
  blobsAcked: number;
  mounts: number;
  manifestDeletes: number;
  tagDeletes: number;
  blobDeletes: number;
  pulls: number;
  manifestBlobUnknown: number;
  abandonedUploads: number;
  cutOff: number;
}

class Client {
  readonly repo: string;
  readonly images = new Map<string, Image>();
  /** Tag → manifest digest, null once a delete was acknowledged. */
  readonly tags = new Map<string, Known<string | null>>();
  /** Blob links of the repository: true linked, false unlinked (acknowledged). */
  readonly links = new Map<string, Known<boolean> & { size: number; deletedChecks?: number }>();
  private serial = 0;

  constructor(
    readonly index: number,
    readonly counters: Counters,
    readonly failures: string[],
  ) {
    this.repo = `campaign/c${index}`;
  }

  // ---- the load ----------------------------------------------------------------------------

  /** Runs operations until `running()` is false; a connection error while the server is down ends it quietly. */
  async run(http: CampaignHttp, running: () => boolean): Promise<void> {
    while (running()) {
      try {
        await this.step(http);
      } catch (e) {
        // The request cut off by the kill: what it touched is marked unknown already.
        if (!running() && isConnectionError(e)) {
          this.counters.cutOff++;
          return;
        }
        this.failures.push(`client ${this.index}: ${(e as Error).stack ?? String(e)}`);
        return;
      }
    }
  }

  private live(): Image[] {
    return [...this.images.values()].filter((i) => i.state === 'live');
  }

  private async step(http: CampaignHttp): Promise<void> {
    const live = this.live();
    if (live.length > MAX_LIVE_MANIFESTS) return this.deleteImage(http, live[0]!);
    const r = rand();
    if (r < 0.45) return this.pushImage(http);
    if (r < 0.65 && live.length > 0) return this.pull(http, pick(live));
    if (r < 0.77 && live.length > 0) return this.deleteImage(http, pick(live));
    if (r < 0.84) return this.deleteTag(http);
    if (r < 0.9) return this.pushLoneBlob(http);
    if (r < 0.96) return this.cleanUp(http);
    return this.abandonUpload(http);
  }

  private expect(res: CampaignResponse, statuses: number[], what: string): void {
    if (statuses.includes(res.status)) return;
    if (res.status >= 400) errorCode(res, what);
    throw new Error(`${what}: ${res.status} (expected ${statuses.join('/')}): ${res.body.toString('utf8').slice(0, 300)}`);
  }

  private async pushImage(http: CampaignHttp): Promise<void> {
    const layers: Blob[] = [];
    for (let n = between(1, 3); n > 0; n--) layers.push(rand() < 0.35 ? pick(SHARED) : blobOf(randomBytes(randomSize())));
    const config = blobOf(Buffer.from(JSON.stringify({ client: this.index, serial: this.serial++, noise: randomBytes(8).toString('hex'), architecture: 'amd64', os: 'linux' })));
    const json = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ mediaType: OCI_LAYER, digest: l.digest, size: l.size })),
    };
    const bytes = Buffer.from(JSON.stringify(json, null, 2));
    const image: Image = { digest: sha256(bytes), bytes, blobs: [config, ...layers].map((b) => ({ digest: b.digest, size: b.size })), state: 'unknown' };
    const byDigest = new Map([config, ...layers].map((b) => [b.digest, b]));
    for (const b of byDigest.values()) if (this.links.get(b.digest)?.state !== 'known' || !(this.links.get(b.digest) as { value: boolean }).value) await this.pushBlob(http, b);

    const tag = rand() < 0.7 ? `t${between(0, 3)}` : undefined;
    for (let attempt = 0; ; attempt++) {
      this.images.set(image.digest, image);
      if (tag) this.tags.set(tag, { state: 'unknown' });
      const res = await http.send('PUT', `/v2/${this.repo}/manifests/${tag ?? image.digest}`, { headers: { 'content-type': OCI_MANIFEST }, body: bytes });
      if (res.status === 201) {
        assert.equal(http.header(res, 'docker-content-digest'), image.digest);
        image.state = 'live';
        if (tag) this.tags.set(tag, { state: 'known', value: image.digest });
        this.counters.manifestsAcked++;
        return;
      }
      // A spec answer, not a failure: some blob is no longer stored (GC, grace 0, collected it
      // between its upload and this PUT); the client uploads it again and retries.
      if (res.status === 400 && errorCode(res, 'manifest PUT') === 'MANIFEST_BLOB_UNKNOWN' && attempt < 3) {
        this.counters.manifestBlobUnknown++;
        const missing = (JSON.parse(res.body.toString('utf8')) as { errors: Array<{ detail?: Array<{ digest: string }> }> }).errors[0]?.detail ?? [];
        for (const m of missing) await this.pushBlob(http, byDigest.get(m.digest)!);
        continue;
      }
      this.expect(res, [201], `PUT manifest ${image.digest} as ${tag ?? 'digest'}`);
    }
  }

  /** One blob into the repository: a mount, a single POST, POST + PUT, or chunks. */
  private async pushBlob(http: CampaignHttp, b: Blob): Promise<void> {
    this.links.set(b.digest, { state: 'unknown', size: b.size });
    const base = `/v2/${this.repo}/blobs/uploads/`;
    let location: string | undefined;
    if (SHARED.includes(b) && rand() < 0.4) {
      const from = `campaign/c${between(0, CLIENTS - 1)}`;
      const res = await http.send('POST', base, { query: { mount: b.digest, from } });
      this.expect(res, [201, 202], `mount ${b.digest} from ${from}`);
      if (res.status === 201) {
        this.links.set(b.digest, { state: 'known', value: true, size: b.size });
        this.counters.mounts++;
        return;
      }
      location = http.header(res, 'location');
    }
    const how = rand();
    if (!location && how < 0.35) {
      const res = await http.send('POST', base, { query: { digest: b.digest }, body: b.bytes });
      this.expect(res, [201], `single POST of ${b.digest}`);
    } else {
      if (!location) {
        const res = await http.send('POST', base);
        this.expect(res, [202], 'POST upload session');
        location = http.header(res, 'location')!;
      }
      if (how < 0.65) {
        const res = await http.send('PUT', location, { query: { digest: b.digest }, body: b.bytes });
        this.expect(res, [201], `monolithic PUT of ${b.digest}`);
      } else {
        const chunk = between(64 * KiB, MiB);
        let offset = 0;
        while (offset < b.size) {
          const end = Math.min(b.size, offset + chunk);
          const res = await http.send('PATCH', location, { headers: { 'content-range': `${offset}-${end - 1}` }, body: b.bytes.subarray(offset, end) });
          this.expect(res, [202], `PATCH ${offset}-${end - 1} of ${b.digest}`);
          location = http.header(res, 'location')!;
          offset = end;
        }
        const res = await http.send('PUT', location, { query: { digest: b.digest } });
        this.expect(res, [201], `closing PUT of ${b.digest}`);
      }
    }
    this.links.set(b.digest, { state: 'known', value: true, size: b.size });
    this.counters.blobsAcked++;
  }

  private async pull(http: CampaignHttp, image: Image): Promise<void> {
    await this.checkImage(http, image, 'pull');
    this.counters.pulls++;
  }

  /** Deletes a manifest (and with it its tags), then unlinks its blobs no other image of the repository needs. */
  private async deleteImage(http: CampaignHttp, image: Image): Promise<void> {
    const tagsOf = [...this.tags].filter(([, t]) => t.state === 'known' && t.value === image.digest).map(([tag]) => tag);
    image.state = 'unknown';
    for (const t of tagsOf) this.tags.set(t, { state: 'unknown' });
    const res = await http.send('DELETE', `/v2/${this.repo}/manifests/${image.digest}`);
    this.expect(res, [202], `DELETE manifest ${image.digest}`);
    image.state = 'deleted';
    for (const t of tagsOf) this.tags.set(t, { state: 'known', value: null });
    this.counters.manifestDeletes++;
    const needed = new Set([...this.images.values()].filter((i) => i.state !== 'deleted').flatMap((i) => i.blobs.map((b) => b.digest)));
    for (const b of image.blobs) if (!needed.has(b.digest) && rand() < 0.8) await this.unlink(http, b.digest);
  }

  private async unlink(http: CampaignHttp, digest: string): Promise<void> {
    const link = this.links.get(digest);
    if (!link) return;
    const wasLinked = link.state === 'known' ? link.value : undefined;
    if (wasLinked === false) return;
    this.links.set(digest, { state: 'unknown', size: link.size });
    const res = await http.send('DELETE', `/v2/${this.repo}/blobs/${digest}`);
    // A link whose state was unknown (its push was cut off by a kill) may or may not exist.
    this.expect(res, wasLinked ? [202] : [202, 404], `DELETE blob ${digest}`);
    if (res.status === 404) assert.equal(errorCode(res, 'DELETE blob'), 'BLOB_UNKNOWN');
    this.links.set(digest, { state: 'known', value: false, size: link.size });
    if (res.status === 202) this.counters.blobDeletes++;
  }

  private async deleteTag(http: CampaignHttp): Promise<void> {
    const tagged = [...this.tags].filter(([, t]) => t.state === 'known' && t.value !== null).map(([tag]) => tag);
    if (tagged.length === 0) return;
    const tag = pick(tagged);
    this.tags.set(tag, { state: 'unknown' });
    const res = await http.send('DELETE', `/v2/${this.repo}/manifests/${tag}`);
    this.expect(res, [202], `DELETE tag ${tag}`);
    this.tags.set(tag, { state: 'known', value: null });
    this.counters.tagDeletes++;
  }

  /** A blob pushed alone (a layer whose manifest never comes): unlinked later by cleanUp, then GC's. */
  private async pushLoneBlob(http: CampaignHttp): Promise<void> {
    await this.pushBlob(http, rand() < 0.3 ? pick(SHARED) : blobOf(randomBytes(randomSize())));
  }

  /** Unlinks blobs no image needs and deletes images left unknown by a kill (202 or 404 both fine for those). */
  private async cleanUp(http: CampaignHttp): Promise<void> {
    for (const image of [...this.images.values()].filter((i) => i.state === 'unknown')) {
      const res = await http.send('DELETE', `/v2/${this.repo}/manifests/${image.digest}`);
      this.expect(res, [202, 404], `DELETE manifest ${image.digest} of unknown state`);
      image.state = 'deleted';
      // Its tags: a tag of unknown state may have pointed at it; they stay unknown.
    }
    const needed = new Set([...this.images.values()].filter((i) => i.state !== 'deleted').flatMap((i) => i.blobs.map((b) => b.digest)));
    for (const [digest, link] of [...this.links]) if (!needed.has(digest) && !(link.state === 'known' && !link.value)) await this.unlink(http, digest);
  }

  /** A chunked upload left unfinished: a session for the purge, bytes for nobody. */
  private async abandonUpload(http: CampaignHttp): Promise<void> {
    const res = await http.send('POST', `/v2/${this.repo}/blobs/uploads/`);
    this.expect(res, [202], 'POST upload session');
    const bytes = randomBytes(randomSize());
    const patch = await http.send('PATCH', http.header(res, 'location')!, { headers: { 'content-range': `0-${bytes.length - 1}` }, body: bytes });
    this.expect(patch, [202], 'PATCH of an abandoned upload');
    this.counters.abandonedUploads++;
  }

  // ---- the check after a restart -------------------------------------------------------------

  /** The manifest's exact bytes and its blobs' (those not in `pulled` yet, which collects them). */
  async checkImage(http: CampaignHttp, image: Image, what: string, pulled = new Set<string>()): Promise<void> {
    const m = await http.send('GET', `/v2/${this.repo}/manifests/${image.digest}`, { headers: { accept: OCI_MANIFEST } });
    assert.equal(m.status, 200, `${what}: acknowledged manifest ${this.repo}@${image.digest}: ${m.status} ${m.body.toString('utf8').slice(0, 300)}`);
    assert.ok(m.body.equals(image.bytes), `${what}: manifest ${image.digest} bytes differ`);
    for (const b of image.blobs) {
      if (pulled.has(b.digest)) continue;
      await this.checkBlob(http, b.digest, b.size, `${what}: blob ${b.digest} of acknowledged manifest ${image.digest}`);
      pulled.add(b.digest);
    }
  }

  async checkBlob(http: CampaignHttp, digest: string, size: number, what: string): Promise<void> {
    const res = await http.send('GET', `/v2/${this.repo}/blobs/${digest}`);
    assert.equal(res.status, 200, `${what} in ${this.repo}: ${res.status} ${res.body.toString('utf8').slice(0, 300)}`);
    assert.equal(res.body.length, size, `${what}: size`);
    assert.equal(sha256(res.body), digest, `${what}: bytes differ`);
  }

  /**
   * Everything acknowledged is as the client was told. Returns the number of checks made. A
   * deletion is checked after the next two restarts, then forgotten (the ledger stays bounded).
   */
  async verify(http: CampaignHttp): Promise<number> {
    let checks = 0;
    const pulled = new Set<string>();
    for (const image of [...this.images.values()]) {
      if (image.state === 'live') await this.checkImage(http, image, 'after restart', pulled);
      else if (image.state === 'deleted') {
        const res = await http.send('HEAD', `/v2/${this.repo}/manifests/${image.digest}`);
        assert.equal(res.status, 404, `after restart: deleted manifest ${this.repo}@${image.digest} answered ${res.status}`);
        if ((image.deletedChecks = (image.deletedChecks ?? 0) + 1) >= 2) this.images.delete(image.digest);
      } else continue;
      checks++;
    }
    for (const [tag, t] of this.tags) {
      if (t.state !== 'known') continue;
      const res = await http.send('GET', `/v2/${this.repo}/manifests/${tag}`, { headers: { accept: OCI_MANIFEST } });
      if (t.value === null) assert.equal(res.status, 404, `after restart: deleted tag ${this.repo}:${tag} answered ${res.status}`);
      else {
        assert.equal(res.status, 200, `after restart: tag ${this.repo}:${tag}: ${res.status} ${res.body.toString('utf8').slice(0, 300)}`);
        assert.equal(http.header(res, 'docker-content-digest'), t.value, `after restart: tag ${this.repo}:${tag} moved`);
        assert.equal(sha256(res.body), t.value);
      }
      checks++;
    }
    for (const [digest, link] of this.links) {
      if (link.state !== 'known') continue;
      if (link.value) {
        if (!pulled.has(digest)) await this.checkBlob(http, digest, link.size, `after restart: acknowledged blob`);
      }
      else {
        // An unlinked blob may be linked again only through a manifest push of this client, which
        // would have made its state linked; so it must be unknown to the repository.
        const res = await http.send('HEAD', `/v2/${this.repo}/blobs/${digest}`);
        assert.equal(res.status, 404, `after restart: unlinked blob ${this.repo}@${digest} answered ${res.status}`);
        if ((link.deletedChecks = (link.deletedChecks ?? 0) + 1) >= 2) this.links.delete(digest);
      }
      checks++;
    }
    return checks;
  }
}

/** Kill -9 leaves the store consistent: fsck (content hashed) finds nothing and blobs/ holds only whole content. */
async function fsckClean(dir: string): Promise<{ manifests: number; blobLinks: number; orphans: number; bytesHashed: number }> {
  const store = new RegistryStore(dir);
  await store.open();
  try {
    const report = await fsck(store);
    assert.deepEqual(report.problems, [], 'fsck after kill -9');
    const audit = await auditBlobFiles(dir);
    assert.deepEqual(audit.corrupt, [], 'every file under blobs/ hashes to its name');
    return { manifests: report.manifests, blobLinks: report.blobLinks, orphans: report.orphans.count, bytesHashed: report.bytesHashed };
  } finally {
    await store.close();
  }
}

describe('crash campaign', () => {
  it(`kill -9 at a random moment, ${ROUNDS} rounds: fsck clean, every acknowledged push pullable byte-identical`, { timeout: 120_000 + ROUNDS * 30_000 }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-crash-campaign-'));
    const started = Date.now();
    const counters: Counters = { manifestsAcked: 0, blobsAcked: 0, mounts: 0, manifestDeletes: 0, tagDeletes: 0, blobDeletes: 0, pulls: 0, manifestBlobUnknown: 0, abandonedUploads: 0, cutOff: 0 };
    const failures: string[] = [];
    const clients = Array.from({ length: CLIENTS }, (_, i) => new Client(i, counters, failures));
    const serverErrors: string[] = [];
    const serverWarnings: string[] = [];
    let gcRuns = 0;
    let gcSignals = 0;
    let checks = 0;
    let listen = '127.0.0.1:0';
    t.diagnostic(`seed ${SEED} (BERTH_CAMPAIGN_SEED replays the clients' decisions), data ${dir}`);

    const start = async (): Promise<{ p: BerthProcess; http: CampaignHttp; stopGc: () => void }> => {
      const p = await startBerthProcess(dir, ['--gc-interval-hours', '0', '--gc-grace-minutes', '0'], { listen });
      listen = new URL(p.url).host; // the same port after every restart
      let partial = '';
      p.child.stdout!.on('data', (d: Buffer) => {
        partial += d.toString();
        const lines = partial.split('\n');
        partial = lines.pop()!;
        for (const l of lines) {
          if (l.includes('"garbage collection done"')) gcRuns++;
          if (/"level":(50|60)/.test(l) || /"status":5\d\d/.test(l)) serverErrors.push(l.slice(0, 2000));
          else if (l.includes('"level":40')) serverWarnings.push(l.slice(0, 2000));
        }
      });
      // GC every 1-2 s (SIGUSR2: one run now), the first one early.
      let gcTimer: NodeJS.Timeout;
      const gcLoop = (delay: number) => {
        gcTimer = setTimeout(() => {
          if (p.child.exitCode === null && p.child.signalCode === null) {
            p.child.kill('SIGUSR2');
            gcSignals++;
          }
          gcLoop(between(1000, 2000));
        }, delay);
      };
      gcLoop(between(0, 800));
      return { p, http: new CampaignHttp(p.url), stopGc: () => clearTimeout(gcTimer) };
    };

    try {
      let kills = 0;
      const phases = { start: 0, verify: 0, load: 0, stop: 0, fsck: 0 };
      const lap = (k: keyof typeof phases, since: number): number => {
        const now = Date.now();
        phases[k] += now - since;
        return now;
      };
      for (let round = 0; round < ROUNDS; round++) {
        let at = Date.now();
        const { p, http, stopGc } = await start();
        at = lap('start', at);
        try {
          // What the previous rounds acknowledged survived the kill and the restart.
          const counts = await Promise.all(clients.map((c) => c.verify(http)));
          checks += counts.reduce((a, b) => a + b, 0);
          at = lap('verify', at);
          let running = true;
          const loops = clients.map((c) => c.run(http, () => running));
          await sleep(between(50, 1500));
          at = lap('load', at);
          running = false;
          stopGc();
          p.child.kill('SIGKILL');
          assert.equal(await p.exited, 'SIGKILL');
          kills++;
          await Promise.all(loops);
          at = lap('stop', at);
        } finally {
          stopGc();
          if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
          await p.exited;
          await http.close();
        }
        assert.deepEqual(failures, [], `round ${round}: client failures`);
        assert.deepEqual(serverErrors, [], `round ${round}: errors in the server log`);
        await fsckClean(dir);
        lap('fsck', at);
      }
      t.diagnostic(`time per phase (ms, all rounds): ${JSON.stringify(phases)}`);

      // A last start: the final ledger, then a clean stop.
      const { p, http, stopGc } = await start();
      try {
        const counts = await Promise.all(clients.map((c) => c.verify(http)));
        checks += counts.reduce((a, b) => a + b, 0);
      } finally {
        stopGc();
        p.child.kill('SIGTERM');
        assert.equal(await p.exited, 0);
        await http.close();
      }
      const last = await fsckClean(dir);
      assert.deepEqual(serverErrors, []);
      for (const w of serverWarnings.slice(0, 5)) t.diagnostic(`server warning: ${w}`);
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      t.diagnostic(
        `${ROUNDS} rounds, ${kills} kills, ${seconds} s: ${counters.manifestsAcked} manifest pushes and ${counters.blobsAcked} blob pushes acknowledged (${counters.mounts} mounts), ` +
          `${counters.manifestDeletes} manifest, ${counters.tagDeletes} tag and ${counters.blobDeletes} blob-link deletes, ${counters.pulls} pulls checked, ` +
          `${counters.abandonedUploads} abandoned uploads, ${counters.cutOff} requests cut off by kills, ${counters.manifestBlobUnknown} MANIFEST_BLOB_UNKNOWN retries, ` +
          `${gcSignals} GC signals / ${gcRuns} GC runs completed, ${checks} ledger checks after restarts; last fsck: ${last.manifests} manifests, ${last.blobLinks} blob links, ${last.orphans} orphans, ${(last.bytesHashed / MiB).toFixed(1)} MiB hashed`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
