// A quota hit in the middle of a `docker push` (Debian docker.io, a private dockerd): a
// two-layer image larger than its namespace's quota is pushed to berth serve; docker prints the
// DENIED message naming the quota, nothing of the refused push stays linked or counted, and a
// smaller push into the same namespace (its busybox layer shared with the refused one) succeeds.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestRegistry, type TestRegistry } from '../server/testing.js';
import { buildBusyboxImage, imageToolsMissing, readLayoutBlob, skopeoCopy, writePermissiveSkopeoPolicy, SKOPEO, type BuiltImage } from './fixtures/oci-image.js';
import { dockerMissing, startDockerd, type DockerDaemon } from './fixtures/peer-daemon.js';

const skip = dockerMissing() ?? imageToolsMissing() ?? (existsSync(SKOPEO) ? undefined : `${SKOPEO} not installed (apt-get install skopeo)`);

interface Sizes {
  config: number;
  layers: number[];
  total: number;
}

async function sizesOf(image: BuiltImage): Promise<Sizes> {
  const m = JSON.parse(image.manifestBytes.toString()) as { config: { size: number }; layers: Array<{ size: number }> };
  const layers = m.layers.map((l) => l.size);
  return { config: m.config.size, layers, total: m.config.size + layers.reduce((a, b) => a + b, 0) + image.manifestBytes.length };
}

describe('docker push into a namespace over its quota', { skip: skip ?? false, timeout: 240_000 }, () => {
  let work: string;
  let big: BuiltImage;
  let small: BuiltImage;
  let registry: TestRegistry;
  let dockerd: DockerDaemon;
  let host: string;
  let limit: number;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-quota-docker-'));
    const policy = await writePermissiveSkopeoPolicy(join(work, 'policy.json'));
    // Random bytes do not compress: the second layer of `big` is ~3 MiB on the wire.
    big = await buildBusyboxImage(join(work, 'big'), { tag: 'v1', files: { '/data/blob.bin': randomBytes(3 << 20) } });
    small = await buildBusyboxImage(join(work, 'small'), { tag: 'v1', files: { '/etc/small': 'a small image\n' } });
    const [bigSizes, smallSizes] = await Promise.all([sizesOf(big), sizesOf(small)]);
    // Room for either layer of `big` alone, not for both: whichever upload completes second is
    // refused, after the first was stored and linked. The small image fits.
    limit = Math.max(...bigSizes.layers) + (512 << 10);
    assert.ok(smallSizes.total < limit && bigSizes.layers[0]! + bigSizes.layers[1]! > limit);
    await skopeoCopy(`oci:${big.layoutDir}:v1`, `docker-archive:${join(work, 'big.tar')}:team/big:1`, { policy });
    await skopeoCopy(`oci:${small.layoutDir}:v1`, `docker-archive:${join(work, 'small.tar')}:team/small:1`, { policy });
    registry = await startTestRegistry({ quotas: { namespaces: [{ namespace: 'team', limit }] }, gc: { intervalHours: 0, graceMinutes: 0 } });
    host = new URL(registry.url).host;
    dockerd = await startDockerd({ insecureRegistries: [host] });
    await dockerd.docker('load', '-i', join(work, 'big.tar'));
    await dockerd.docker('load', '-i', join(work, 'small.tar'));
  });

  after(async () => {
    await dockerd?.stop();
    await registry?.destroy();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const links = async (repo: string) => {
    const out: string[] = [];
    for await (const b of registry.store.meta.blobLinks(repo)) out.push(b.digest);
    return out;
  };

  it('docker prints the DENIED message naming the quota; nothing of the push stays linked or counted', async () => {
    await dockerd.docker('tag', 'team/big:1', `${host}/team/big:1`);
    const err = await dockerd.docker('push', `${host}/team/big:1`).then(
      () => assert.fail('the push over the quota succeeded'),
      (e: Error) => e.message,
    );
    assert.match(err, new RegExp(`denied: quota exceeded for namespace "team": ${limit} bytes \\(used [0-9.]+ (KiB|MiB) \\+ [0-9.]+ (KiB|MiB)\\)`), err);
    process.stdout.write(`# docker said: ${/denied: .*/.exec(err)?.[0]}\n`);
    assert.deepEqual(await links('team/big'), [], 'no blob of the refused push is linked');
    assert.equal((await registry.store.meta.namespaceUsage('team')).usedBytes, 0, 'nothing of it is counted');
    // The push was under way when it was refused: content of it was stored (GC's to collect), none is linked.
    let stored = 0;
    for await (const _ of registry.store.blobs.list()) stored++;
    assert.ok(stored > 0, 'some layer of the push was stored before the refusal');
    const tags = await fetch(`${registry.url}/v2/team/big/manifests/1`, { method: 'HEAD' });
    assert.equal(tags.status, 404);
    let sessions = 0;
    for await (const [, r] of registry.store.meta.listUploads()) if (r.name === 'team/big') sessions++;
    assert.equal(sessions, 0, 'no upload session of the refused push is left open');
  });

  it('a smaller push into the same namespace then works, and is all that is counted', async () => {
    await dockerd.docker('tag', 'team/small:1', `${host}/team/small:1`);
    const out = await dockerd.docker('push', `${host}/team/small:1`);
    assert.match(out.stdout, /1: digest: sha256:[a-f0-9]{64} size: \d+/);
    // docker recompresses the layers it loaded: the sizes are those of the manifest it pushed.
    const res = await fetch(`${registry.url}/v2/team/small/manifests/1`, { headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
    const bytes = Buffer.from(await res.arrayBuffer());
    const m = JSON.parse(bytes.toString()) as { config: { size: number }; layers: Array<{ size: number }> };
    const pushed = bytes.length + m.config.size + m.layers.reduce((a, l) => a + l.size, 0);
    assert.equal((await registry.store.meta.namespaceUsage('team')).usedBytes, pushed);
    assert.ok(pushed <= limit);
    assert.equal((await links('team/small')).length, 1 + small.layerDigests.length);
    // And docker pulls it back.
    await dockerd.docker('rmi', `${host}/team/small:1`, 'team/small:1');
    const pulled = await dockerd.docker('pull', `${host}/team/small:1`);
    assert.match(pulled.stdout, /Downloaded newer image|Image is up to date/);
  });
});
