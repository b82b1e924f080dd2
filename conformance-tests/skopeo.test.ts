// Interop with a real client: skopeo (Debian) copies a two-layer busybox image, built offline with
// umoci, from an OCI layout into the registry and back out to a fresh layout; every digest must
// survive the round trip. Runs against berth (in-process, or BERTH_CONFORMANCE_URL) and, as a
// control, the reference registry.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestRegistry } from '../server/testing.js';
import { RegistryHttp } from './fixtures/http-client.js';
import { buildBusyboxImage, imageToolsMissing, readLayoutBlob, readLayoutImage, skopeoCopy, writePermissiveSkopeoPolicy, SKOPEO, type BuiltImage } from './fixtures/oci-image.js';
import { referenceRegistryAvailable, startReferenceRegistry } from './fixtures/reference-registry.js';
import type { ConformanceTarget, RunningTarget } from './target.js';
import { urlTarget } from './target.js';

const toolsMissing = imageToolsMissing() ?? (existsSync(SKOPEO) ? undefined : `${SKOPEO} not installed (apt-get install skopeo; .ci/run does)`);

const targets: ConformanceTarget[] = [
  process.env.BERTH_CONFORMANCE_URL
    ? urlTarget(process.env.BERTH_CONFORMANCE_URL)
    : {
        name: 'berth (in-process)',
        async start() {
          const r = await startTestRegistry();
          return { url: r.url, stop: () => r.destroy() };
        },
      },
  {
    name: 'reference registry (docker-registry)',
    ...(referenceRegistryAvailable() ? {} : { unavailable: 'docker-registry is not installed' }),
    async start() {
      const r = await startReferenceRegistry();
      return { url: r.url, stop: () => r.stop() };
    },
  },
];

describe('skopeo interop', { skip: toolsMissing ?? false, timeout: 120_000 }, () => {
  let work: string;
  let image: BuiltImage;
  let policy: string;
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-skopeo-'));
    policy = await writePermissiveSkopeoPolicy(join(work, 'policy.json'));
    image = await buildBusyboxImage(join(work, 'source'), { tag: 'v1' });
  });
  after(() => rm(work, { recursive: true, force: true }));

  it('the built image has two layers, busybox first', () => {
    assert.equal(image.layerDigests.length, 2);
    assert.equal(image.manifestMediaType, 'application/vnd.oci.image.manifest.v1+json');
  });

  for (const target of targets) {
    describe(target.name, { skip: target.unavailable ?? false }, () => {
      let running: RunningTarget;
      before(async () => {
        running = await target.start();
      });
      after(() => running?.stop?.());

      it('oci layout → registry → fresh oci layout keeps every digest and byte', async () => {
        const host = new URL(running.url).host;
        const repo = `interop/busybox-${createHash('sha256').update(work).digest('hex').slice(0, 8)}`;
        await skopeoCopy(`oci:${image.layoutDir}:v1`, `docker://${host}/${repo}:v1`, { policy });

        // What the registry holds is the image as built: same manifest bytes, same digest.
        const http = new RegistryHttp(running.url);
        const pulled = await http.get(`/v2/${repo}/manifests/v1`, { headers: { Accept: image.manifestMediaType } });
        assert.equal(pulled.status, 200);
        assert.equal(pulled.headers.get('Docker-Content-Digest'), image.manifestDigest);
        assert.ok(pulled.body.equals(image.manifestBytes));

        const out = join(work, `out-${target.name.split(' ')[0]}`);
        await skopeoCopy(`docker://${host}/${repo}:v1`, `oci:${out}:v1`, { policy });
        const back = await readLayoutImage(out, 'v1');
        assert.equal(back.manifestDigest, image.manifestDigest);
        assert.equal(back.configDigest, image.configDigest);
        assert.deepEqual(back.layerDigests, image.layerDigests);
        for (const d of [back.configDigest, ...back.layerDigests]) {
          const bytes = await readLayoutBlob(out, d);
          assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, d);
          assert.ok(bytes.equals(await readLayoutBlob(image.layoutDir, d)));
        }

        // And by digest, as runtimes pin images.
        const byDigest = join(work, `pinned-${target.name.split(' ')[0]}`);
        await skopeoCopy(`docker://${host}/${repo}@${image.manifestDigest}`, `oci:${byDigest}:pinned`, { policy });
        assert.equal((await readLayoutImage(byDigest, 'pinned')).manifestDigest, image.manifestDigest);
      });
    });
  }
});
