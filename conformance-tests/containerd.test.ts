// Interop with containerd's `ctr` (Debian `containerd` 1.6), against a private containerd (own
// root, state and socket; CRI off): pull from berth serve over plain HTTP, push back to another
// repository, pull that by digest. Every digest is the one berth serves.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestRegistry, type TestRegistry } from '../server/testing.js';
import { buildBusyboxImage, imageToolsMissing, skopeoCopy, writePermissiveSkopeoPolicy, SKOPEO, type BuiltImage } from './fixtures/oci-image.js';
import { containerdMissing, startContainerd, type Containerd } from './fixtures/peer-daemon.js';

const skip = containerdMissing() ?? imageToolsMissing() ?? (existsSync(SKOPEO) ? undefined : `${SKOPEO} not installed (apt-get install skopeo; .ci/run does)`);

describe('containerd (ctr) interop', { skip: skip ?? false, timeout: 120_000 }, () => {
  let work: string;
  let image: BuiltImage;
  let registry: TestRegistry;
  let host: string;
  let containerd: Containerd;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-ctr-'));
    const policy = await writePermissiveSkopeoPolicy(join(work, 'policy.json'));
    image = await buildBusyboxImage(join(work, 'app'), { tag: 'v1' });
    registry = await startTestRegistry();
    host = new URL(registry.url).host;
    await skopeoCopy(`oci:${image.layoutDir}:v1`, `docker://${host}/team/app:1`, { policy });
    containerd = await startContainerd();
  });

  after(async () => {
    await containerd?.stop();
    await registry?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  /** The DIGEST column of `ctr images ls` for one reference. */
  async function ctrDigest(ref: string): Promise<string | undefined> {
    const { stdout } = await containerd.ctr('images', 'ls');
    const row = stdout.split('\n').find((l) => l.split(/\s+/)[0] === ref);
    return row?.split(/\s+/)[2];
  }

  async function served(repo: string, ref: string): Promise<string | null> {
    const res = await fetch(`${registry.url}/v2/${repo}/manifests/${ref}`, { method: 'HEAD', headers: { Accept: image.manifestMediaType } });
    return res.status === 200 ? res.headers.get('docker-content-digest') : null;
  }

  it('ctr images pull --plain-http gets the digest berth serves, and unpacks it', async () => {
    const ref = `${host}/team/app:1`;
    await containerd.ctr('images', 'pull', '--plain-http', ref);
    assert.equal(await ctrDigest(ref), image.manifestDigest);
    assert.equal(await served('team/app', '1'), image.manifestDigest);
    // Every blob of the image is in containerd's content store, verified by it.
    // `ctr images check`: REF TYPE DIGEST STATUS SIZE UNPACKED; config + 2 layers present, unpacked.
    const row = (await containerd.ctr('images', 'check')).stdout.split('\n').find((l) => l.startsWith(`${ref} `));
    assert.ok(row, 'ctr images check lists the image');
    assert.match(row, new RegExp(` ${image.manifestDigest} complete \\(3/3\\) .* true\\s*$`));
  });

  it('ctr images push --plain-http to another repository; pull it back by digest', async () => {
    const dest = `${host}/ctr/pushed:1`;
    await containerd.ctr('images', 'tag', `${host}/team/app:1`, dest);
    await containerd.ctr('images', 'push', '--plain-http', dest);
    assert.equal(await served('ctr/pushed', '1'), image.manifestDigest);

    await containerd.ctr('images', 'rm', `${host}/team/app:1`, dest);
    // The manifest is resolved at berth by digest (blobs containerd still holds may be reused, unfetched).
    const pinned = `${host}/ctr/pushed@${image.manifestDigest}`;
    await containerd.ctr('images', 'pull', '--plain-http', pinned);
    assert.equal(await ctrDigest(pinned), image.manifestDigest);
  });
});
