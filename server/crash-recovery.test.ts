// Faults of the process itself: a restart in the middle of a chunked upload, a kill -9 while bytes
// are streaming in, SIGTERM with a request in flight. The store must stay consistent: an upload
// resumes at its last acknowledged byte (or is cleanly unknown) and no half-written blob is served.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestRegistry } from './testing.js';
import { RegistryHttp } from '../conformance-tests/fixtures/http-client.js';
import { randomContent } from '../conformance-tests/fixtures/content.js';
import { openRequest } from '../conformance-tests/fixtures/raw-http.js';
import { auditBlobFiles, filesIn } from '../conformance-tests/fixtures/data-dir.js';
import { startBerthProcess } from '../conformance-tests/fixtures/berth-process.js';
import { RegistryStore } from '../storage/registry-store.js';
import { fsck } from '../storage/fsck.js';

const MiB = 1 << 20;

async function withDataDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-crash-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The fault left the store consistent: fsck (content hashed) finds no problem once the registry is closed. */
async function assertFsckClean(dataDir: string): Promise<void> {
  const store = new RegistryStore(dataDir);
  await store.open();
  try {
    const report = await fsck(store);
    assert.deepEqual(report.problems, [], 'fsck after the fault');
    assert.ok(report.manifests + report.blobLinks > 0, 'fsck saw the pushed data');
  } finally {
    await store.close();
  }
}

/** Waits for a state (not a duration): the upload file holding more than `bytes`. */
async function untilUploadFileExceeds(dataDir: string, id: string, bytes: number): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    const size = (await stat(join(dataDir, 'uploads', id)).catch(() => undefined))?.size ?? 0;
    if (size > bytes) return;
    await sleep(10);
  }
  assert.fail(`the upload file never grew past ${bytes} bytes`);
}

