// Interop with containerd's ctr and with podman (Debian packages): each pulls an image from berth
// serve and pushes it back under another name; berth must serve exactly the manifests they saw.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestRegistry, type TestRegistry } from '../server/testing.js';
import { CONTAINERD, CTR, missing, servedDigest, startContainerd, type Daemon } from './fixtures/daemons.js';
import { buildBusyboxImage, imageToolsMissing, SKOPEO, skopeoCopy, writePermissiveSkopeoPolicy, type BuiltImage } from './fixtures/oci-image.js';

const exec = promisify(execFile);
const PODMAN = process.env.BERTH_PODMAN ?? '/usr/bin/podman';
const isRoot = process.getuid?.() === 0;

describe('containerd and podman interop', { skip: imageToolsMissing() ?? missing(SKOPEO) ?? false, timeout: 180_000 }, () => {
  let work: string;
  let image: BuiltImage;
  let registry: TestRegistry;
  let host: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-ctr-podman-'));
    const policy = await writePermissiveSkopeoPolicy(join(work, 'policy.json'));
    image = await buildBusyboxImage(join(work, 'layout'), { tag: 'v1' });
    registry = await startTestRegistry();
    host = new URL(registry.url).host;
    await skopeoCopy(`oci:${image.layoutDir}:v1`, `docker://${host}/team/app:1`, { policy });
  });
  after(async () => {
    await registry?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  describe('containerd (ctr)', { skip: (isRoot ? undefined : 'containerd needs root') ?? missing(CONTAINERD, CTR) ?? false }, () => {
    let ctr: Daemon;
    before(async () => {
      ctr = await startContainerd(join(work, 'containerd'));
    });
    after(() => ctr?.stop());

    it('ctr pulls from berth and pushes back; the digests are the ones berth serves', async () => {
      await ctr.cli('images', 'pull', '--plain-http', `${host}/team/app:1`);
      const listed = await ctr.cli('images', 'ls');
      assert.ok(listed.includes(image.manifestDigest), listed);
      // Every blob landed in containerd's content store, verified by it.
      const content = await ctr.cli('content', 'ls', '-q');
      for (const d of [image.configDigest, ...image.layerDigests]) assert.ok(content.includes(d), `${d} in ctr content`);

      await ctr.cli('images', 'tag', `${host}/team/app:1`, `${host}/ctr/app:1`);
      await ctr.cli('images', 'push', '--plain-http', `${host}/ctr/app:1`);
      assert.equal(await servedDigest(registry.url, 'ctr/app', '1'), image.manifestDigest);
    });
  });

  describe('podman', { skip: existsSync(PODMAN) ? false : `${PODMAN} not installed` }, () => {
    const podman = (...args: string[]) =>
      exec(PODMAN, ['--root', join(work, 'podman', 'root'), '--runroot', join(work, 'podman', 'run'), '--storage-driver', 'vfs', ...args], {
        env: { ...process.env, HOME: work },
        maxBuffer: 16 << 20,
      }).then((r) => r.stdout);
    after(() => podman('system', 'reset', '--force').catch(() => undefined));

    it('podman pulls from berth and pushes back; berth serves the manifest podman wrote', async () => {
      await podman('pull', '--tls-verify=false', `${host}/team/app:1`);
      const pulled = JSON.parse(await podman('image', 'inspect', `${host}/team/app:1`))[0] as { Id: string; Digest: string };
      assert.equal(pulled.Digest, image.manifestDigest);
      assert.equal(`sha256:${pulled.Id}`, image.configDigest);

      const digestFile = join(work, 'podman-digest');
      await podman('push', '--tls-verify=false', '--digestfile', digestFile, `${host}/team/app:1`, `${host}/podman/app:1`);
      const pushed = (await readFile(digestFile, 'utf8')).trim();
      assert.equal(await servedDigest(registry.url, 'podman/app', '1'), pushed);

      await podman('rmi', '--all', '--force');
      await podman('pull', '--tls-verify=false', `${host}/podman/app@${pushed}`);
      const again = JSON.parse(await podman('image', 'inspect', `${host}/podman/app@${pushed}`))[0] as { Id: string };
      assert.equal(`sha256:${again.Id}`, image.configDigest);
    });
  });
});
