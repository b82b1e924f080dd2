// Interop with the Docker engine (Debian `docker.io`: dockerd 20.10 and its containerd), unchanged
// and configured as users configure it (daemon.json `insecure-registries`, `registry-mirrors`):
// docker load / push / rmi / pull (by tag and by digest) against an in-process berth serve, and
// `docker pull busybox` served by a `berth serve --proxy-remote-url` mirror of a second berth
// registry. Only 127.0.0.1 is involved: docker.io itself is never reachable here.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startTestRegistry, type TestRegistry } from '../server/testing.js';
import { startBerthProcess, type BerthProcess } from './fixtures/berth-process.js';
import { buildBusyboxImage, imageToolsMissing, skopeoCopy, writePermissiveSkopeoPolicy, SKOPEO, type BuiltImage } from './fixtures/oci-image.js';
import { dockerMissing, startDockerd, type DockerDaemon } from './fixtures/peer-daemon.js';

const run = promisify(execFile);
const skip = dockerMissing() ?? imageToolsMissing() ?? (existsSync(SKOPEO) ? undefined : `${SKOPEO} not installed (apt-get install skopeo; .ci/run does)`);

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const ACCEPT = [DOCKER_MANIFEST, 'application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json'].join(', ');

describe('docker engine interop', { skip: skip ?? false, timeout: 180_000 }, () => {
  let work: string;
  let policy: string;
  let image: BuiltImage;
  let hubImage: BuiltImage;
  let registry: TestRegistry;
  let upstream: TestRegistry;
  let upstreamGone = false;
  let mirror: BerthProcess;
  let dockerd: DockerDaemon;
  let host: string;
  let pushedDigest: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-docker-'));
    policy = await writePermissiveSkopeoPolicy(join(work, 'policy.json'));
    image = await buildBusyboxImage(join(work, 'app'), { tag: 'v1' });
    hubImage = await buildBusyboxImage(join(work, 'hub'), { tag: 'latest', files: { '/etc/hub-release': 'the busybox of docker.io, as mirrored\n' } });
    // docker load needs a docker-archive: skopeo writes one from the OCI layout, offline.
    await skopeoCopy(`oci:${image.layoutDir}:v1`, `docker-archive:${join(work, 'app.tar')}:team/app:1`, { policy });

    registry = await startTestRegistry();
    host = new URL(registry.url).host;
    upstream = await startTestRegistry();
    await skopeoCopy(`oci:${hubImage.layoutDir}:latest`, `docker://${new URL(upstream.url).host}/library/busybox:latest`, { policy });
    mirror = await startBerthProcess(join(work, 'mirror-data'), ['--proxy-remote-url', upstream.url]);

    dockerd = await startDockerd({ insecureRegistries: [host], registryMirrors: [mirror.url] });
  });

  after(async () => {
    await dockerd?.stop();
    if (mirror && mirror.child.exitCode === null) {
      mirror.child.kill('SIGTERM');
      await mirror.exited;
    }
    await registry?.destroy();
    if (!upstreamGone) await upstream?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  const inspect = async (ref: string) =>
    JSON.parse((await dockerd.docker('image', 'inspect', ref)).stdout)[0] as { Id: string; RepoDigests: string[]; RepoTags: string[] };

  /** The digest berth serves for a reference, read as docker reads it (schema2 first in Accept). */
  async function served(reg: string, repo: string, ref: string): Promise<{ digest: string; mediaType: string; manifest: { config: { digest: string }; layers: Array<{ digest: string }> } }> {
    const res = await fetch(`${reg}/v2/${repo}/manifests/${ref}`, { headers: { Accept: ACCEPT } });
    assert.equal(res.status, 200, `${repo}:${ref}`);
    const manifest = (await res.json()) as { config: { digest: string }; layers: Array<{ digest: string }> };
    return { digest: res.headers.get('docker-content-digest')!, mediaType: res.headers.get('content-type')!, manifest };
  }

  async function skopeoInspectDigest(ref: string): Promise<string> {
    const { stdout } = await run(SKOPEO, ['--policy', policy, 'inspect', '--tls-verify=false', ref]);
    return (JSON.parse(stdout) as { Digest: string }).Digest;
  }

  it('docker load reads the image; its ID is the config digest', async () => {
    const out = await dockerd.docker('load', '-i', join(work, 'app.tar'));
    assert.match(out.stdout, /Loaded image: team\/app:1/);
    assert.equal((await inspect('team/app:1')).Id, image.configDigest);
  });

  it('docker push to berth serve: the digest docker prints is the one berth and skopeo see', async () => {
    await dockerd.docker('tag', 'team/app:1', `${host}/team/app:1`);
    const out = await dockerd.docker('push', `${host}/team/app:1`);
    const m = /1: digest: (sha256:[a-f0-9]{64}) size: (\d+)/.exec(out.stdout);
    assert.ok(m, out.stdout);
    pushedDigest = m[1]!;
    const s = await served(registry.url, 'team/app', '1');
    assert.equal(s.digest, pushedDigest);
    assert.equal(s.mediaType, DOCKER_MANIFEST);
    assert.equal(s.manifest.config.digest, image.configDigest);
    assert.equal(s.manifest.layers.length, image.layerDigests.length);
    assert.equal(await skopeoInspectDigest(`docker://${host}/team/app:1`), pushedDigest);
  });

  it('a second repository of the same registry gets the layers by cross-repository mount', async () => {
    await dockerd.docker('tag', 'team/app:1', `${host}/other/app:1`);
    const out = await dockerd.docker('push', `${host}/other/app:1`);
    assert.match(out.stdout, /Mounted from team\/app/);
    assert.equal((await served(registry.url, 'other/app', '1')).digest, pushedDigest);
    await dockerd.docker('rmi', `${host}/other/app:1`);
  });

  it('docker rmi, then docker pull by tag brings back the same digest and image ID', async () => {
    await dockerd.docker('rmi', `${host}/team/app:1`, 'team/app:1');
    await assert.rejects(dockerd.docker('image', 'inspect', image.configDigest), /No such image/);
    const out = await dockerd.docker('pull', `${host}/team/app:1`);
    assert.match(out.stdout, new RegExp(`Digest: ${pushedDigest}`));
    const img = await inspect(`${host}/team/app:1`);
    assert.equal(img.Id, image.configDigest);
    assert.deepEqual(img.RepoDigests, [`${host}/team/app@${pushedDigest}`]);
  });

  it('docker pull by digest', async () => {
    await dockerd.docker('rmi', `${host}/team/app:1`);
    const out = await dockerd.docker('pull', `${host}/team/app@${pushedDigest}`);
    assert.match(out.stdout, new RegExp(`Digest: ${pushedDigest}`));
    const img = await inspect(`${host}/team/app@${pushedDigest}`);
    assert.equal(img.Id, image.configDigest);
    assert.deepEqual(img.RepoDigests, [`${host}/team/app@${pushedDigest}`]);
  });

  it('registry-mirrors: docker pull busybox (a docker.io name) is served by a berth serve mirror', async () => {
    const upDigest = (await served(upstream.url, 'library/busybox', 'latest')).digest;
    // docker.io is unreachable (or, with internet, would answer another digest): this can only be the mirror.
    const out = await dockerd.docker('pull', 'busybox');
    assert.match(out.stdout, new RegExp(`Digest: ${upDigest}`));
    const img = await inspect('busybox:latest');
    assert.equal(img.Id, hubImage.configDigest);
    assert.deepEqual(img.RepoDigests, [`busybox@${upDigest}`]);
    // And the mirror holds it now.
    const cached = await fetch(`${mirror.url}/v2/library/busybox/manifests/${upDigest}`, { method: 'HEAD', headers: { Accept: ACCEPT } });
    assert.equal(cached.status, 200);
    // With the upstream gone, the mirror still serves what it cached, by tag and by digest.
    await upstream.destroy();
    upstreamGone = true;
    await dockerd.docker('rmi', 'busybox:latest');
    assert.match((await dockerd.docker('pull', 'busybox')).stdout, new RegExp(`Digest: ${upDigest}`));
    assert.equal((await inspect('busybox:latest')).Id, hubImage.configDigest);
  });
});
