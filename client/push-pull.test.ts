// Push and pull against real registries: berth's own (in-process) and the reference registry,
// with skopeo as the other client; identical digests both ways.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestRegistry, type TestRegistry } from '../server/testing.js';
import { berth, buildImage, sandbox, skopeo, skopeoDigest, startReferenceRegistry, tempDir, type ReferenceRegistry } from './testing/peers.js';
import { startFixtureProxy } from './testing/fixture-proxy.js';
import { parseConfig } from './config.js';
import { LocalImageStore } from './store/image-store.js';
import { Transport } from './transport/registry-client.js';
import { Progress } from './progress.js';
import { pull } from './pull.js';
import { push } from './push.js';
import { parseReference } from '../oci/reference.js';
import { MediaType } from '../oci/media-types.js';
import { digestOf } from '../oci/digest.js';
import { hostPlatform } from './platform.js';
import { Writable } from 'node:stream';

const quiet = new Progress(new Writable({ write: (_c, _e, cb) => cb() }), { quiet: true });

let work: string;
let layout: string;
let berthReg: TestRegistry;
let refReg: ReferenceRegistry;

before(async () => {
  work = await tempDir();
  layout = await buildImage(work, 'small', { extraLayers: 1, layerBytes: 32 * 1024 });
  await buildImage(work, 'big', { extraLayers: 2, layerBytes: 300 * 1024 });
  [berthReg, refReg] = await Promise.all([startTestRegistry(), startReferenceRegistry()]);
});

after(async () => {
  await Promise.all([berthReg?.destroy(), refReg?.stop()]);
});

async function libraryContext(root: string, config: Record<string, unknown> = {}) {
  return { store: await LocalImageStore.open(root), transport: new Transport(parseConfig(config, 'test.json')) };
}

for (const which of ['berth serve', 'docker-registry'] as const) {
  describe(`against ${which}`, () => {
    const host = () => (which === 'berth serve' ? new URL(berthReg.url).host : refReg.host);

    test('skopeo pushes, berth pulls the same digest; berth pushes, skopeo reads the same digest', async () => {
      const sb = await sandbox();
      try {
        await skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:small`, `docker://${host()}/team/app:1.0`);
        const pushed = await skopeoDigest(`docker://${host()}/team/app:1.0`);
        const r = await berth(['pull', `${host()}/team/app:1.0`], sb.env);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`^Digest: ${pushed}$`, 'm'));
        assert.match(r.stdout, /Pull complete/);
        assert.match(r.stdout, /Status: Downloaded newer image for/);
        const images = await berth(['images'], sb.env);
        assert.match(images.stdout, new RegExp(`^${host().replace('.', '\\.')}/team/app\\s+1\\.0\\s`, 'm'));

        const again = await berth(['pull', `${host()}/team/app:1.0`], sb.env);
        assert.match(again.stdout, /Already exists/);
        assert.match(again.stdout, /Status: Image is up to date/);

        assert.equal((await berth(['tag', `${host()}/team/app:1.0`, `${host()}/team/copy:2`], sb.env)).code, 0);
        const p = await berth(['push', `${host()}/team/copy:2`], sb.env);
        assert.equal(p.code, 0, p.stderr);
        assert.match(p.stdout, new RegExp(`^2: digest: ${pushed} size: \\d+$`, 'm'));
        // The blobs were known to be in team/app of the same registry: mounted, not uploaded.
        assert.match(p.stdout, /Mounted from team\/app/);
        assert.equal(await skopeoDigest(`docker://${host()}/team/copy:2`), pushed);
        const warm = await berth(['push', `${host()}/team/copy:2`], sb.env);
        assert.match(warm.stdout, /Layer already exists/);

        const byDigest = await berth(['pull', `${host()}/team/copy@${pushed}`], sb.env);
        assert.equal(byDigest.code, 0, byDigest.stderr);
      } finally {
        await sb.cleanup();
      }
    });

    test('a chunked push resumes after a failed PATCH; a pull resumes a cut download with Range', async () => {
      const root = await tempDir();
      let patches = 0;
      let cutDone = false;
      let wholePutFailed = false;
      const proxy = await startFixtureProxy(which === 'berth serve' ? berthReg.url : refReg.url, {
        fault: (req) => {
          if (req.method === 'PATCH' && ++patches === 2) return 'fail-503';
          if (req.method === 'PUT' && /\/blobs\/uploads\//.test(req.url ?? '') && Number(req.headers['content-length']) > 0 && !wholePutFailed) {
            wholePutFailed = true;
            return 'fail-503';
          }
          if (req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '') && !req.headers.range && !cutDone) {
            cutDone = true;
            return 'cut-response';
          }
          return undefined;
        },
      });
      try {
        await skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:big`, `docker://${host()}/team/big:1`);
        const digest = await skopeoDigest(`docker://${host()}/team/big:1`);
        const { store, transport } = await libraryContext(root);
        try {
          const pulled = await pull(transport, store, parseReference(`${proxy.host}/team/big:1`), { progress: quiet });
          assert.equal(pulled.digest, digest);
          assert.ok(proxy.log.some((l) => /GET \/v2\/team\/big\/blobs\/sha256:\w+ bytes=\d+-/.test(l)), 'a Range request resumed the cut download: ' + proxy.log.join(', '));
          await store.tag(`${proxy.host}/team/big:1`, parseReference(`${proxy.host}/team/chunked:1`));
          // Forget where the blobs came from, so they are uploaded rather than mounted.
          await store.index.update((doc) => {
            doc.sources = {};
          });
          const pushed = await push(transport, store, parseReference(`${proxy.host}/team/chunked:1`), quiet, { monolithicMax: 64 * 1024, chunkSize: 128 * 1024 });
          assert.equal(pushed.digest, digest);
          assert.ok(patches > 2, 'blobs went up in several PATCH chunks');
          assert.ok(proxy.log.some((l) => /^GET \/v2\/team\/chunked\/blobs\/uploads\//.test(l)), 'the upload status was asked after the failure');
          assert.ok(wholePutFailed, 'a monolithic PUT failed once and was sent again');
        } finally {
          await transport.close();
        }
        assert.equal(await skopeoDigest(`docker://${host()}/team/chunked:1`), digest);
      } finally {
        await proxy.close();
      }
    });
  });
}

