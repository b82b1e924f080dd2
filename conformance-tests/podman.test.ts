// Interop with podman (Debian 4.3): pull from and push to berth serve with --tls-verify=false, in
// a private store (--root, --runroot, vfs) with a private auth file and signature policy, so
// neither the machine's images nor its credentials or containers config are used.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestRegistry, type TestRegistry } from '../server/testing.js';
import { buildBusyboxImage, imageToolsMissing, skopeoCopy, writePermissiveSkopeoPolicy, SKOPEO, type BuiltImage } from './fixtures/oci-image.js';

const run = promisify(execFile);
const PODMAN = process.env.BERTH_PODMAN ?? '/usr/bin/podman';
const skip =
  (existsSync(PODMAN) ? undefined : `${PODMAN} not installed (apt-get install podman; .ci/run does)`) ??
  imageToolsMissing() ??
  (existsSync(SKOPEO) ? undefined : `${SKOPEO} not installed (apt-get install skopeo; .ci/run does)`);

describe('podman interop', { skip: skip ?? false, timeout: 120_000 }, () => {
  let work: string;
  let policy: string;
  let image: BuiltImage;
  let registry: TestRegistry;
  let host: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-podman-'));
    policy = await writePermissiveSkopeoPolicy(join(work, 'policy.json'));
    await writeFile(join(work, 'auth.json'), '{"auths":{}}');
    image = await buildBusyboxImage(join(work, 'app'), { tag: 'v1' });
    registry = await startTestRegistry();
    host = new URL(registry.url).host;
    await skopeoCopy(`oci:${image.layoutDir}:v1`, `docker://${host}/team/app:1`, { policy });
  });

  after(async () => {
    // vfs leaves no mounts; the store is plain files under the work folder.
    await podman('rmi', '--all', '--force').catch(() => undefined);
    await registry?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  async function podman(...args: string[]): Promise<string> {
    const global = ['--root', join(work, 'root'), '--runroot', join(work, 'runroot'), '--storage-driver', 'vfs'];
    try {
      const { stdout } = await run(PODMAN, [...global, ...args], { env: { ...process.env, REGISTRY_AUTH_FILE: join(work, 'auth.json') }, maxBuffer: 16 << 20 });
      return stdout;
    } catch (e) {
      const err = e as Error & { stderr?: string };
      throw new Error(`podman ${args.join(' ')} failed: ${(err.stderr || err.message).trim()}`);
    }
  }

  async function served(repo: string, ref: string): Promise<string | null> {
    const res = await fetch(`${registry.url}/v2/${repo}/manifests/${ref}`, { method: 'HEAD', headers: { Accept: `${image.manifestMediaType}, application/vnd.docker.distribution.manifest.v2+json` } });
    return res.status === 200 ? res.headers.get('docker-content-digest') : null;
  }

  const inspect = async (ref: string) => (JSON.parse(await podman('image', 'inspect', ref)) as Array<{ Id: string; Digest: string; RepoDigests: string[] }>)[0]!;

  it('podman pull: the digest podman records is the one berth serves, the image ID the config digest', async () => {
    await podman('pull', '--quiet', '--tls-verify=false', '--signature-policy', policy, `${host}/team/app:1`);
    const img = await inspect(`${host}/team/app:1`);
    assert.equal(img.Digest, image.manifestDigest);
    assert.equal(`sha256:${img.Id}`, image.configDigest);
    assert.ok(img.RepoDigests.includes(`${host}/team/app@${image.manifestDigest}`), img.RepoDigests.join(', '));
  });

  it('podman push: the digest podman writes is the one berth serves; podman pulls it back by digest', async () => {
    const dest = `${host}/podman/pushed:1`;
    const digestFile = join(work, 'pushed.digest');
    await podman('push', '--quiet', '--tls-verify=false', '--signature-policy', policy, '--digestfile', digestFile, `${host}/team/app:1`, dest);
    const pushed = (await readFile(digestFile, 'utf8')).trim();
    assert.match(pushed, /^sha256:[a-f0-9]{64}$/);
    assert.equal(await served('podman/pushed', '1'), pushed);
    const { stdout } = await run(SKOPEO, ['--policy', policy, 'inspect', '--tls-verify=false', `docker://${dest}`]);
    assert.equal((JSON.parse(stdout) as { Digest: string }).Digest, pushed);

    await podman('rmi', '--all', '--force');
    await podman('pull', '--quiet', '--tls-verify=false', '--signature-policy', policy, `${host}/podman/pushed@${pushed}`);
    const img = await inspect(`${host}/podman/pushed@${pushed}`);
    assert.equal(img.Digest, pushed);
    assert.equal(`sha256:${img.Id}`, image.configDigest);
  });
});
