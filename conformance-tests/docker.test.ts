// Interop with the Docker engine (Debian's docker.io): a dockerd of the test's own, configured with
// the daemon.json keys our users set, pushes to and pulls from berth serve, pulls docker.io names
// through a berth mirror (registry-mirrors), and `docker save` tars load into berth's client.
// Nothing leaves 127.0.0.1.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestRegistry, type TestRegistry } from '../server/testing.js';
import { BERTH_BIN } from './fixtures/berth-process.js';
import { DOCKER, DOCKERD, missing, servedDigest, startDockerd, type Daemon } from './fixtures/daemons.js';
import { buildBusyboxImage, imageToolsMissing, SKOPEO, skopeoCopy, writePermissiveSkopeoPolicy, type BuiltImage } from './fixtures/oci-image.js';

const exec = promisify(execFile);
const skip = (process.getuid?.() !== 0 ? 'dockerd needs root' : undefined) ?? imageToolsMissing() ?? missing(DOCKERD, DOCKER, SKOPEO);

describe('docker engine interop', { skip: skip ?? false, timeout: 240_000 }, () => {
  let work: string;
  let policy: string;
  let image: BuiltImage;
  let registry: TestRegistry;
  let upstream: TestRegistry;
  let mirror: TestRegistry;
  let docker: Daemon;
  let host: string;
  let upstreamGone = false;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-docker-'));
    policy = await writePermissiveSkopeoPolicy(join(work, 'policy.json'));
    image = await buildBusyboxImage(join(work, 'layout'), { tag: 'v1' });
    registry = await startTestRegistry();
    upstream = await startTestRegistry();
    mirror = await startTestRegistry({ proxy: { remoteUrl: upstream.url, tagTtlSeconds: 300, evictAfterHours: 0 } });
    host = new URL(registry.url).host;
    // docker.io's busybox, as far as this test's dockerd can tell, lives only in the upstream.
    await skopeoCopy(`oci:${image.layoutDir}:v1`, `docker://${new URL(upstream.url).host}/library/busybox:latest`, { policy });
    docker = await startDockerd(join(work, 'docker'), {
      'insecure-registries': [host, new URL(mirror.url).host],
      'registry-mirrors': [mirror.url],
    });
    // The image enters docker as a docker-archive, the way `docker load` users have it.
    await skopeoCopy(`oci:${image.layoutDir}:v1`, `docker-archive:${join(work, 'app.tar')}:team/app:1`, { policy });
    await docker.cli('load', '-i', join(work, 'app.tar'));
  });

  after(async () => {
    await docker?.stop();
    await Promise.all([registry?.destroy(), mirror?.destroy(), upstreamGone ? undefined : upstream?.destroy()]);
    await rm(work, { recursive: true, force: true });
  });

  it('docker push: the digest docker prints is the manifest berth serves; pull after rmi gives the same image', async () => {
    const id = (await docker.cli('image', 'inspect', '--format', '{{.Id}}', 'team/app:1')).trim();
    await docker.cli('tag', 'team/app:1', `${host}/team/app:1`);
    const out = await docker.cli('push', `${host}/team/app:1`);
    const printed = /digest: (sha256:[a-f0-9]{64})/.exec(out)?.[1];
    assert.ok(printed, out);
    assert.equal(await servedDigest(registry.url, 'team/app', '1'), printed);

    await docker.cli('rmi', `${host}/team/app:1`, 'team/app:1');
    await docker.cli('pull', `${host}/team/app:1`);
    const pulled = JSON.parse(await docker.cli('image', 'inspect', `${host}/team/app:1`))[0] as { Id: string; RepoDigests: string[] };
    assert.equal(pulled.Id, id, 'the image id (config digest) survives push and pull');
    assert.ok(pulled.RepoDigests.includes(`${host}/team/app@${printed}`), pulled.RepoDigests.join());

    // By digest, as deployments pin images.
    await docker.cli('rmi', `${host}/team/app:1`);
    await docker.cli('pull', `${host}/team/app@${printed}`);
    assert.equal((await docker.cli('image', 'inspect', '--format', '{{.Id}}', `${host}/team/app@${printed}`)).trim(), id);
  });

  it('docker pull of a docker.io name goes through the berth mirror of registry-mirrors', async () => {
    await docker.cli('pull', 'busybox:latest');
    const id = (await docker.cli('image', 'inspect', '--format', '{{.Id}}', 'busybox:latest')).trim();
    assert.equal(id, image.configDigest);
    // The mirror now holds it: served from its cache even with the upstream gone.
    await upstream.destroy();
    upstreamGone = true;
    assert.equal(await servedDigest(mirror.url, 'library/busybox', 'latest'), image.manifestDigest);
  });

  it('a tar written by docker save loads into berth, and berth pushes it for docker to pull', async () => {
    const saved = join(work, 'saved.tar');
    await docker.cli('tag', `${host}/team/app@${await servedDigest(registry.url, 'team/app', '1')}`, 'saved/app:2');
    await docker.cli('save', '-o', saved, 'saved/app:2');
    const env = { ...process.env, BERTH_ROOT: join(work, 'berth-root'), BERTH_CONFIG: join(work, 'berth.json'), HOME: work };
    await writeFile(env.BERTH_CONFIG, '{}');
    await exec(process.execPath, [BERTH_BIN, 'load', '-i', saved], { env });
    const images = (await exec(process.execPath, [BERTH_BIN, 'images'], { env })).stdout;
    assert.match(images, /saved\/app\s+2\s/);
    await exec(process.execPath, [BERTH_BIN, 'tag', 'saved/app:2', `${host}/saved/app:2`], { env });
    await exec(process.execPath, [BERTH_BIN, 'push', `${host}/saved/app:2`], { env });

    await docker.cli('rmi', 'saved/app:2');
    await docker.cli('pull', `${host}/saved/app:2`);
    const id = (await docker.cli('image', 'inspect', '--format', '{{.Id}}', `${host}/saved/app:2`)).trim();
    assert.equal(id, image.configDigest, 'docker save → berth load → berth push keeps the image config byte for byte');
    const out = await docker.cli('run', '--rm', '--network', 'none', `${host}/saved/app:2`, '/bin/busybox', 'cat', '/etc/berth-release');
    assert.equal(out, 'berth test image\n');
  });
});