test('an index resolves to the host platform, --platform picks another, --all-platforms keeps the index', async () => {
  const host = new URL(berthReg.url).host;
  await skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:small`, `docker://${host}/multi/app:a`);
  await skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:big`, `docker://${host}/multi/app:b`);
  const raw = async (tag: string) => {
    const res = await fetch(`${berthReg.url}/v2/multi/app/manifests/${tag}`, { headers: { accept: MediaType.OciManifest } });
    const bytes = Buffer.from(await res.arrayBuffer());
    return { mediaType: MediaType.OciManifest, digest: digestOf(bytes), size: bytes.length };
  };
  const a = await raw('a');
  const b = await raw('b');
  const here = hostPlatform();
  const other = { os: 'linux', architecture: here.architecture === 's390x' ? 'ppc64le' : 's390x' };
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [{ ...b, platform: other }, { ...a, platform: here }] }));
  const put = await fetch(`${berthReg.url}/v2/multi/app/manifests/multi`, { method: 'PUT', headers: { 'content-type': MediaType.OciIndex }, body: index });
  assert.equal(put.status, 201);

  const sb = await sandbox();
  try {
    const r = await berth(['pull', `${host}/multi/app:multi`], sb.env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`Digest: ${digestOf(index)}`));
    const id = await berth(['inspect', '-f', '{{.Descriptor.digest}}', `${host}/multi/app:multi`], sb.env);
    assert.equal(id.stdout.trim(), a.digest);

    const o = await berth(['pull', '--platform', `${other.os}/${other.architecture}`, `${host}/multi/app:multi`], sb.env);
    assert.equal(o.code, 0, o.stderr);
    assert.equal((await berth(['inspect', '-f', '{{.Descriptor.digest}}', `${host}/multi/app:multi`], sb.env)).stdout.trim(), b.digest);

    const all = await berth(['pull', '--all-platforms', `${host}/multi/app:multi`], sb.env);
    assert.equal(all.code, 0, all.stderr);
    assert.equal((await berth(['inspect', '-f', '{{.Descriptor.digest}}', `${host}/multi/app:multi`], sb.env)).stdout.trim(), digestOf(index));
    assert.equal((await berth(['tag', `${host}/multi/app:multi`, `${host}/multi/copy:1`], sb.env)).code, 0);
    const p = await berth(['push', `${host}/multi/copy:1`], sb.env);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, new RegExp(`digest: ${digestOf(index)}`));
  } finally {
    await sb.cleanup();
  }
});

