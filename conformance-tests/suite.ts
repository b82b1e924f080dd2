// The distribution-spec conformance suite (distribution-spec/spec.md, v1.1): its four workflows,
// pull, push, content discovery and content management, with each MUST as an assertion. SHOULDs
// are tested only where every mainstream registry follows them and say so in their title.
// Written against HTTP alone, so it runs against any registry: defineConformanceSuite(target).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { RegistryHttp, type RegistryResponse } from './fixtures/http-client.js';
import { expectError } from './error-envelope.js';
import type { ConformanceTarget, RunningTarget } from './target.js';
import {
  content,
  descriptor,
  digestOf,
  imageIndex,
  imageManifest,
  randomContent,
  EMPTY_CONFIG,
  DOCKER_CONFIG,
  DOCKER_LAYER,
  DOCKER_MANIFEST,
  OCI_CONFIG,
  OCI_EMPTY,
  OCI_INDEX,
  OCI_LAYER,
  type Content,
  type Manifest,
} from './fixtures/content.js';

const UUID_RE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

function bareType(h: string | null): string {
  return (h ?? '').split(';')[0]!.trim().toLowerCase();
}

function header(res: RegistryResponse, name: string): string {
  const v = res.headers.get(name);
  assert.ok(v !== null, `response ${res.status} MUST carry the ${name} header`);
  return v;
}

/**
 * spec.md#pulling-blobs: Docker-Content-Digest MUST match the body; it MAY use another algorithm
 * than the one requested (a registry may index a sha512 upload by sha256), so hash with its own.
 */
function assertDigestOfBody(value: string, body: Uint8Array): void {
  const algorithm = value.split(':')[0];
  assert.ok(algorithm === 'sha256' || algorithm === 'sha512', `Docker-Content-Digest ${value}: unexpected algorithm`);
  assert.equal(value, digestOf(body, algorithm), 'Docker-Content-Digest MUST be the digest of the body');
}

/** Parses `Link: <url>; rel="next"` (RFC 5988), or undefined. */
function nextLink(res: RegistryResponse): string | undefined {
  const link = res.headers.get('Link');
  if (!link) return undefined;
  const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(link);
  assert.ok(m, `Link header MUST follow RFC 5988 with rel="next", got ${link}`);
  return m[1];
}

