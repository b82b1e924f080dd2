// A tar written by `docker save` (dockerd 20.10 from Debian's docker.io, a private daemon) loads
// with `berth load`, is listed by `berth images` and pushed by `berth push` with its image ID
// (config digest) and layer digests (docker save's uncompressed layers: the config's diff_ids)
// unchanged; docker pulls that push back as the same image. And the other way: `berth save` → `docker load`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startTestRegistry, type TestRegistry } from '../server/testing.js';
import { buildBusyboxImage, imageToolsMissing, skopeoCopy, writePermissiveSkopeoPolicy, SKOPEO, type BuiltImage } from '../conformance-tests/fixtures/oci-image.js';
import { dockerMissing, startDockerd, type DockerDaemon } from '../conformance-tests/fixtures/peer-daemon.js';
import { berth, sandbox, tempDir } from './testing/peers.js';

const skip = dockerMissing() ?? imageToolsMissing() ?? (existsSync(SKOPEO) ? undefined : `${SKOPEO} not installed (apt-get install skopeo; .ci/run does)`);

let work: string;
let image: BuiltImage;
let reg: TestRegistry;
let host: string;
let dockerd: DockerDaemon;

before(async () => {
  if (skip) return;
  work = await tempDir('berth-docker-archive-');
  const policy = await writePermissiveSkopeoPolicy(join(work, 'policy.json'));
  image = await buildBusyboxImage(join(work, 'layout'), { tag: 'v1' });
  await skopeoCopy(`oci:${image.layoutDir}:v1`, `docker-archive:${join(work, 'in.tar')}:team/app:1`, { policy });
  reg = await startTestRegistry();
  host = new URL(reg.url).host;
  dockerd = await startDockerd({ insecureRegistries: [host] });
  await dockerd.docker('load', '-i', join(work, 'in.tar'));
});

after(async () => {
  await dockerd?.stop();
  await reg?.destroy();
});

interface DockerImage {
  Id: string;
  RootFS: { Layers: string[] };
}
const dockerInspect = async (ref: string) => (JSON.parse((await dockerd.docker('image', 'inspect', ref)).stdout) as DockerImage[])[0]!;

test('docker save → berth load → berth images → berth push keeps the image ID and the layers docker saved; docker pulls it back', { skip: skip ?? false, timeout: 120_000 }, async () => {
  const saved = join(work, 'docker-saved.tar');
  await dockerd.docker('save', '-o', saved, 'team/app:1');
  const original = await dockerInspect('team/app:1');
  assert.equal(original.Id, image.configDigest);

  const sb = await sandbox();
  try {
    const load = await berth(['load', '-i', saved], sb.env);
    assert.equal(load.code, 0, load.stderr);
    assert.equal(load.stdout, 'Loaded image: team/app:1\n');
    const images = await berth(['images'], sb.env);
    assert.equal(images.code, 0, images.stderr);
    assert.match(images.stdout, new RegExp(`^team/app +1 +${original.Id.slice(7, 19)} `, 'm'));
    assert.equal((await berth(['inspect', '-f', '{{.Id}}', 'team/app:1'], sb.env)).stdout.trim(), original.Id);

    const ref = `${host}/saved/app:1`;
    assert.equal((await berth(['tag', 'team/app:1', ref], sb.env)).code, 0);
    const push = await berth(['push', ref], sb.env);
    assert.equal(push.code, 0, push.stderr);
    const digest = /digest: (sha256:[a-f0-9]{64})/.exec(push.stdout)?.[1];
    assert.ok(digest, push.stdout);

    // What the registry holds: docker's config byte for byte, and docker save's layers, which are
    // the uncompressed tars, so their digests are the config's diff_ids.
    const res = await fetch(`${reg.url}/v2/saved/app/manifests/1`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-content-digest'), digest);
    const manifest = (await res.json()) as { config: { digest: string }; layers: Array<{ digest: string; mediaType: string }> };
    assert.equal(manifest.config.digest, original.Id);
    assert.deepEqual(
      manifest.layers.map((l) => l.digest),
      original.RootFS.Layers,
    );

    // docker reads that manifest (OCI, uncompressed layers) and gets the very same image.
    await dockerd.docker('rmi', 'team/app:1');
    const pull = await dockerd.docker('pull', ref);
    assert.match(pull.stdout, new RegExp(`Digest: ${digest}`));
    const pulled = await dockerInspect(ref);
    assert.equal(pulled.Id, original.Id);
    assert.deepEqual(pulled.RootFS.Layers, original.RootFS.Layers);
    // And runs it: every layer berth stored and served unpacks in docker.
    const run = await dockerd.docker('run', '--rm', '--network', 'none', ref, '/bin/busybox', 'cat', '/etc/berth-release');
    assert.equal(run.stdout, 'berth test image\n');
  } finally {
    await sb.cleanup();
  }
});

test('berth save (docker format) → docker load gives the same image ID', { skip: skip ?? false, timeout: 120_000 }, async () => {
  const sb = await sandbox();
  try {
    const src = `${host}/from-berth/app:2`;
    // Nothing of the image left in docker: what it ends up with comes from berth's tar alone.
    await dockerd.docker('rmi', '-f', image.configDigest).catch(() => undefined);
    await assert.rejects(dockerd.docker('image', 'inspect', image.configDigest), /No such image/);
    const cp = await berth(['load', '-i', join(work, 'in.tar')], sb.env);
    assert.equal(cp.code, 0, cp.stderr);
    assert.equal((await berth(['tag', 'team/app:1', src], sb.env)).code, 0);
    const out = join(sb.dir, 'berth-saved.tar');
    const save = await berth(['save', '-o', out, src], sb.env);
    assert.equal(save.code, 0, save.stderr);
    const load = await dockerd.docker('load', '-i', out);
    assert.match(load.stdout, new RegExp(`Loaded image: ${src.replace(/\./g, '\\.')}`));
    assert.equal((await dockerInspect(src)).Id, image.configDigest);
    await dockerd.docker('rmi', src);
  } finally {
    await sb.cleanup();
  }
});
