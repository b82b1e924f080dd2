// The disk-full campaign of the reliability issue: `berth serve`'s data folder (blobs, uploads,
// tmp and LevelDB) on a small tmpfs, filled by pushes. Every refused request gets a spec error
// envelope (507 once the disk is full: server/app.ts), the process never dies, nothing
// half-stored is visible (every file under blobs/ hashes to its name, tmp/ is empty, a blob whose
// push failed is unknown), everything acknowledged stays pullable; once space returns, the same
// process takes pushes again; after a stop, fsck is clean and a restart serves every push the
// registry acknowledged, including those acknowledged while the disk was full.
//
// Needs root (mount -t tmpfs); skipped with the reason otherwise. 3 s on idle cores, 20 s loaded.
// BERTH_DISKFULL_MIB sizes the tmpfs (default 64).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtemp, open, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBerthProcess, type BerthProcess } from '../conformance-tests/fixtures/berth-process.js';
import { auditBlobFiles, filesIn } from '../conformance-tests/fixtures/data-dir.js';
import { CampaignHttp, errorCode, sha256, type CampaignResponse } from '../conformance-tests/fixtures/campaign.js';
import { RegistryStore } from '../storage/registry-store.js';
import { fsck } from '../storage/fsck.js';

const SIZE_MIB = Number(process.env.BERTH_DISKFULL_MIB ?? 64);
const KiB = 1024;
const MiB = 1024 * KiB;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';

interface Blob {
  digest: string;
  size: number;
  bytes: Buffer;
}
const blobOf = (bytes: Buffer): Blob => ({ digest: sha256(bytes), size: bytes.length, bytes });

interface Image {
  repo: string;
  tag: string;
  digest: string;
  bytes: Buffer;
  blobs: Blob[];
}

/** Fills the file system of `path` to its last byte: appends until ENOSPC. Returns the bytes written. */
async function fillUp(path: string): Promise<number> {
  const fh = await open(path, 'a');
  let total = 0;
  try {
    for (const size of [MiB, 64 * KiB, 4 * KiB, 512, 64, 1]) {
      const buf = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          const { bytesWritten } = await fh.write(buf);
          total += bytesWritten;
          if (bytesWritten < size) break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw e;
        }
      }
    }
  } finally {
    await fh.close();
  }
  return total;
}