export function defineConformanceSuite(target: ConformanceTarget): void {
  const gaps = target.knownGaps ?? {};
  // A gap naming no test would silently hide nothing: refuse it.
  for (const id of Object.keys(gaps)) if (!TEST_IDS.includes(id)) throw new Error(`${target.name}: knownGaps names unknown test ${id}`);

  describe(`distribution-spec conformance: ${target.name}`, { skip: target.unavailable ?? false }, () => {
    let running: RunningTarget | undefined;
    let http!: RegistryHttp;
    // Fresh repositories per run, so the suite can run repeatedly against a long-lived registry.
    const run = randomBytes(4).toString('hex');
    const repo = (purpose: string) => `conformance/${run}/${purpose}`;

    before(async () => {
      running = await target.start();
      http = new RegistryHttp(running.url);
    });
    after(async () => {
      await running?.stop?.();
    });

    /**
     * A test with a stable id. A known gap of this target runs too, expecting a failure: a gap
     * that starts passing fails the run until it is removed from the target's list, so the list
     * stays true (it used to be skipped, which could never fail).
     */
    const spec = (id: string, title: string, fn: () => Promise<void>) => {
      if (!TEST_IDS.includes(id)) throw new Error(`test id ${id} is missing from TEST_IDS`);
      const gap = gaps[id];
      if (!gap) {
        it(`[${id}] ${title}`, fn);
        return;
      }
      it(`[${id}] ${title} (known gap of ${target.name}: still fails)`, async (t) => {
        try {
          await fn();
        } catch (e) {
          t.diagnostic(`known gap: ${gap}; it fails with: ${(e as Error).message.split('\n')[0]}`);
          return;
        }
        assert.fail(`[${id}] now passes against ${target.name}: remove it from that target's knownGaps (its reason was: ${gap})`);
      });
    };

    // ---- helpers that push through the API, asserting as they go ---------------------------

    async function startUpload(name: string): Promise<string> {
      const res = await http.post(`/v2/${name}/blobs/uploads/`);
      assert.equal(res.status, 202, `POST upload: expected 202, got ${res.status} ${res.body.toString().slice(0, 200)}`);
      return header(res, 'Location');
    }

    /** POST then PUT (spec.md#post-then-put). */
    async function pushBlob(name: string, c: Content): Promise<RegistryResponse> {
      const location = await startUpload(name);
      const res = await http.put(location, { query: { digest: c.digest }, headers: { 'Content-Type': 'application/octet-stream' }, body: c.bytes });
      assert.equal(res.status, 201, `PUT upload: expected 201, got ${res.status} ${res.body.toString().slice(0, 200)}`);
      return res;
    }

    async function pushManifest(name: string, reference: string, m: Manifest, query?: Record<string, string[]>): Promise<RegistryResponse> {
      const res = await http.put(`/v2/${name}/manifests/${reference}`, { headers: { 'Content-Type': m.mediaType }, body: m.bytes, ...(query ? { query } : {}) });
      assert.equal(res.status, 201, `PUT manifest ${reference}: expected 201, got ${res.status} ${res.body.toString().slice(0, 300)}`);
      return res;
    }

    /** Pushes a config and `layers` blobs and an image manifest by tag; returns the manifest. */
    async function pushImage(name: string, tag: string, layerCount = 2, extra: Partial<Parameters<typeof imageManifest>[0]> = {}): Promise<{ manifest: Manifest; config: Content; layers: Content[] }> {
      const config = content(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, run }));
      const layers = Array.from({ length: layerCount }, () => randomContent(1024 + Math.floor(Math.random() * 1024)));
      for (const b of [config, ...layers]) await pushBlob(name, b);
      const manifest = imageManifest({ config: descriptor(config, OCI_CONFIG), layers: layers.map((l) => descriptor(l, OCI_LAYER)), ...extra });
      await pushManifest(name, tag, manifest);
      return { manifest, config, layers };
    }

    async function expectManifest(name: string, reference: string, m: Manifest): Promise<void> {
      const res = await http.get(`/v2/${name}/manifests/${reference}`, { headers: { Accept: m.mediaType } });
      assert.equal(res.status, 200, `GET manifest ${reference}`);
      assert.deepEqual(res.body, m.bytes, 'the registry MUST store and serve the exact bytes pushed');
      assertDigestOfBody(header(res, 'Docker-Content-Digest'), res.body);
    }

    async function expectBlob(name: string, c: Content, path = `/v2/${name}/blobs/${c.digest}`): Promise<void> {
      const res = await http.get(path);
      assert.equal(res.status, 200, `GET blob ${path}`);
      assert.deepEqual(res.body, c.bytes);
      assertDigestOfBody(header(res, 'Docker-Content-Digest'), res.body);
    }

    // ---- Pull ------------------------------------------------------------------------------

    describe('pull', () => {
      const name = repo('pull');
      let image: { manifest: Manifest; config: Content; layers: Content[] };
      before(async () => {
        image = await pushImage(name, 'v1');
      });

      spec('pull.base', 'GET /v2/ answers 200 (spec.md#determining-support)', async () => {
        const res = await http.get('/v2/');
        assert.equal(res.status, 200);
      });

      spec('pull.manifest.by-tag', 'GET manifest by tag: 200, exact bytes, Docker-Content-Digest', async () => {
        await expectManifest(name, 'v1', image.manifest);
      });

      spec('pull.manifest.by-digest', 'GET manifest by digest: 200, exact bytes, Docker-Content-Digest', async () => {
        await expectManifest(name, image.manifest.digest, image.manifest);
      });

      spec('pull.manifest.content-type', 'Content-Type of a pulled manifest is the pushed media type (SHOULD)', async () => {
        const res = await http.get(`/v2/${name}/manifests/v1`, { headers: { Accept: image.manifest.mediaType } });
        assert.equal(bareType(res.headers.get('Content-Type')), image.manifest.mediaType);
      });

      spec('pull.manifest.head', 'HEAD manifest by tag and digest: 200, Docker-Content-Digest, Content-Length', async () => {
        for (const ref of ['v1', image.manifest.digest]) {
          const res = await http.head(`/v2/${name}/manifests/${ref}`, { headers: { Accept: image.manifest.mediaType } });
          assert.equal(res.status, 200, `HEAD ${ref}`);
          assert.equal(header(res, 'Docker-Content-Digest'), image.manifest.digest);
          assert.equal(Number(header(res, 'Content-Length')), image.manifest.size);
          assert.equal(res.body.length, 0, 'a HEAD response has no body');
        }
      });

      spec('pull.manifest.missing', 'GET/HEAD of a manifest not in the repository: 404 MANIFEST_UNKNOWN', async () => {
        expectError(await http.get(`/v2/${name}/manifests/nosuchtag`), 404, ['MANIFEST_UNKNOWN'], 'GET unknown tag');
        expectError(await http.get(`/v2/${name}/manifests/${digestOf(randomBytes(8))}`), 404, ['MANIFEST_UNKNOWN'], 'GET unknown digest');
        assert.equal((await http.head(`/v2/${name}/manifests/nosuchtag`)).status, 404);
        assert.equal((await http.head(`/v2/${name}/manifests/${digestOf(randomBytes(8))}`)).status, 404);
      });

      spec('pull.manifest.unknown-repository', 'pulling from a nonexistent repository: 404', async () => {
        const res = await http.get(`/v2/${repo('never-pushed')}/manifests/latest`);
        expectError(res, 404, ['NAME_UNKNOWN', 'MANIFEST_UNKNOWN'], 'GET manifest of unknown repository');
      });

      spec('pull.blob.get', 'GET blob: 200, the bytes, Docker-Content-Digest matching them', async () => {
        for (const b of [image.config, ...image.layers]) await expectBlob(name, b);
      });

      spec('pull.blob.head', 'HEAD blob: 200, Docker-Content-Digest, Content-Length', async () => {
        const b = image.layers[0]!;
        const res = await http.head(`/v2/${name}/blobs/${b.digest}`);
        assert.equal(res.status, 200);
        assert.equal(header(res, 'Docker-Content-Digest'), b.digest);
        assert.equal(Number(header(res, 'Content-Length')), b.size);
      });

      spec('pull.blob.missing', 'GET/HEAD of a blob not in the repository: 404 BLOB_UNKNOWN', async () => {
        const d = digestOf(randomBytes(16));
        expectError(await http.get(`/v2/${name}/blobs/${d}`), 404, ['BLOB_UNKNOWN'], 'GET unknown blob');
        assert.equal((await http.head(`/v2/${name}/blobs/${d}`)).status, 404);
      });

      spec('pull.blob.range', 'GET blob with Range: 206 with Content-Range and the slice (SHOULD, RFC 9110 §14)', async () => {
        const b = image.layers[1]!;
        const res = await http.get(`/v2/${name}/blobs/${b.digest}`, { headers: { Range: 'bytes=10-99' } });
        assert.equal(res.status, 206);
        assert.equal(header(res, 'Content-Range'), `bytes 10-99/${b.size}`);
        assert.deepEqual(res.body, b.bytes.subarray(10, 100));
      });

      spec('pull.manifest.docker-schema2', 'a Docker schema2 manifest round-trips with its media type', async () => {
        const config = content(JSON.stringify({ architecture: 'amd64', os: 'linux', docker: run }));
        const layer = randomContent(512);
        await pushBlob(name, config);
        await pushBlob(name, layer);
        const m = imageManifest({ mediaType: DOCKER_MANIFEST, config: descriptor(config, DOCKER_CONFIG), layers: [descriptor(layer, DOCKER_LAYER)] });
        await pushManifest(name, 'docker', m);
        await expectManifest(name, 'docker', m);
        const res = await http.get(`/v2/${name}/manifests/docker`, { headers: { Accept: DOCKER_MANIFEST } });
        assert.equal(bareType(res.headers.get('Content-Type')), DOCKER_MANIFEST);
      });
    });

    // ---- Push ------------------------------------------------------------------------------

    describe('push', () => {
      const name = repo('push');

      spec('push.blob.post-put', 'POST then PUT: 202 with a UUID Location, then 201 with a pullable Location', async () => {
        const c = randomContent(3000);
        const location = await startUpload(name);
        assert.match(location, UUID_RE, 'the upload Location MUST contain a UUID');
        const res = await http.put(location, { query: { digest: c.digest }, headers: { 'Content-Type': 'application/octet-stream' }, body: c.bytes });
        assert.equal(res.status, 201);
        await expectBlob(name, c, header(res, 'Location'));
      });

      spec('push.blob.single-post', 'single POST with ?digest=: 201 with Location, or 202 and a PUT (spec.md#single-post)', async () => {
        const c = randomContent(2048);
        const res = await http.post(`/v2/${name}/blobs/uploads/`, { query: { digest: c.digest }, headers: { 'Content-Type': 'application/octet-stream' }, body: c.bytes });
        assert.ok(res.status === 201 || res.status === 202, `expected 201 or 202, got ${res.status}`);
        let location = header(res, 'Location');
        if (res.status === 202) {
          const put = await http.put(location, { query: { digest: c.digest }, headers: { 'Content-Type': 'application/octet-stream' }, body: c.bytes });
          assert.equal(put.status, 201);
          location = header(put, 'Location');
        }
        await expectBlob(name, c, location);
      });

      spec('push.blob.chunked', 'chunked: PATCHes answer 202 with Location and Range, GET 204, PUT 201', async () => {
        const post = await http.post(`/v2/${name}/blobs/uploads/`, { headers: { 'Content-Length': '0' } });
        assert.equal(post.status, 202);
        let location = header(post, 'Location');
        // Chunks other than the last SHOULD respect the registry's OCI-Chunk-Min-Length.
        const chunk = Math.max(4000, Number(post.headers.get('OCI-Chunk-Min-Length') ?? 0));
        const c = randomContent(chunk * 2 + 2000);
        const cuts = [0, chunk, chunk * 2, c.size];
        for (let i = 0; i + 1 < cuts.length; i++) {
          const [start, end] = [cuts[i]!, cuts[i + 1]!];
          const res = await http.patch(location, {
            headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${start}-${end - 1}` },
            body: c.bytes.subarray(start, end),
          });
          assert.equal(res.status, 202, `PATCH ${start}-${end - 1}: ${res.body.toString().slice(0, 200)}`);
          location = header(res, 'Location');
          assert.equal(header(res, 'Range'), `0-${end - 1}`);
          const status = await http.get(location);
          assert.equal(status.status, 204, 'GET of an active upload MUST be 204');
          assert.equal(header(status, 'Range'), `0-${end - 1}`);
          location = header(status, 'Location');
        }
        const res = await http.put(location, { query: { digest: c.digest } });
        assert.equal(res.status, 201);
        await expectBlob(name, c, header(res, 'Location'));
      });

      spec('push.blob.chunked-final-put', 'chunked: the final chunk may come with the closing PUT', async () => {
        const c = randomContent(5000);
        const first = await http.patch(await startUpload(name), {
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '0-2999' },
          body: c.bytes.subarray(0, 3000),
        });
        assert.equal(first.status, 202);
        const res = await http.put(header(first, 'Location'), {
          query: { digest: c.digest },
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '3000-4999' },
          body: c.bytes.subarray(3000),
        });
        assert.equal(res.status, 201);
        await expectBlob(name, c, header(res, 'Location'));
      });

      spec('push.blob.chunked-out-of-order', 'chunked: an out-of-order PATCH answers 416; GET then tells the offset', async () => {
        const c = randomContent(3000);
        const first = await http.patch(await startUpload(name), {
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '0-999' },
          body: c.bytes.subarray(0, 1000),
        });
        assert.equal(first.status, 202);
        const location = header(first, 'Location');
        const skip = await http.patch(location, {
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '2000-2999' },
          body: c.bytes.subarray(2000),
        });
        expectError(skip, 416, [], 'PATCH past the offset');
        const status = await http.get(location);
        assert.equal(status.status, 204);
        assert.equal(header(status, 'Range'), '0-999', 'the rejected chunk MUST NOT have been appended');
        // The upload is still usable from the offset GET reported.
        const rest = await http.patch(header(status, 'Location'), {
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '1000-2999' },
          body: c.bytes.subarray(1000),
        });
        assert.equal(rest.status, 202);
        const done = await http.put(header(rest, 'Location'), { query: { digest: c.digest } });
        assert.equal(done.status, 201);
        await expectBlob(name, c);
      });

      spec('push.blob.final-put-out-of-order', 'chunked: a closing PUT whose chunk is out of order answers 416', async () => {
        const c = randomContent(3000);
        const first = await http.patch(await startUpload(name), {
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '0-999' },
          body: c.bytes.subarray(0, 1000),
        });
        assert.equal(first.status, 202);
        const res = await http.put(header(first, 'Location'), {
          query: { digest: c.digest },
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '1500-2999' },
          body: c.bytes.subarray(1500),
        });
        expectError(res, 416, [], 'PUT with an out-of-order final chunk');
        assert.equal((await http.head(`/v2/${name}/blobs/${c.digest}`)).status, 404, 'nothing was stored');
      });

      spec('push.blob.digest-mismatch', 'PUT with a digest that does not match the content: 400 DIGEST_INVALID, nothing stored', async () => {
        const c = randomContent(1000);
        const wrong = digestOf(randomBytes(1000));
        const res = await http.put(await startUpload(name), { query: { digest: wrong }, headers: { 'Content-Type': 'application/octet-stream' }, body: c.bytes });
        expectError(res, 400, ['DIGEST_INVALID'], 'PUT with the wrong digest');
        assert.equal((await http.head(`/v2/${name}/blobs/${wrong}`)).status, 404);
        assert.equal((await http.head(`/v2/${name}/blobs/${c.digest}`)).status, 404);
      });

      spec('push.blob.invalid-digest', 'PUT with a malformed digest: 400 DIGEST_INVALID (SHOULD)', async () => {
        const res = await http.put(await startUpload(name), { query: { digest: 'sha256:not-hex' }, headers: { 'Content-Type': 'application/octet-stream' }, body: 'x' });
        expectError(res, 400, ['DIGEST_INVALID'], 'PUT with a malformed digest');
      });

      spec('push.blob.sha512', 'a blob pushed with ?digest-algorithm=sha512 is addressable by its sha512 digest', async () => {
        const c = content(randomBytes(4096), 'sha512');
        // digest-algorithm is a SHOULD for the client (end-4c); the registry may ignore it.
        const post = await http.post(`/v2/${name}/blobs/uploads/`, { query: { 'digest-algorithm': 'sha512' } });
        assert.ok(post.status === 202, `POST ?digest-algorithm=sha512: expected 202, got ${post.status}`);
        const res = await http.put(header(post, 'Location'), { query: { digest: c.digest }, headers: { 'Content-Type': 'application/octet-stream' }, body: c.bytes });
        assert.equal(res.status, 201, res.body.toString().slice(0, 200));
        await expectBlob(name, c);
      });

      spec('push.blob.cancel', 'DELETE of an upload ends it: the upload is 404 BLOB_UPLOAD_UNKNOWN afterwards', async () => {
        const location = await startUpload(name);
        const res = await http.delete(location);
        assert.ok(res.status === 204 || res.status === 202 || res.status === 200, `DELETE upload: got ${res.status}`);
        expectError(await http.get(location), 404, ['BLOB_UPLOAD_UNKNOWN'], 'GET of a cancelled upload');
      });

      // The spec asks for 404 here (end-13, end-5, end-6) but names no code: a registry whose upload
      // URLs carry state (the reference's _state token) reasonably calls a forged one "invalid".
      spec('push.blob.upload-unknown', 'an upload id the registry never issued: 404 BLOB_UPLOAD_UNKNOWN/INVALID', async () => {
        const fake = `/v2/${name}/blobs/uploads/0b0f3b37-8c1e-4b7a-9f84-3a5e2ad1c0de`;
        expectError(await http.get(fake), 404, ['BLOB_UPLOAD_UNKNOWN', 'BLOB_UPLOAD_INVALID'], 'GET unknown upload');
        expectError(
          await http.patch(fake, { headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '0-0' }, body: 'x' }),
          404,
          ['BLOB_UPLOAD_UNKNOWN', 'BLOB_UPLOAD_INVALID'],
          'PATCH unknown upload',
        );
        const c = content('y');
        expectError(await http.put(fake, { query: { digest: c.digest }, body: c.bytes }), 404, ['BLOB_UPLOAD_UNKNOWN', 'BLOB_UPLOAD_INVALID'], 'PUT unknown upload');
      });

      spec('push.blob.mount', 'cross-repository mount: 201 with Location; the blob is then readable in the target', async () => {
        const c = randomContent(1500);
        const from = repo('mount-source');
        const to = repo('mount-target');
        await pushBlob(from, c);
        const res = await http.post(`/v2/${to}/blobs/uploads/`, { query: { mount: c.digest, from } });
        assert.equal(res.status, 201);
        const digest = res.headers.get('Docker-Content-Digest');
        if (digest !== null) assert.equal(digest, c.digest);
        await expectBlob(to, c, header(res, 'Location'));
      });

      spec('push.blob.mount-unknown', 'mount of a blob the source lacks: 202 and an upload session instead (SHOULD)', async () => {
        const c = randomContent(100);
        const res = await http.post(`/v2/${repo('mount-target')}/blobs/uploads/`, { query: { mount: c.digest, from: repo('mount-source') } });
        assert.equal(res.status, 202);
        const put = await http.put(header(res, 'Location'), { query: { digest: c.digest }, headers: { 'Content-Type': 'application/octet-stream' }, body: c.bytes });
        assert.equal(put.status, 201);
      });

      spec('push.manifest.by-tag', 'PUT manifest by tag: 201, pullable Location, Docker-Content-Digest', async () => {
        const config = randomContent(200);
        await pushBlob(name, config);
        const m = imageManifest({ config: descriptor(config, OCI_CONFIG), layers: [] });
        const res = await pushManifest(name, 'by-tag', m);
        assert.equal(header(res, 'Docker-Content-Digest'), m.digest);
        const pulled = await http.get(header(res, 'Location'), { headers: { Accept: m.mediaType } });
        assert.equal(pulled.status, 200);
        assert.deepEqual(pulled.body, m.bytes);
        await expectManifest(name, 'by-tag', m);
      });

      spec('push.manifest.by-digest', 'PUT manifest by digest: 201, Docker-Content-Digest equal to it', async () => {
        const config = randomContent(200);
        await pushBlob(name, config);
        const m = imageManifest({ config: descriptor(config, OCI_CONFIG), layers: [] });
        const res = await pushManifest(name, m.digest, m);
        assert.equal(header(res, 'Docker-Content-Digest'), m.digest);
        assert.equal((await http.get(header(res, 'Location'), { headers: { Accept: m.mediaType } })).status, 200);
        await expectManifest(name, m.digest, m);
      });

      spec('push.manifest.index', 'an image index over pushed manifests is stored and served as pushed', async () => {
        const { manifest } = await pushImage(name, 'index-child', 1);
        const index = imageIndex({ manifests: [descriptor(manifest, manifest.mediaType, { platform: { architecture: 'amd64', os: 'linux' } })] });
        await pushManifest(name, 'index', index);
        await expectManifest(name, 'index', index);
        const res = await http.get(`/v2/${name}/manifests/index`, { headers: { Accept: OCI_INDEX } });
        assert.equal(bareType(res.headers.get('Content-Type')), OCI_INDEX);
      });

      spec('push.manifest.blob-unknown', 'a manifest referencing a blob not in the repository is refused with MANIFEST_BLOB_UNKNOWN, if refused', async () => {
        const config = randomContent(100);
        await pushBlob(name, config);
        const missing = randomContent(100);
        // The blob exists in another repository only: repositories do not share blobs implicitly.
        await pushBlob(repo('elsewhere'), missing);
        const m = imageManifest({ config: descriptor(config, OCI_CONFIG), layers: [descriptor(missing, OCI_LAYER)] });
        const res = await http.put(`/v2/${name}/manifests/missing-blob`, { headers: { 'Content-Type': m.mediaType }, body: m.bytes });
        // spec.md#push: a registry MAY reject such a manifest; when it does, the code MUST be MANIFEST_BLOB_UNKNOWN.
        if (res.status !== 201) expectError(res, [400, 404], ['MANIFEST_BLOB_UNKNOWN'], 'PUT manifest with a missing layer');
      });

      spec('push.manifest.subject-missing', 'a manifest whose subject does not exist yet MUST be accepted', async () => {
        const subject = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf(randomBytes(32)), size: 1234 };
        await pushBlob(name, EMPTY_CONFIG);
        const m = imageManifest({ artifactType: 'application/vnd.example.sbom.v1', config: descriptor(EMPTY_CONFIG, OCI_EMPTY), layers: [descriptor(EMPTY_CONFIG, OCI_EMPTY)], subject });
        await pushManifest(name, m.digest, m);
        await expectManifest(name, m.digest, m);
      });

      spec('push.manifest.oci-subject-header', 'pushing a manifest with a subject answers OCI-Subject: <subject digest> (v1.1)', async () => {
        const { manifest: subject } = await pushImage(name, 'subject', 1);
        await pushBlob(name, EMPTY_CONFIG);
        const m = imageManifest({
          artifactType: 'application/vnd.example.signature.v1',
          config: descriptor(EMPTY_CONFIG, OCI_EMPTY),
          layers: [descriptor(EMPTY_CONFIG, OCI_EMPTY)],
          subject: descriptor(subject, subject.mediaType),
        });
        const res = await pushManifest(name, m.digest, m);
        assert.equal(header(res, 'OCI-Subject'), subject.digest);
      });

      spec('push.manifest.tag-query', 'PUT by digest with ?tag=: every tag created and listed in OCI-Tag (v1.1)', async () => {
        const config = randomContent(100);
        await pushBlob(name, config);
        const m = imageManifest({ config: descriptor(config, OCI_CONFIG), layers: [] });
        const tags = ['t1.2.3', 't1.2', 't1'];
        const res = await pushManifest(name, m.digest, m, { tag: tags });
        const announced = res.headers
          .get('OCI-Tag')
          ?.split(',')
          .map((t) => t.trim());
        assert.deepEqual([...(announced ?? [])].sort(), [...tags].sort(), 'OCI-Tag MUST list each accepted tag');
        for (const t of tags) await expectManifest(name, t, m);
      });
    });

    // ---- Content discovery -----------------------------------------------------------------

    describe('content discovery', () => {
      const name = repo('discovery');
      const tags = ['b', 'A', 'a10', 'a2', 'latest', 'Z_9', '1.0', 'a-b'];
      const sorted = [...tags].sort();

      before(async () => {
        const config = randomContent(100);
        await pushBlob(name, config);
        const m = imageManifest({ config: descriptor(config, OCI_CONFIG), layers: [] });
        for (const t of tags) await pushManifest(name, t, m);
      });

      spec('discovery.tags.list', 'tags/list: 200, {name, tags}, tags in lexical order', async () => {
        const res = await http.get(`/v2/${name}/tags/list`);
        assert.equal(res.status, 200);
        const body = res.json<{ name: string; tags: string[] }>();
        assert.equal(body.name, name);
        assert.deepEqual(body.tags, sorted);
      });

      spec('discovery.tags.paginate', 'tags/list?n=: n results (or fewer with a Link), following Link/last lists every tag once', async () => {
        const seen: string[] = [];
        let path: string | undefined = `/v2/${name}/tags/list?n=3`;
        for (let pages = 0; path && pages < 10; pages++) {
          const res = await http.get(path);
          assert.equal(res.status, 200);
          const page = res.json<{ tags: string[] }>().tags ?? [];
          const link = nextLink(res);
          const remaining = sorted.length - seen.length;
          // spec.md#listing-tags: fewer than n only when fewer remain or a Link is provided.
          if (!link) assert.equal(page.length, Math.min(3, remaining));
          seen.push(...page);
          path = link ?? (page.length > 0 && seen.length < sorted.length ? `/v2/${name}/tags/list?n=3&last=${encodeURIComponent(page[page.length - 1]!)}` : undefined);
        }
        assert.deepEqual(seen, sorted);
      });

      spec('discovery.tags.last', 'tags/list?last=: the tags after `last`, not including it', async () => {
        const res = await http.get(`/v2/${name}/tags/list`, { query: { n: '100', last: 'a10' } });
        assert.equal(res.status, 200);
        assert.deepEqual(res.json<{ tags: string[] }>().tags, sorted.slice(sorted.indexOf('a10') + 1));
      });

      spec('discovery.tags.n-zero', 'tags/list?n=0: an empty list and no Link header', async () => {
        const res = await http.get(`/v2/${name}/tags/list?n=0`);
        assert.equal(res.status, 200);
        assert.deepEqual(res.json<{ tags: string[] | null }>().tags ?? [], []);
        assert.equal(res.headers.get('Link'), null);
      });

      spec('discovery.tags.unknown-repository', 'tags/list of a nonexistent repository: 404 NAME_UNKNOWN', async () => {
        expectError(await http.get(`/v2/${repo('no-tags-here')}/tags/list`), 404, ['NAME_UNKNOWN'], 'tags/list of unknown repository');
      });

      describe('referrers', () => {
        const rname = repo('referrers');
        let subject: Manifest;
        let sbom: Manifest;
        let signature: Manifest;
        let index: Manifest;
        before(async () => {
          ({ manifest: subject } = await pushImage(rname, 'subject', 1));
          await pushBlob(rname, EMPTY_CONFIG);
          const sbomConfig = content(JSON.stringify({ sbom: run }));
          await pushBlob(rname, sbomConfig);
          const subjectDesc = descriptor(subject, subject.mediaType);
          // artifactType set explicitly.
          sbom = imageManifest({
            artifactType: 'application/vnd.example.sbom.v1',
            config: descriptor(EMPTY_CONFIG, OCI_EMPTY),
            layers: [descriptor(EMPTY_CONFIG, OCI_EMPTY)],
            subject: subjectDesc,
            annotations: { 'org.example.sbom.format': 'json', 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' },
          });
          // No artifactType: the referrers API reports the config's media type.
          signature = imageManifest({ config: descriptor(sbomConfig, 'application/vnd.example.signature.config.v1+json'), layers: [], subject: subjectDesc });
          // An index without artifactType: the descriptor omits it.
          index = imageIndex({ manifests: [descriptor(sbom, sbom.mediaType)], subject: subjectDesc, annotations: { 'org.example.kind': 'bundle' } });
          for (const m of [sbom, signature, index]) await pushManifest(rname, m.digest, m);
        });

        spec('discovery.referrers.list', 'referrers: 200, an OCI index listing each referrer with artifactType and annotations (v1.1)', async () => {
          const res = await http.get(`/v2/${rname}/referrers/${subject.digest}`);
          assert.equal(res.status, 200);
          assert.equal(bareType(res.headers.get('Content-Type')), OCI_INDEX);
          const body = res.json<{ schemaVersion: number; mediaType: string; manifests: Array<Record<string, unknown>> }>();
          assert.equal(body.schemaVersion, 2);
          assert.equal(body.mediaType, OCI_INDEX);
          const byDigest = new Map(body.manifests.map((d) => [d.digest as string, d]));
          assert.equal(body.manifests.length, 3);
          const s = byDigest.get(sbom.digest);
          assert.ok(s, 'the sbom referrer is listed');
          assert.equal(s.mediaType, sbom.mediaType);
          assert.equal(s.size, sbom.size);
          assert.equal(s.artifactType, 'application/vnd.example.sbom.v1');
          assert.deepEqual(s.annotations, { 'org.example.sbom.format': 'json', 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' });
          assert.equal(byDigest.get(signature.digest)?.artifactType, 'application/vnd.example.signature.config.v1+json', 'artifactType falls back to the config media type');
          const i = byDigest.get(index.digest);
          assert.ok(i, 'the index referrer is listed');
          assert.equal(i.mediaType, OCI_INDEX);
          assert.equal('artifactType' in i, false, 'an index without artifactType has none in its descriptor');
          assert.deepEqual(i.annotations, { 'org.example.kind': 'bundle' });
        });

        spec('discovery.referrers.filter', 'referrers?artifactType=: only matching descriptors, OCI-Filters-Applied: artifactType (v1.1)', async () => {
          const res = await http.get(`/v2/${rname}/referrers/${subject.digest}`, { query: { artifactType: 'application/vnd.example.sbom.v1' } });
          assert.equal(res.status, 200);
          assert.equal(header(res, 'OCI-Filters-Applied'), 'artifactType');
          const body = res.json<{ manifests: Array<{ digest: string }> }>();
          assert.deepEqual(
            body.manifests.map((d) => d.digest),
            [sbom.digest],
          );
        });

        spec('discovery.referrers.empty', 'referrers of a digest nothing refers to: 200 and an empty list, never 404 (v1.1)', async () => {
          const res = await http.get(`/v2/${rname}/referrers/${digestOf(randomBytes(8))}`);
          assert.equal(res.status, 200);
          assert.deepEqual(res.json<{ manifests: unknown[] }>().manifests, []);
        });

        spec('discovery.referrers.invalid-digest', 'referrers of a malformed digest: 400 (v1.1)', async () => {
          expectError(await http.get(`/v2/${rname}/referrers/sha256:zzz`), 400, [], 'referrers of a malformed digest');
        });

        spec('discovery.referrers.after-delete', 'a deleted referrer disappears from the referrers list (v1.1)', async () => {
          await pushBlob(rname, EMPTY_CONFIG);
          const temp = imageManifest({
            artifactType: 'application/vnd.example.temp.v1',
            config: descriptor(EMPTY_CONFIG, OCI_EMPTY),
            layers: [descriptor(EMPTY_CONFIG, OCI_EMPTY)],
            subject: descriptor(subject, subject.mediaType),
          });
          await pushManifest(rname, temp.digest, temp);
          const listed = async () => (await http.get(`/v2/${rname}/referrers/${subject.digest}`)).json<{ manifests: Array<{ digest: string }> }>().manifests.map((d) => d.digest);
          assert.ok((await listed()).includes(temp.digest));
          assert.equal((await http.delete(`/v2/${rname}/manifests/${temp.digest}`)).status, 202);
          assert.ok(!(await listed()).includes(temp.digest));
        });
      });
    });

    // ---- Content management ----------------------------------------------------------------

    describe('content management', () => {
      const name = repo('management');

      spec('management.tag.delete', 'DELETE of a tag: 202 and the tag is then 404 (or 400/405 where tag deletion is disabled)', async () => {
        const { manifest } = await pushImage(name, 'doomed-tag', 1);
        const res = await http.delete(`/v2/${name}/manifests/doomed-tag`);
        if (res.status === 400 || res.status === 405) {
          expectError(res, [400, 405], [], 'DELETE tag (disabled)');
          return;
        }
        assert.equal(res.status, 202);
        expectError(await http.get(`/v2/${name}/manifests/doomed-tag`), 404, ['MANIFEST_UNKNOWN'], 'GET deleted tag');
        // Only the tag went: the manifest itself is still there by digest.
        assert.equal((await http.head(`/v2/${name}/manifests/${manifest.digest}`, { headers: { Accept: manifest.mediaType } })).status, 200);
      });

      spec('management.manifest.delete', 'DELETE of a manifest by digest: 202; it and its tags are then 404', async () => {
        const { manifest } = await pushImage(name, 'doomed-manifest', 1);
        const res = await http.delete(`/v2/${name}/manifests/${manifest.digest}`);
        assert.equal(res.status, 202);
        expectError(await http.get(`/v2/${name}/manifests/${manifest.digest}`, { headers: { Accept: manifest.mediaType } }), 404, ['MANIFEST_UNKNOWN'], 'GET deleted manifest');
        expectError(await http.get(`/v2/${name}/manifests/doomed-manifest`, { headers: { Accept: manifest.mediaType } }), 404, ['MANIFEST_UNKNOWN'], 'GET tag of deleted manifest');
      });

      spec('management.manifest.delete-unknown', 'DELETE of a manifest not in the repository: 404', async () => {
        await pushImage(name, 'keeper', 1);
        expectError(await http.delete(`/v2/${name}/manifests/${digestOf(randomBytes(8))}`), 404, ['MANIFEST_UNKNOWN'], 'DELETE unknown manifest');
      });

      spec('management.manifest.delete-unknown-repository', 'DELETE of a manifest in a nonexistent repository: 404', async () => {
        expectError(await http.delete(`/v2/${repo('nothing-here')}/manifests/${digestOf(randomBytes(8))}`), 404, ['NAME_UNKNOWN', 'MANIFEST_UNKNOWN'], 'DELETE in unknown repository');
      });

      spec('management.blob.delete', 'DELETE of a blob: 202, then 404; deleting it again: 404', async () => {
        const c = randomContent(700);
        await pushBlob(name, c);
        const res = await http.delete(`/v2/${name}/blobs/${c.digest}`);
        assert.equal(res.status, 202);
        expectError(await http.get(`/v2/${name}/blobs/${c.digest}`), 404, ['BLOB_UNKNOWN'], 'GET deleted blob');
        expectError(await http.delete(`/v2/${name}/blobs/${c.digest}`), 404, ['BLOB_UNKNOWN'], 'DELETE deleted blob');
      });
    });
  });
}

/** The id of every test, so a target's knownGaps are checked before any test runs. */
export const TEST_IDS: readonly string[] = [
  'pull.base',
  'pull.manifest.by-tag',
  'pull.manifest.by-digest',
  'pull.manifest.content-type',
  'pull.manifest.head',
  'pull.manifest.missing',
  'pull.manifest.unknown-repository',
  'pull.blob.get',
  'pull.blob.head',
  'pull.blob.missing',
  'pull.blob.range',
  'pull.manifest.docker-schema2',
  'push.blob.post-put',
  'push.blob.single-post',
  'push.blob.chunked',
  'push.blob.chunked-final-put',
  'push.blob.chunked-out-of-order',
  'push.blob.final-put-out-of-order',
  'push.blob.digest-mismatch',
  'push.blob.invalid-digest',
  'push.blob.sha512',
  'push.blob.cancel',
  'push.blob.upload-unknown',
  'push.blob.mount',
  'push.blob.mount-unknown',
  'push.manifest.by-tag',
  'push.manifest.by-digest',
  'push.manifest.index',
  'push.manifest.blob-unknown',
  'push.manifest.subject-missing',
  'push.manifest.oci-subject-header',
  'push.manifest.tag-query',
  'discovery.tags.list',
  'discovery.tags.paginate',
  'discovery.tags.last',
  'discovery.tags.n-zero',
  'discovery.tags.unknown-repository',
  'discovery.referrers.list',
  'discovery.referrers.filter',
  'discovery.referrers.empty',
  'discovery.referrers.invalid-digest',
  'discovery.referrers.after-delete',
  'management.tag.delete',
  'management.manifest.delete',
  'management.manifest.delete-unknown',
  'management.manifest.delete-unknown-repository',
  'management.blob.delete',
];