test('berth images lists one row per tag; rmi untags, and deletes only blobs no other image uses', async () => {
  const host = new URL(berthReg.url).host;
  await skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:small`, `docker://${host}/rmi/a:1`);
  await skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:big`, `docker://${host}/rmi/b:1`);
  const sb = await sandbox();
  try {
    for (const img of ['rmi/a:1', 'rmi/b:1']) assert.equal((await berth(['pull', '-q', `${host}/${img}`], sb.env)).code, 0);
    await berth(['tag', `${host}/rmi/a:1`, 'local/a:x'], sb.env);
    const list = (await berth(['images'], sb.env)).stdout.trim().split('\n');
    assert.equal(list.length, 4, list.join('\n'));
    assert.match(list.join('\n'), /^local\/a\s+x\s/m);
    const store = await LocalImageStore.open(sb.env.BERTH_ROOT!);
    const before = new Set(await store.allBlobs());

    const untag = await berth(['rmi', 'local/a:x'], sb.env);
    assert.equal(untag.stdout, 'Untagged: local/a:x\n');
    assert.equal((await store.allBlobs()).length, before.size);

    const del = await berth(['rmi', `${host}/rmi/b:1`], sb.env);
    assert.match(del.stdout, /Deleted: sha256:/);
    const left = new Set(await store.allBlobs());
    const a = (await store.resolve(`${host}/rmi/a:1`)).record;
    // busybox's layer is shared by both images: it stays with rmi/a.
    for (const l of a.layers!) assert.ok(left.has(l.digest));
    assert.ok(left.size < before.size);

    const missing = await berth(['rmi', 'nope:1'], sb.env);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, 'berth rmi: No such image: nope:1\n');
    const df = await berth(['system', 'df'], sb.env);
    assert.match(df.stdout, /^Images\s+1\s/m);
    const hist = await berth(['history', `${host}/rmi/a:1`], sb.env);
    assert.match(hist.stdout, /umoci insert/);
    const inspect = JSON.parse((await berth(['inspect', `${host}/rmi/a:1`], sb.env)).stdout) as Array<{ RepoTags: string[]; Os: string }>;
    assert.deepEqual(inspect[0]!.RepoTags, [`${host}/rmi/a:1`]);
    assert.equal(inspect[0]!.Os, 'linux');
    await readFile(join(sb.env.BERTH_ROOT!, 'images', 'index.json'), 'utf8');
  } finally {
    await sb.cleanup();
  }
});

test('Docker schema2 manifests (skopeo --format v2s2) pull and push back with identical digests', async () => {
  const sb = await sandbox();
  try {
    await skopeo('copy', '--dest-tls-verify=false', '--format', 'v2s2', `oci:${layout}:small`, `docker://${refReg.host}/v2s2/app:1`);
    const raw = JSON.parse(await skopeo('inspect', '--tls-verify=false', '--raw', `docker://${refReg.host}/v2s2/app:1`)) as { mediaType: string };
    assert.equal(raw.mediaType, MediaType.DockerManifest);
    const digest = await skopeoDigest(`docker://${refReg.host}/v2s2/app:1`);
    const r = await berth(['pull', `${refReg.host}/v2s2/app:1`], sb.env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`Digest: ${digest}`));
    const berthHost = new URL(berthReg.url).host;
    await berth(['tag', `${refReg.host}/v2s2/app:1`, `${berthHost}/v2s2/app:1`], sb.env);
    const p = await berth(['push', `${berthHost}/v2s2/app:1`], sb.env);
    assert.equal(p.code, 0, p.stderr);
    assert.equal(await skopeoDigest(`docker://${berthHost}/v2s2/app:1`), digest);
  } finally {
    await sb.cleanup();
  }
});

test('a pull from a plain-HTTP registry does not load node:http; a warm push loads neither it nor node:crypto (start-up, issue 13)', async () => {
  // What these commands cost beyond `node -e 0` is mostly modules loaded: their requests go over
  // plain-exchange.ts and plain-get.ts, and a warm push checks its manifest's digest with a JS
  // SHA-256 (docs/performance.md, "Warm push without node:http"); a pull hashes its layers with
  // node:crypto.
  const sb = await sandbox();
  try {
    const preload = join(sb.dir, 'modules.cjs');
    const listFile = join(sb.dir, 'modules.txt');
    await writeFile(preload, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(listFile)}, process.moduleLoadList.join('\\n')));\n`);
    const env = { ...sb.env, NODE_OPTIONS: `--require ${preload}` };
    const loaded = async () => (await readFile(listFile, 'utf8')).split('\n');
    await skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:small`, `docker://${refReg.host}/lean/app:1`);

    const pulled = await berth(['pull', `${refReg.host}/lean/app:1`], env);
    assert.equal(pulled.code, 0, pulled.stderr);
    for (const m of ['NativeModule http', 'NativeModule _http_client']) assert.ok(!(await loaded()).includes(m), `pull loaded ${m}`);

    const pushed = await berth(['push', `${refReg.host}/lean/app:1`], env);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.match(pushed.stdout, /Layer already exists/);
    assert.match(pushed.stdout, new RegExp(`digest: ${await skopeoDigest(`docker://${refReg.host}/lean/app:1`)}`));
    for (const m of ['NativeModule http', 'NativeModule _http_client', 'NativeModule crypto']) assert.ok(!(await loaded()).includes(m), `warm push loaded ${m}`);
    assert.ok((await loaded()).includes('NativeModule net'), 'the list is of the push process');
  } finally {
    await sb.cleanup();
  }
});
