// Bad input against a real in-process registry: each gets the spec's error (distribution-spec/
// spec.md#error-codes) and leaves the store as it was: nothing half-stored under the data folder.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startTestRegistry, type TestRegistry } from './testing.js';
import { RegistryHttp, type RegistryResponse } from '../conformance-tests/fixtures/http-client.js';
import { content, descriptor, digestOf, imageIndex, imageManifest, randomContent, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, type Content, type Manifest } from '../conformance-tests/fixtures/content.js';
import { openRequest, rawRequest } from '../conformance-tests/fixtures/raw-http.js';
import { auditBlobFiles, filesIn } from '../conformance-tests/fixtures/data-dir.js';

/** Asserts status and the JSON envelope's first code: Berth always answers with the envelope. */
function assertError(res: { status: number; body: Buffer | string }, status: number, code: string): void {
  const text = res.body.toString();
  assert.equal(res.status, status, text);
  const body = JSON.parse(text) as { errors: Array<{ code: string }> };
  assert.equal(body.errors[0]?.code, code, text);
}

describe('registry bad input', () => {
  let reg: TestRegistry;
  let http: RegistryHttp;
  before(async () => {
    reg = await startTestRegistry({ limits: { maxManifestBytes: 4 << 20, maxBlobBytes: 0 } });
    http = new RegistryHttp(reg.url);
  });
  after(() => reg.destroy());

  async function pushBlob(name: string, c: Content): Promise<void> {
    const post = await http.post(`/v2/${name}/blobs/uploads/`);
    assert.equal(post.status, 202);
    const put = await http.put(post.headers.get('Location')!, { query: { digest: c.digest }, body: c.bytes });
    assert.equal(put.status, 201, put.body.toString());
  }

  async function putManifest(name: string, ref: string, m: Manifest): Promise<RegistryResponse> {
    return http.put(`/v2/${name}/manifests/${ref}`, { headers: { 'Content-Type': m.mediaType }, body: m.bytes });
  }

  /** No upload files, no temp files, every blob file whole. */
  async function assertStoreClean(): Promise<string[]> {
    assert.deepEqual(await filesIn(join(reg.dataDir, 'tmp')), [], 'no temp files left behind');
    const audit = await auditBlobFiles(reg.dataDir);
    assert.deepEqual(audit.corrupt, [], 'every blob file hashes to its name');
    return audit.digests;
  }

  describe('repository names', () => {
    const bad = ['../x', 'a/../../x', 'Team/App', 'UPPER', '-lead', 'a//b', 'a/', `${'a'.repeat(300)}`, 'a__-b', 'x%2F..%2Fy'];
    for (const name of bad) {
      it(`NAME_INVALID for ${JSON.stringify(name.length > 40 ? `${name.slice(0, 10)}…(${name.length} chars)` : name)} on every endpoint`, async () => {
        for (const [method, path] of [
          ['GET', `/v2/${name}/tags/list`],
          ['GET', `/v2/${name}/manifests/latest`],
          ['PUT', `/v2/${name}/manifests/latest`],
          ['HEAD', `/v2/${name}/blobs/${digestOf(Buffer.from('x'))}`],
          ['POST', `/v2/${name}/blobs/uploads/`],
        ] as const) {
          const res = await rawRequest(reg.url, method, path, { headers: { 'Content-Type': OCI_MANIFEST }, ...(method === 'PUT' ? { body: '{}' } : {}) });
          if (method === 'HEAD') assert.equal(res.status, 400, `${method} ${path}`);
          else assertError(res, 400, 'NAME_INVALID');
        }
      });
    }
    it('a 255-character name is valid, 256 is not', async () => {
      const ok = `${'a'.repeat(120)}/${'b'.repeat(134)}`;
      assert.equal(ok.length, 255);
      assert.equal((await http.post(`/v2/${ok}/blobs/uploads/`)).status, 202);
      assertError(await http.post(`/v2/${ok}b/blobs/uploads/`), 400, 'NAME_INVALID');
    });
    it('invalid names created nothing: no repository, no upload session', async () => {
      const catalog = (await http.get('/v2/_catalog')).json<{ repositories: string[] }>();
      assert.ok(!catalog.repositories.some((r) => r.includes('..') || /[A-Z]/.test(r)), JSON.stringify(catalog));
    });
  });

  describe('digests', () => {
    const bad = ['sha256:xyz', `sha256:${'a'.repeat(63)}`, `sha256:${'A'.repeat(64)}`, `md5:${'a'.repeat(32)}`, `sha512:${'a'.repeat(64)}`, 'sha256', 'notadigest:'];
    for (const d of bad) {
      it(`DIGEST_INVALID for ${JSON.stringify(d.slice(0, 30))}`, async () => {
        const name = 'bad/digest';
        const get = await rawRequest(reg.url, 'GET', `/v2/${name}/blobs/${d}`);
        // A string that is not a digest at all reads as a missing blob, never as a path.
        assert.ok(get.status === 400 || get.status === 404, `GET blob ${d}: ${get.status}`);
        const post = await http.post(`/v2/${name}/blobs/uploads/`);
        assertError(await http.put(post.headers.get('Location')!, { query: { digest: d }, body: 'x' }), 400, 'DIGEST_INVALID');
        assertError(await http.post(`/v2/${name}/blobs/uploads/`, { query: { digest: d }, body: 'x' }), 400, 'DIGEST_INVALID');
      });
    }

    it('wrong digest for the content (monolithic, single POST, chunked): DIGEST_INVALID and nothing stored', async () => {
      const name = 'bad/wrong-digest';
      const before = await assertStoreClean();
      const uploadsBefore = await filesIn(join(reg.dataDir, 'uploads'));
      const c = randomContent(300_000);
      const wrong = digestOf(randomBytes(10));
      // POST + PUT
      const post = await http.post(`/v2/${name}/blobs/uploads/`);
      const location = post.headers.get('Location')!;
      assertError(await http.put(location, { query: { digest: wrong }, body: c.bytes }), 400, 'DIGEST_INVALID');
      // The failed upload is over: its session is gone.
      assertError(await http.get(location), 404, 'BLOB_UPLOAD_UNKNOWN');
      // single POST
      assertError(await http.post(`/v2/${name}/blobs/uploads/`, { query: { digest: wrong }, body: c.bytes }), 400, 'DIGEST_INVALID');
      // chunked, then a closing PUT with the wrong digest
      const chunked = await http.post(`/v2/${name}/blobs/uploads/`);
      const patch = await http.patch(chunked.headers.get('Location')!, { headers: { 'Content-Range': `0-${c.size - 1}` }, body: c.bytes });
      assert.equal(patch.status, 202);
      assertError(await http.put(patch.headers.get('Location')!, { query: { digest: wrong } }), 400, 'DIGEST_INVALID');

      for (const d of [wrong, c.digest]) assert.equal((await http.head(`/v2/${name}/blobs/${d}`)).status, 404);
      const after = await assertStoreClean();
      assert.deepEqual(after.sort(), before.sort(), 'no blob file was added');
      assert.deepEqual((await filesIn(join(reg.dataDir, 'uploads'))).sort(), uploadsBefore.sort(), 'the failed sessions left no upload files');
    });
  });

  describe('chunked uploads', () => {
    const name = 'bad/chunks';
    async function started(): Promise<string> {
      const post = await http.post(`/v2/${name}/blobs/uploads/`);
      assert.equal(post.status, 202);
      return post.headers.get('Location')!;
    }

    it('malformed Content-Range: BLOB_UPLOAD_INVALID; end before start or a length mismatch: 416', async () => {
      const location = await started();
      for (const range of ['abc', '0-', '-5', 'bytes=a-b', '0-1-2']) {
        assertError(await http.patch(location, { headers: { 'Content-Range': range }, body: 'hello' }), 400, 'BLOB_UPLOAD_INVALID');
      }
      assertError(await http.patch(location, { headers: { 'Content-Range': '5-2' }, body: 'hello' }), 416, 'RANGE_INVALID');
      assertError(await http.patch(location, { headers: { 'Content-Range': '0-9' }, body: 'hello' }), 416, 'RANGE_INVALID');
      const status = await http.get(location);
      assert.equal(status.status, 204);
      assert.equal(status.headers.get('Range'), '0-0', 'nothing was appended');
    });

    it('a replayed chunk answers 416 and is not appended twice; the upload still completes', async () => {
      const c = randomContent(2000);
      let location = await started();
      const first = await http.patch(location, { headers: { 'Content-Range': '0-999' }, body: c.bytes.subarray(0, 1000) });
      assert.equal(first.status, 202);
      location = first.headers.get('Location')!;
      assertError(await http.patch(location, { headers: { 'Content-Range': '0-999' }, body: c.bytes.subarray(0, 1000) }), 416, 'RANGE_INVALID');
      assertError(await http.patch(location, { headers: { 'Content-Range': '1001-1999' }, body: c.bytes.subarray(1001) }), 416, 'RANGE_INVALID');
      assert.equal((await http.get(location)).headers.get('Range'), '0-999');
      const second = await http.patch(location, { headers: { 'Content-Range': '1000-1999' }, body: c.bytes.subarray(1000) });
      assert.equal(second.status, 202);
      const done = await http.put(second.headers.get('Location')!, { query: { digest: c.digest } });
      assert.equal(done.status, 201, done.body.toString());
      assert.deepEqual((await http.get(`/v2/${name}/blobs/${c.digest}`)).body, c.bytes);
    });

    it('a streamed chunk shorter than its Content-Range: 416, not half-appended; the upload still completes', async () => {
      const c = randomContent(4000);
      const location = await started();
      // No Content-Length (chunked transfer encoding): the shortfall shows only once bytes were written.
      const short = openRequest(reg.url, 'PATCH', location, { 'Content-Range': '0-3999', 'Content-Type': 'application/octet-stream' });
      short.req.end(c.bytes.subarray(0, 2500));
      const res = await short.response;
      assertError({ status: res.status, body: res.body }, 416, 'RANGE_INVALID');
      assert.equal((await http.get(location)).headers.get('Range'), '0-0');
      const full = await http.patch(location, { headers: { 'Content-Range': '0-3999' }, body: c.bytes });
      assert.equal(full.status, 202);
      // The running hash had absorbed the refused bytes: the digest check proves it was rebuilt.
      const done = await http.put(full.headers.get('Location')!, { query: { digest: c.digest } });
      assert.equal(done.status, 201, done.body.toString());
      assert.deepEqual((await http.get(`/v2/${name}/blobs/${c.digest}`)).body, c.bytes);
    });

    it('unknown or foreign upload ids: 404 BLOB_UPLOAD_UNKNOWN', async () => {
      const c = content('z');
      for (const id of ['0b0f3b37-8c1e-4b7a-9f84-3a5e2ad1c0de', 'not-a-uuid', '..%2F..%2Fmeta']) {
        const path = `/v2/${name}/blobs/uploads/${id}`;
        assertError(await http.get(path), 404, 'BLOB_UPLOAD_UNKNOWN');
        assertError(await http.patch(path, { body: 'x' }), 404, 'BLOB_UPLOAD_UNKNOWN');
        assertError(await http.put(path, { query: { digest: c.digest }, body: c.bytes }), 404, 'BLOB_UPLOAD_UNKNOWN');
        assertError(await http.delete(path), 404, 'BLOB_UPLOAD_UNKNOWN');
      }
      // A session belongs to the repository that opened it.
      const location = await started();
      const id = location.split('/').pop()!;
      assertError(await http.get(`/v2/other/repo/blobs/uploads/${id}`), 404, 'BLOB_UPLOAD_UNKNOWN');
      assertError(await http.put(`/v2/other/repo/blobs/uploads/${id}`, { query: { digest: c.digest }, body: c.bytes }), 404, 'BLOB_UPLOAD_UNKNOWN');
      assert.equal((await http.get(location)).status, 204, 'the session itself is untouched');
    });
  });

  describe('manifests', () => {
    const name = 'bad/manifests';
    let config: Content;
    before(async () => {
      config = randomContent(100);
      await pushBlob(name, config);
    });

    it('larger than 4 MiB: 413 SIZE_INVALID, nothing stored; 4 MiB minus a little is accepted', async () => {
      const big = imageManifest({ config: descriptor(config, OCI_CONFIG), layers: [], annotations: { pad: 'x'.repeat((4 << 20) + 10) } });
      assertError(await putManifest(name, 'huge', big), 413, 'SIZE_INVALID');
      assert.equal((await http.get(`/v2/${name}/manifests/huge`)).status, 404);
      assert.equal((await http.get(`/v2/${name}/manifests/${big.digest}`)).status, 404);
      // spec.md#pushing-manifests: registries should accept at least 4 MB.
      const large = imageManifest({ config: descriptor(config, OCI_CONFIG), layers: [], annotations: { pad: 'x'.repeat(4_000_000) } });
      assert.equal((await putManifest(name, 'large', large)).status, 201);
    });

    it('not JSON, not an object, wrong schema or media type mismatch: 400 MANIFEST_INVALID', async () => {
      const bodies: Array<[string, string]> = [
        ['this is not json', OCI_MANIFEST],
        ['[1,2,3]', OCI_MANIFEST],
        ['{"schemaVersion":2', OCI_MANIFEST],
        ['{"schemaVersion":3,"config":{},"layers":[]}', OCI_MANIFEST],
        [JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: descriptor(config, OCI_CONFIG), layers: 'nope' }), OCI_MANIFEST],
        [JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { ...descriptor(config, OCI_CONFIG), digest: 'sha256:zz' }, layers: [] }), OCI_MANIFEST],
        [JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: descriptor(config, OCI_CONFIG), layers: [] }), 'application/vnd.oci.image.index.v1+json'],
      ];
      for (const [body, type] of bodies) {
        assertError(await http.put(`/v2/${name}/manifests/broken`, { headers: { 'Content-Type': type }, body }), 400, 'MANIFEST_INVALID');
      }
      assert.equal((await http.get(`/v2/${name}/manifests/broken`)).status, 404);
    });

    it('pushed by digest with other bytes: DIGEST_INVALID', async () => {
      const m = imageManifest({ config: descriptor(config, OCI_CONFIG), layers: [] });
      assertError(await putManifest(name, digestOf(randomBytes(4)), m), 400, 'DIGEST_INVALID');
      assertError(await putManifest(name, 'sha256:bad', m), 400, 'DIGEST_INVALID');
    });

    it('missing layer, config or child manifest: 400 MANIFEST_BLOB_UNKNOWN naming them; nothing stored', async () => {
      const missing = randomContent(50);
      const m = imageManifest({ config: descriptor(config, OCI_CONFIG), layers: [descriptor(missing, OCI_LAYER)] });
      const res = await putManifest(name, 'missing', m);
      assertError(res, 400, 'MANIFEST_BLOB_UNKNOWN');
      assert.ok(res.body.toString().includes(missing.digest), 'the error names the missing blob');
      const noConfig = imageManifest({ config: descriptor(randomContent(20), OCI_CONFIG), layers: [] });
      assertError(await putManifest(name, 'missing', noConfig), 400, 'MANIFEST_BLOB_UNKNOWN');
      const child = imageManifest({ config: descriptor(config, OCI_CONFIG), layers: [], annotations: { child: 'never pushed' } });
      const index = imageIndex({ manifests: [descriptor(child, child.mediaType)] });
      assertError(await putManifest(name, 'missing', index), 400, 'MANIFEST_BLOB_UNKNOWN');
      assert.equal((await http.get(`/v2/${name}/manifests/missing`)).status, 404);
    });

    it('invalid tags: 400 TAG_INVALID', async () => {
      const m = imageManifest({ config: descriptor(config, OCI_CONFIG), layers: [] });
      for (const tag of ['-lead', '.dot', `${'t'.repeat(129)}`]) assertError(await putManifest(name, tag, m), 400, 'TAG_INVALID');
    });
  });

  describe('isolation and concurrency', () => {
    it('a blob uploaded to repository A is 404 in B until mounted', async () => {
      const c = randomContent(5000);
      await pushBlob('iso/a', c);
      assertError(await http.get(`/v2/iso/b/blobs/${c.digest}`), 404, 'BLOB_UNKNOWN');
      assert.equal((await http.head(`/v2/iso/b/blobs/${c.digest}`)).status, 404);
      const bConfig = randomContent(10);
      await pushBlob('iso/b', bConfig);
      assertError(await putManifest('iso/b', 'x', imageManifest({ config: descriptor(bConfig, OCI_CONFIG), layers: [descriptor(c, OCI_LAYER)] })), 400, 'MANIFEST_BLOB_UNKNOWN');
      // Mounting from a repository that lacks the blob does not leak it either: an upload session instead.
      assert.equal((await http.post('/v2/iso/b/blobs/uploads/', { query: { mount: c.digest, from: 'iso/c' } })).status, 202);
      assert.equal((await http.get(`/v2/iso/b/blobs/${c.digest}`)).status, 404);
      const mount = await http.post('/v2/iso/b/blobs/uploads/', { query: { mount: c.digest, from: 'iso/a' } });
      assert.equal(mount.status, 201);
      assert.deepEqual((await http.get(`/v2/iso/b/blobs/${c.digest}`)).body, c.bytes);
      // Deleting it from B leaves A's link alone.
      assert.equal((await http.delete(`/v2/iso/b/blobs/${c.digest}`)).status, 202);
      assert.equal((await http.get(`/v2/iso/b/blobs/${c.digest}`)).status, 404);
      assert.equal((await http.get(`/v2/iso/a/blobs/${c.digest}`)).status, 200);
    });

    it('concurrent pushes of the same blob all succeed and store one whole copy', async () => {
      const c = randomContent(3 << 20);
      const results = await Promise.all(
        Array.from({ length: 6 }, async (_, i) => {
          const name = `race/blob${i % 2}`;
          if (i % 3 === 0) return http.post(`/v2/${name}/blobs/uploads/`, { query: { digest: c.digest }, body: c.bytes });
          const post = await http.post(`/v2/${name}/blobs/uploads/`);
          return http.put(post.headers.get('Location')!, { query: { digest: c.digest }, body: c.bytes });
        }),
      );
      for (const r of results) assert.equal(r.status, 201, r.body.toString());
      for (const name of ['race/blob0', 'race/blob1']) assert.deepEqual((await http.get(`/v2/${name}/blobs/${c.digest}`)).body, c.bytes);
      const digests = await assertStoreClean();
      assert.equal(digests.filter((d) => d === c.digest).length, 1);
    });

    it('concurrent pushes of one tag: every push lands, the tag names one of them, whole', async () => {
      const name = 'race/tag';
      const config = randomContent(64);
      await pushBlob(name, config);
      const manifests = Array.from({ length: 8 }, (_, i) => imageManifest({ config: descriptor(config, OCI_CONFIG), layers: [], annotations: { i: String(i) } }));
      const results = await Promise.all(manifests.map((m) => putManifest(name, 'latest', m)));
      for (const r of results) assert.equal(r.status, 201);
      const res = await http.get(`/v2/${name}/manifests/latest`);
      assert.equal(res.status, 200);
      const winner = manifests.find((m) => m.digest === res.headers.get('Docker-Content-Digest'));
      assert.ok(winner, 'the tag points at one of the pushed manifests');
      assert.deepEqual(res.body, winner.bytes);
      for (const m of manifests) assert.equal((await http.head(`/v2/${name}/manifests/${m.digest}`)).status, 200);
      const tags = (await http.get(`/v2/${name}/tags/list`)).json<{ tags: string[] }>().tags;
      assert.deepEqual(tags, ['latest']);
    });
  });

  it('delete disabled: 405 UNSUPPORTED for manifests, tags and blobs', async () => {
    const ro = await startTestRegistry({ delete: false });
    try {
      const h = new RegistryHttp(ro.url);
      const c = randomContent(10);
      const post = await h.post('/v2/ro/app/blobs/uploads/', { query: { digest: c.digest }, body: c.bytes });
      assert.equal(post.status, 201);
      assertError(await h.delete(`/v2/ro/app/blobs/${c.digest}`), 405, 'UNSUPPORTED');
      assertError(await h.delete('/v2/ro/app/manifests/latest'), 405, 'UNSUPPORTED');
      assert.equal((await h.get(`/v2/ro/app/blobs/${c.digest}`)).status, 200);
    } finally {
      await ro.destroy();
    }
  });
});