describe('crash recovery', { timeout: 60_000 }, () => {
  it('a chunked upload continues after the registry is stopped and started on the same data', async () => {
    await withDataDir(async (dir) => {
      const c = randomContent(3 * MiB + 123);
      let reg = await startTestRegistry({ data: dir });
      let http = new RegistryHttp(reg.url);
      const post = await http.post('/v2/restart/app/blobs/uploads/');
      const first = await http.patch(post.headers.get('Location')!, { headers: { 'Content-Range': `0-${2 * MiB - 1}` }, body: c.bytes.subarray(0, 2 * MiB) });
      assert.equal(first.status, 202);
      const location = first.headers.get('Location')!;
      await reg.close();

      reg = await startTestRegistry({ data: dir });
      http = new RegistryHttp(reg.url);
      try {
        const status = await http.get(location);
        assert.equal(status.status, 204);
        assert.equal(status.headers.get('Range'), `0-${2 * MiB - 1}`);
        const rest = await http.patch(location, { headers: { 'Content-Range': `${2 * MiB}-${c.size - 1}` }, body: c.bytes.subarray(2 * MiB) });
        assert.equal(rest.status, 202);
        // A wrong digest still fails after the restart: the rebuilt running hash is the real one.
        const done = await http.put(rest.headers.get('Location')!, { query: { digest: c.digest } });
        assert.equal(done.status, 201, done.body.toString());
        const got = await http.get(`/v2/restart/app/blobs/${c.digest}`);
        assert.equal(got.status, 200);
        assert.ok(got.body.equals(c.bytes), 'the blob is the concatenation of both chunks');
      } finally {
        // A grace period longer than the suite's timeout: close() must not wait on the idle
        // keep-alive socket of the blob GET just answered (it used to, for the whole grace period).
        await reg.close(10 * 60_000);
      }
      await assertFsckClean(dir);
    });
  });

  it('an upload whose data file is gone after a restart is cleanly unknown (404), never a 500', async () => {
    await withDataDir(async (dir) => {
      let reg = await startTestRegistry({ data: dir });
      let http = new RegistryHttp(reg.url);
      const post = await http.post('/v2/lost/app/blobs/uploads/');
      const patch = await http.patch(post.headers.get('Location')!, { headers: { 'Content-Range': '0-4' }, body: 'hello' });
      assert.equal(patch.status, 202);
      const location = patch.headers.get('Location')!;
      await reg.close();
      // The state a crash between "rename into blobs/" and "delete the session record" left behind.
      await rm(join(dir, 'uploads', location.split('/').pop()!));
      reg = await startTestRegistry({ data: dir });
      http = new RegistryHttp(reg.url);
      try {
        for (const res of [
          await http.patch(location, { headers: { 'Content-Range': '5-9' }, body: 'world' }),
          await http.put(location, { query: { digest: `sha256:${'0'.repeat(64)}` } }),
          await http.get(location),
        ]) {
          assert.equal(res.status, 404, res.body.toString());
          assert.equal(res.json<{ errors: Array<{ code: string }> }>().errors[0]?.code, 'BLOB_UPLOAD_UNKNOWN');
        }
        // Something stored after the fault, for fsck to check along.
        const after = randomContent(1000);
        assert.equal((await http.post('/v2/lost/app/blobs/uploads/', { query: { digest: after.digest }, body: after.bytes })).status, 201);
      } finally {
        await reg.close();
      }
      await assertFsckClean(dir);
    });
  });

  it('kill -9 of `berth serve` mid-upload: the upload resumes at the acknowledged byte, nothing half-written is served', async () => {
    await withDataDir(async (dir) => {
      // Chunks large against storage's write batching, so part of them surely reaches the disk.
      const c = randomContent(13 * MiB);
      const single = randomContent(4 * MiB);
      const p = await startBerthProcess(dir);
      const http = new RegistryHttp(p.url);
      const post = await http.post('/v2/crash/app/blobs/uploads/');
      const acked = await http.patch(post.headers.get('Location')!, { headers: { 'Content-Range': `0-${MiB - 1}` }, body: c.bytes.subarray(0, MiB) });
      assert.equal(acked.status, 202);
      const location = acked.headers.get('Location')!;
      const id = location.split('/').pop()!;

      // A chunk and a single-POST blob, both cut off by the kill after part of their bytes hit the disk.
      const chunk = openRequest(p.url, 'PATCH', location, { 'Content-Range': `${MiB}-${c.size - 1}`, 'Content-Length': String(c.size - MiB), 'Content-Type': 'application/octet-stream' });
      const mono = openRequest(p.url, 'POST', `/v2/crash/app/blobs/uploads/?digest=${single.digest}`, { 'Content-Length': String(single.size), 'Content-Type': 'application/octet-stream' });
      chunk.response.catch(() => undefined);
      mono.response.catch(() => undefined);
      chunk.req.on('error', () => undefined);
      mono.req.on('error', () => undefined);
      chunk.req.write(c.bytes.subarray(MiB, 9 * MiB));
      mono.req.write(single.bytes.subarray(0, 3 * MiB));
      await untilUploadFileExceeds(dir, id, MiB);
      p.child.kill('SIGKILL');
      assert.equal(await p.exited, 'SIGKILL');
      chunk.req.destroy();
      mono.req.destroy();

      const p2 = await startBerthProcess(dir);
      const http2 = new RegistryHttp(p2.url);
      try {
        // Neither blob is readable: no half-written content reached blobs/.
        for (const d of [c.digest, single.digest]) assert.equal((await http2.head(`/v2/crash/app/blobs/${d}`)).status, 404);
        const audit = await auditBlobFiles(dir);
        assert.deepEqual(audit.corrupt, [], 'every file under blobs/ hashes to its name');
        assert.deepEqual(await filesIn(join(dir, 'tmp')), [], 'the interrupted single POST left no temp file behind');

        const status = await http2.get(location);
        if (status.status === 204) {
          // Resumable: exactly at the acknowledged offset, not at whatever reached the disk.
          assert.equal(status.headers.get('Range'), `0-${MiB - 1}`);
          const rest = await http2.patch(location, { headers: { 'Content-Range': `${MiB}-${c.size - 1}` }, body: c.bytes.subarray(MiB) });
          assert.equal(rest.status, 202, rest.body.toString());
          const done = await http2.put(rest.headers.get('Location')!, { query: { digest: c.digest } });
          assert.equal(done.status, 201, done.body.toString());
        } else {
          assert.equal(status.status, 404, 'an upload that cannot resume is cleanly unknown');
          const again = await http2.post('/v2/crash/app/blobs/uploads/', { query: { digest: c.digest }, body: c.bytes });
          assert.equal(again.status, 201);
        }
        const got = await http2.get(`/v2/crash/app/blobs/${c.digest}`);
        assert.ok(got.body.equals(c.bytes));
        assert.equal(got.headers.get('Docker-Content-Digest'), c.digest);
      } finally {
        p2.child.kill('SIGTERM');
        assert.equal(await p2.exited, 0);
      }
      await assertFsckClean(dir);
    });
  });

  it('SIGTERM lets an in-flight upload finish, then exits 0; SIGINT exits 0', async () => {
    await withDataDir(async (dir) => {
      const c = randomContent(10 * MiB);
      const p = await startBerthProcess(dir);
      const post = await new RegistryHttp(p.url).post('/v2/term/app/blobs/uploads/');
      const location = post.headers.get('Location')!;
      const inflight = openRequest(p.url, 'PATCH', location, { 'Content-Range': `0-${c.size - 1}`, 'Content-Length': String(c.size), 'Content-Type': 'application/octet-stream' });
      inflight.req.write(c.bytes.subarray(0, 8 * MiB));
      // The request is in flight once its first bytes reached the upload file; signal only then.
      await untilUploadFileExceeds(dir, location.split('/').pop()!, 0);
      p.child.kill('SIGTERM');
      await p.waitForLog('stopping: finishing in-flight requests');
      inflight.req.end(c.bytes.subarray(8 * MiB));
      const res = await inflight.response;
      assert.equal(res.status, 202, res.body);
      assert.equal(res.headers.range, `0-${c.size - 1}`);
      assert.equal(await p.exited, 0);
      await assert.rejects(fetch(`${p.url}/v2/`), 'the registry no longer listens');

      const q = await startBerthProcess(dir);
      // The acknowledged chunk survived the shutdown.
      const status = await new RegistryHttp(q.url).get(location);
      assert.equal(status.headers.get('Range'), `0-${c.size - 1}`);
      q.child.kill('SIGINT');
      assert.equal(await q.exited, 0);
      // Only an upload session here (no blob yet): fsck must still find nothing wrong.
      const store = new RegistryStore(dir);
      await store.open();
      try {
        const report = await fsck(store, { uploadPurgeAgeMs: 0 });
        assert.deepEqual(report.problems, []);
        assert.equal(report.staleUploads, 1, 'the acknowledged session is there');
      } finally {
        await store.close();
      }
    });
  });
});