function mountTmpfs(dir: string, mib: number): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: mounting a tmpfs needs root';
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m`, 'tmpfs', dir], { stdio: 'pipe' });
    return undefined;
  } catch (e) {
    return `mount -t tmpfs failed: ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`;
  }
}

describe('disk-full campaign', () => {
  it(`a ${SIZE_MIB} MiB tmpfs filled by pushes: spec errors, nothing half-stored, service resumes when space returns`, { timeout: 300_000 }, async (t) => {
    const mnt = await mkdtemp(join(tmpdir(), 'berth-diskfull-'));
    const skip = mountTmpfs(mnt, SIZE_MIB);
    if (skip) {
      await rm(mnt, { recursive: true, force: true });
      t.skip(skip);
      return;
    }
    const data = join(mnt, 'data');
    // Half the disk is a file made before the registry starts: removing it is "space returns".
    const filler = join(mnt, 'filler');
    const lastBytes = join(mnt, 'filler-last-bytes');
    let p: BerthProcess | undefined;
    let http: CampaignHttp | undefined;
    const serverErrors: string[] = [];
    const serverLog: string[] = []; // errors other than "storage full", shown when the test fails
    const watch = (proc: BerthProcess) => {
      let partial = '';
      proc.child.stdout!.on('data', (d: Buffer) => {
        partial += d.toString();
        const lines = partial.split('\n');
        partial = lines.pop()!;
        for (const l of lines) {
          if (/"level":60/.test(l) || /uncaught|unhandled/i.test(l)) serverErrors.push(l.slice(0, 2000));
          if (/"level":50/.test(l) && !l.includes('"storage full"')) serverLog.push(l.slice(0, 1500));
        }
      });
    };
    try {
      const fh = await open(filler, 'w');
      for (let i = 0; i < SIZE_MIB / 2; i++) await fh.write(Buffer.alloc(MiB, 0x5a));
      await fh.close();
      p = await startBerthProcess(data, ['--gc-interval-hours', '0']);
      watch(p);
      http = new CampaignHttp(p.url);
      const h = http;
      const acked: Image[] = [];
      const refused = new Map<string, number>(); // "<status> <code> <what>" → count
      const failedBlobs = new Map<string, string>(); // refused blob digest → its repository
      let serial = 0;

      /** An answer that is not `ok` must be a spec error envelope (never a dropped connection). */
      const answer = async (what: string, ok: number[], send: () => Promise<CampaignResponse>): Promise<CampaignResponse | undefined> => {
        const res = await send(); // a connection error fails the test: the process must answer
        if (ok.includes(res.status)) return res;
        assert.ok(res.status >= 400 && res.status < 600, `${what}: ${res.status}`);
        const code = errorCode(res, what);
        assert.ok(res.status !== 500, `${what}: a generic 500 (${code}: ${res.body.toString('utf8').slice(0, 300)}), not the storage-full answer`);
        const key = `${res.status} ${code} ${what}`;
        refused.set(key, (refused.get(key) ?? 0) + 1);
        return undefined;
      };

      /** One blob by one of the three ways; true when acknowledged. */
      const pushBlob = async (repo: string, b: Blob, how: number): Promise<boolean> => {
        const base = `/v2/${repo}/blobs/uploads/`;
        let ok: boolean;
        if (how % 3 === 0) {
          ok = (await answer('single POST', [201], () => h.send('POST', base, { query: { digest: b.digest }, body: b.bytes }))) !== undefined;
        } else {
          const post = await answer('POST session', [202], () => h.send('POST', base));
          if (!post) return false;
          let location = h.header(post, 'location')!;
          if (how % 3 === 1) {
            ok = (await answer('monolithic PUT', [201], () => h.send('PUT', location, { query: { digest: b.digest }, body: b.bytes }))) !== undefined;
          } else {
            ok = true;
            for (let off = 0; off < b.size && ok; off += MiB) {
              const end = Math.min(b.size, off + MiB);
              const res = await answer('PATCH chunk', [202], () => h.send('PATCH', location, { headers: { 'content-range': `${off}-${end - 1}` }, body: b.bytes.subarray(off, end) }));
              if (!res) {
                ok = false;
                // The session still answers, at its last acknowledged byte.
                const status = await h.send('GET', location);
                assert.equal(status.status, 204, `upload status after a refused chunk: ${status.status}`);
                assert.equal(h.header(status, 'range'), `0-${Math.max(0, off - 1)}`);
              } else location = h.header(res, 'location')!;
            }
            if (ok) ok = (await answer('closing PUT', [201], () => h.send('PUT', location, { query: { digest: b.digest } }))) !== undefined;
          }
        }
        if (ok) failedBlobs.delete(b.digest);
        else failedBlobs.set(b.digest, repo);
        return ok;
      };

      const pushImage = async (repo: string, layerSizes: number[]): Promise<boolean> => {
        const config = blobOf(Buffer.from(JSON.stringify({ serial: serial++, architecture: 'amd64', os: 'linux' })));
        const layers = layerSizes.map((n) => blobOf(randomBytes(n)));
        for (const [i, b] of [config, ...layers].entries()) if (!(await pushBlob(repo, b, serial + i))) return false;
        const bytes = Buffer.from(
          JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size }, layers: layers.map((l) => ({ mediaType: OCI_LAYER, digest: l.digest, size: l.size })) }),
        );
        const tag = `v${serial}`;
        if (!(await answer('manifest PUT', [201], () => h.send('PUT', `/v2/${repo}/manifests/${tag}`, { headers: { 'content-type': OCI_MANIFEST }, body: bytes })))) return false;
        acked.push({ repo, tag, digest: sha256(bytes), bytes, blobs: [config, ...layers] });
        return true;
      };

      const checkImage = async (img: Image, what: string): Promise<void> => {
        const m = await h.send('GET', `/v2/${img.repo}/manifests/${img.tag}`, { headers: { accept: OCI_MANIFEST } });
        assert.equal(m.status, 200, `${what}: ${img.repo}:${img.tag} ${m.status} ${m.body.toString('utf8').slice(0, 200)}`);
        assert.ok(m.body.equals(img.bytes), `${what}: manifest bytes of ${img.repo}:${img.tag}`);
        for (const b of img.blobs) {
          const r = await h.send('GET', `/v2/${img.repo}/blobs/${b.digest}`);
          assert.equal(r.status, 200, `${what}: blob ${b.digest}`);
          assert.ok(r.body.equals(b.bytes), `${what}: blob ${b.digest} bytes`);
        }
      };

      const nothingHalfStored = async (what: string): Promise<void> => {
        const audit = await auditBlobFiles(data);
        assert.deepEqual(audit.corrupt, [], `${what}: every file under blobs/ hashes to its name`);
        assert.deepEqual(await filesIn(join(data, 'tmp')), [], `${what}: no temp file left behind`);
        for (const [d, repo] of failedBlobs) {
          if (acked.some((i) => i.blobs.some((b) => b.digest === d))) continue;
          if (!audit.digests.includes(d)) continue;
          // Refused at the link (the blob placed, then the metadata write found the disk full):
          // whole content that no repository serves, left to GC (storage/uploads.ts, complete()).
          const head = await h.send('HEAD', `/v2/${repo}/blobs/${d}`);
          assert.equal(head.status, 404, `${what}: the refused blob ${d} is not served by ${repo}`);
        }
      };

      // 1. Fill the disk with pushes from three clients (blobs of 256 KiB to 6 MiB, every way of
      // pushing) until each has been refused a few times.
      const started = Date.now();
      let attempts = 0;
      await Promise.all(
        [0, 1, 2].map(async (c) => {
          let refusedHere = 0;
          for (let i = 0; refusedHere < 4 && i < 100; i++) {
            attempts++;
            const sizes = Array.from({ length: 1 + (i % 2) }, () => 256 * KiB + Math.floor(Math.random() * 6 * MiB));
            if (!(await pushImage(`full/c${c}`, sizes))) refusedHere++;
          }
        }),
      );
      assert.ok(refused.size > 0, 'the disk filled up');
      assert.ok(acked.length > 0, 'pushes were acknowledged before it did');
      await nothingHalfStored('disk full');

      // 2. To the last byte: small writes (upload sessions, tags, manifests: LevelDB and tiny
      // temp files) are refused cleanly too, and reads still work.
      const filled = await fillUp(lastBytes);
      const tiny = blobOf(randomBytes(100));
      await pushBlob('full/tiny', tiny, 0);
      await pushBlob('full/tiny', tiny, 1);
      // Upload sessions are LevelDB writes and an empty file: forty of them outgrow whatever room
      // the last page of LevelDB's log had, so LevelDB's own writes fail too.
      let sessions = 0;
      for (let i = 0; i < 40; i++) if (await answer('POST session', [202], () => h.send('POST', '/v2/full/tiny/blobs/uploads/'))) sessions++;
      assert.ok([...refused.keys()].some((k) => k.startsWith('507') && k.endsWith('POST session')), `LevelDB writes were refused (${sessions} sessions made)`);
      const first = acked[0]!;
      await answer('manifest PUT (stored manifest, new tag)', [201], () => h.send('PUT', `/v2/${first.repo}/manifests/again`, { headers: { 'content-type': OCI_MANIFEST }, body: first.bytes }));
      const newest = acked[acked.length - 1]!;
      if (await answer('tag DELETE', [202], () => h.send('DELETE', `/v2/${newest.repo}/manifests/${newest.tag}`))) acked.pop();
      for (let i = 0; i < 5; i++) await pushImage('full/last', [4 * KiB]);
      const v2 = await h.send('GET', '/v2/');
      assert.equal(v2.status, 200, 'the registry still answers');
      assert.equal(p.child.exitCode, null, 'the process is alive');
      for (const img of acked) await checkImage(img, 'with the disk full');
      await nothingHalfStored('disk full to the last byte');
      const fullFor = Date.now() - started;
      const refusedText = () => [...refused].map(([k, n]) => `${k} ×${n}`).join('; ');
      t.diagnostic(`refused while full: ${refusedText()}`);

      // 3. Space returns: the same process takes pushes and deletes again.
      await unlink(filler);
      await unlink(lastBytes);
      for (const c of [0, 1, 2]) assert.ok(await pushImage(`full/c${c}`, [MiB + c, 300 * KiB]), `push after space returned (client ${c})`);
      assert.ok(await pushBlob('full/tiny', tiny, 2), 'the blob refused before');
      assert.ok(await answer('manifest PUT (new tag)', [201], () => h.send('PUT', `/v2/${first.repo}/manifests/again`, { headers: { 'content-type': OCI_MANIFEST }, body: first.bytes })), 'a tag after space returned');
      const deleted = acked.shift()!;
      assert.ok(await answer('manifest DELETE', [202], () => h.send('DELETE', `/v2/${deleted.repo}/manifests/${deleted.digest}`)), 'a delete after space returned');
      for (const img of acked) await checkImage(img, 'after space returned');
      await nothingHalfStored('after space returned');

      // 4. Stop; fsck; a restart serves every acknowledged push (the LevelDB log survived the
      // refused writes), and the deleted manifest stays deleted.
      p.child.kill('SIGTERM');
      assert.equal(await p.exited, 0, 'a clean stop');
      await http.close();
      const store = new RegistryStore(data);
      await store.open();
      try {
        const report = await fsck(store);
        assert.deepEqual(report.problems, [], 'fsck after the disk-full campaign');
      } finally {
        await store.close();
      }
      p = await startBerthProcess(data, ['--gc-interval-hours', '0']);
      watch(p);
      http = new CampaignHttp(p.url);
      const h2 = http;
      for (const img of acked) {
        const m = await h2.send('GET', `/v2/${img.repo}/manifests/${img.tag}`, { headers: { accept: OCI_MANIFEST } });
        assert.equal(m.status, 200, `after restart: ${img.repo}:${img.tag}`);
        assert.ok(m.body.equals(img.bytes));
        for (const b of img.blobs) assert.equal(sha256((await h2.send('GET', `/v2/${img.repo}/blobs/${b.digest}`)).body), b.digest, `after restart: blob ${b.digest}`);
      }
      assert.equal((await h2.send('HEAD', `/v2/${deleted.repo}/manifests/${deleted.digest}`)).status, 404, 'the deleted manifest stays deleted');
      assert.deepEqual(serverErrors, [], 'no fatal or uncaught error in the server log');
      t.diagnostic(
        `${SIZE_MIB} MiB tmpfs: ${attempts} image pushes tried, ${acked.length} acknowledged images checked after restart, filler ${(filled / KiB).toFixed(0)} KiB at the end, ` +
          `disk full for ${(fullFor / 1000).toFixed(1)} s`,
      );
    } catch (e) {
      for (const l of serverLog.slice(0, 10)) t.diagnostic(`server: ${l}`);
      throw e;
    } finally {
      if (p && p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill('SIGKILL');
        await p.exited;
      }
      await http?.close();
      try {
        execFileSync('umount', [mnt], { stdio: 'pipe' });
      } catch {
        execFileSync('umount', ['-l', mnt], { stdio: 'pipe' });
      }
      await rm(mnt, { recursive: true, force: true });
    }
  });
});
