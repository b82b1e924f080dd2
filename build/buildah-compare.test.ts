// The same Dockerfiles built by `berth build` and by `buildah bud --isolation chroot` (Debian's,
// with its own storage root in a temp folder), from the same offline base (busybox-static in an
// OCI layout): the images' filesystems, layers applied in order with their whiteouts, must hold
// the same paths with the same types, modes, owners, contents and link targets, and their
// configs the same run fields. Heredocs are left out: buildah 1.28 predates them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { LocalImageStore } from '../client/store/image-store.js';
import { compressionOf, decompressor } from '../oci/compression.js';
import { buildImage, busyboxLayer, layerTar } from '../runtime/test-images.js';
import { withHistory } from './testing/base-history.js';

const BERTH = fileURLToPath(new URL('../../bin/launch.cjs', import.meta.url));
const isRoot = process.getuid?.() === 0;
const buildahMissing = spawnSync('buildah', ['--version']).status === 0 ? undefined : 'buildah is not installed (apt-get install buildah)';
const run = promisify(execFile);

let dir: string;
let layout: string;

interface FileMeta {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  /** sha256 of a file's content, a symlink's target. */
  data: string;
}

interface Built {
  files: Map<string, FileMeta>;
  config: Record<string, unknown>;
}

/** Applies layer tars in order (image-spec/layer.md: whiteouts and opaque whiteouts) into a path map. */
async function flatten(layers: Array<() => Promise<Readable>>): Promise<Map<string, FileMeta>> {
  const files = new Map<string, FileMeta>();
  const drop = (path: string, self: boolean) => {
    for (const k of [...files.keys()]) if ((self && k === path) || k.startsWith(`${path}/`)) files.delete(k);
  };
  for (const open of layers) {
    const extract = tar.extract();
    const reading = (async () => {
      for await (const e of extract) {
        const h = e.header;
        const hash = createHash('sha256');
        for await (const c of e) hash.update(c as Buffer);
        const path = h.name.split('/').filter((p) => p !== '' && p !== '.').join('/');
        if (path === '') continue;
        const slash = path.lastIndexOf('/');
        const parent = slash < 0 ? '' : path.slice(0, slash);
        const base = path.slice(slash + 1);
        if (base === '.wh..wh..opq') {
          drop(parent, false);
          continue;
        }
        if (base.startsWith('.wh.')) {
          drop(parent === '' ? base.slice(4) : `${parent}/${base.slice(4)}`, true);
          continue;
        }
        if (h.type !== 'directory') drop(path, true);
        let data = '';
        if (h.type === 'file' || h.type === 'contiguous-file') data = hash.digest('hex');
        else if (h.type === 'symlink') data = h.linkname ?? '';
        else if (h.type === 'link') data = files.get((h.linkname ?? '').split('/').filter((p) => p !== '' && p !== '.').join('/'))?.data ?? `link:${h.linkname}`;
        files.set(path, { type: h.type === 'link' || h.type === 'contiguous-file' ? 'file' : h.type ?? 'file', mode: (h.mode ?? 0) & 0o7777, uid: h.uid ?? 0, gid: h.gid ?? 0, data });
      }
    })();
    const src = await open();
    src.pipe(extract);
    await reading;
  }
  return files;
}

function berth(args: string[], root: string, cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BERTH, ...args], { env: { ...process.env, BERTH_ROOT: root }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

async function berthBuild(ctx: string, name: string): Promise<Built> {
  const root = join(dir, `berth-${name}`);
  const r = await berth(['build', '--progress', 'plain', '-t', `cmp/${name}:1`, ctx], root, ctx);
  assert.equal(r.code, 0, r.out);
  const store = await LocalImageStore.open(root);
  const { record } = await store.resolve(`cmp/${name}:1`);
  const config = (await store.config(record)) as Record<string, unknown>;
  const files = await flatten((record.layers ?? []).map((l) => async () => (await store.blobs.read(l.digest)).pipe(decompressor(compressionOf(l.mediaType)))));
  return { files, config };
}

async function buildahBuild(ctx: string, name: string): Promise<Built> {
  const storage = ['--root', join(dir, `buildah-${name}`, 'root'), '--runroot', join(dir, `buildah-${name}`, 'run'), '--storage-driver', 'vfs'];
  const env = { ...process.env, CONTAINERS_REGISTRIES_CONF: '/dev/null' };
  await run('buildah', [...storage, 'bud', '--isolation', 'chroot', '--layers', '-t', `localhost/cmp/${name}:1`, ctx], { cwd: ctx, env, maxBuffer: 1 << 26 });
  const out = join(dir, `buildah-${name}`, 'oci');
  await run('buildah', [...storage, 'push', `localhost/cmp/${name}:1`, `oci:${out}:img`], { env });
  const blob = (d: string) => join(out, 'blobs', 'sha256', d.slice(7));
  const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(await readFile(blob(index.manifests[0]!.digest), 'utf8')) as { config: { digest: string }; layers: { digest: string; mediaType: string }[] };
  const config = JSON.parse(await readFile(blob(manifest.config.digest), 'utf8')) as Record<string, unknown>;
  const { createReadStream } = await import('node:fs');
  const files = await flatten(manifest.layers.map((l) => async () => createReadStream(blob(l.digest)).pipe(decompressor(compressionOf(l.mediaType)))));
  return { files, config };
}

// Mount points buildah's chroot isolation leaves in a RUN's layer (empty files and folders it
// bind-mounts over); berth's runtime keeps them out of layers, as docker does (its init layer).
const BUILDAH_MOUNT_POINTS = /^(dev|proc|sys|run|etc\/hosts|etc\/resolv\.conf|etc\/hostname|\.containerenv)(\/|$)/;

function listing(files: Map<string, FileMeta>, skip?: RegExp): string[] {
  return [...files]
    .filter(([p]) => !skip || !skip.test(p))
    .map(([p, m]) => `${p} ${m.type} ${m.mode.toString(8)} ${m.uid}:${m.gid} ${m.data}`)
    .sort();
}

function runConfig(c: Record<string, unknown>): Record<string, unknown> {
  const cfg = (c.config ?? {}) as Record<string, unknown>;
  const out: Record<string, unknown> = { os: c.os, architecture: c.architecture };
  for (const k of ['Env', 'Entrypoint', 'Cmd', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'StopSignal', 'Labels']) {
    let v = cfg[k];
    if (k === 'Labels' && v) {
      // buildah signs its images with its version; nothing the Dockerfile asked for
      const { ['io.buildah.version']: _ours, ...rest } = v as Record<string, string>;
      v = rest;
    }
    if (v !== undefined && v !== null && !(typeof v === 'object' && Object.keys(v as object).length === 0) && v !== '') out[k] = v;
  }
  return out;
}

function context(name: string, files: Record<string, string | { mode?: number; content?: string; link?: string; bytes?: Buffer }>): string {
  const root = join(dir, `ctx-${name}`);
  mkdirSync(root, { recursive: true });
  for (const [p, v] of Object.entries(files)) {
    const path = join(root, p);
    mkdirSync(join(path, '..'), { recursive: true });
    if (typeof v === 'string') writeFileSync(path, v);
    else if (v.link !== undefined) symlinkSync(v.link, path);
    else writeFileSync(path, v.bytes ?? v.content ?? '');
    if (typeof v !== 'string' && v.mode !== undefined) chmodSync(path, v.mode);
  }
  return root;
}

async function compare(name: string, ctx: string): Promise<Built> {
  const [ours, theirs] = [await berthBuild(ctx, name), await buildahBuild(ctx, name)];
  assert.deepEqual(listing(ours.files, BUILDAH_MOUNT_POINTS), listing(theirs.files, BUILDAH_MOUNT_POINTS));
  assert.deepEqual(runConfig(ours.config), runConfig(theirs.config));
  return ours;
}

/** `path type mode uid:gid` of one path, to show the comparison is about what the Dockerfile did. */
function meta(b: Built, path: string): string | undefined {
  const m = b.files.get(path);
  return m && `${m.type} ${m.mode.toString(8)} ${m.uid}:${m.gid}`;
}

describe('berth build and buildah bud give the same images', { skip: (!isRoot && 'needs root') || buildahMissing }, () => {
  before(async () => {
    // Lower case only: buildah reads `oci:PATH` in a multi-stage FROM as a name, which must be.
    dir = join(tmpdir(), `berth-buildah-${randomBytes(6).toString('hex')}`);
    await mkdir(dir);
    layout = join(dir, 'layout');
    await buildImage(layout, 'busybox', [busyboxLayer()]);
    await withHistory(layout); // buildah refuses a base whose history does not list its layers
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('COPY: files, folders, wildcards, WORKDIR-relative and trailing-slash destinations, symlinks, --chown, --chmod, .dockerignore', { timeout: 300_000 }, async () => {
    const ctx = context('copy', {
      'a.txt': { content: 'A\n', mode: 0o640 },
      'src/main.js': 'main\n',
      'src/lib/util.js': { content: 'util\n', mode: 0o600 },
      'src/lib/run.sh': { content: '#!/bin/sh\n', mode: 0o755 },
      'src/link': { link: 'main.js' },
      'README.md': 'r\n',
      'CHANGES.md': 'c\n',
      'conf/app.conf': { content: 'k=v\n', mode: 0o600 },
      'conf/sub/more.conf': 'more\n',
      'run.sh': { content: 'echo run\n', mode: 0o644 },
      'link-to-a': { link: 'a.txt' },
      'debug.log': 'noise\n',
      'keep.log': 'kept\n',
      'secret/key': 'k\n',
      'secret/public.pem': 'p\n',
      '.dockerignore': '*.log\n!keep.log\nsecret\n!secret/public.pem\n',
      Dockerfile: [
        `FROM oci:${layout}:busybox`,
        'ENV APP=/srv/app',
        'WORKDIR $APP',
        'COPY a.txt ./',
        'COPY src/ lib/',
        'COPY *.md docs/',
        'COPY *.log logs/',
        'COPY secret /secret/',
        'COPY --chown=app:extra conf /etc/app/',
        'COPY --chown=1234 run.sh /opt/owned/run.sh',
        'COPY --chmod=0751 run.sh /usr/local/bin/run',
        'COPY link-to-a ./followed',
        'COPY a.txt /tmp/',
        'COPY a.txt /renamed.txt',
        '',
      ].join('\n'),
    });
    const b = await compare('copy', ctx);
    assert.equal(meta(b, 'srv/app/lib/lib/util.js'), 'file 600 0:0');
    assert.equal(meta(b, 'srv/app/lib/link'), 'symlink 777 0:0');
    assert.equal(meta(b, 'etc/app/sub/more.conf'), 'file 644 1000:2000');
    assert.equal(meta(b, 'opt/owned/run.sh'), 'file 644 1234:1234');
    assert.equal(meta(b, 'usr/local/bin/run'), 'file 751 0:0');
    assert.equal(meta(b, 'srv/app/followed'), 'file 640 0:0');
    assert.equal(meta(b, 'tmp'), 'directory 1777 0:0');
    assert.equal(meta(b, 'secret/public.pem'), 'file 644 0:0');
    assert.equal(meta(b, 'secret/key'), undefined);
    assert.deepEqual([meta(b, 'srv/app/logs/keep.log'), meta(b, 'srv/app/logs/debug.log')], ['file 644 0:0', undefined]);
  });

  test('ADD of local tars (gzip, plain), COPY --from a stage, RUN changes and deletions, and the config fields', { timeout: 300_000 }, async () => {
    const pkg = await layerTar([
      { name: 'pkg/', type: 'directory', mode: 0o711 },
      { name: 'pkg/bin/', type: 'directory', mode: 0o755 },
      { name: 'pkg/bin/tool', content: '#!/bin/sh\necho tool\n', mode: 0o755 },
      { name: 'pkg/share', type: 'symlink', linkname: 'bin' },
      { name: 'pkg/README', content: 'readme\n', mode: 0o444 },
    ]);
    const { gunzipSync } = await import('node:zlib');
    const ctx = context('add', {
      'pkg.tar.gz': { bytes: pkg },
      'pkg.tar': { bytes: gunzipSync(pkg) },
      'plain.txt': 'not an archive\n',
      Dockerfile: [
        `FROM oci:${layout}:busybox AS build`,
        'RUN mkdir -p /out/sub && echo built > /out/sub/file && chmod 750 /out/sub && chown 1000:2000 /out/sub/file && ln -s sub/file /out/link',
        `FROM oci:${layout}:busybox`,
        'ADD pkg.tar.gz /opt/',
        'ADD pkg.tar /opt2',
        'ADD plain.txt /opt/plain.txt',
        'COPY --from=build /out /from-build/',
        'COPY --from=build /out/sub/file /single',
        'RUN rm /etc/group && mkdir -p /var/data && echo x > /var/data/y && rm -r /opt/pkg/bin',
        'USER app',
        'EXPOSE 8080/tcp 53/udp',
        'LABEL org.example.k=v other="two words"',
        'VOLUME /data',
        'STOPSIGNAL SIGTERM',
        'ENV A=1 B="x y"',
        'ENTRYPOINT ["/bin/sh", "-c"]',
        'CMD ["echo hi"]',
        '',
      ].join('\n'),
    });
    const b = await compare('add', ctx);
    assert.equal(meta(b, 'opt/pkg'), 'directory 711 0:0');
    assert.equal(meta(b, 'opt/pkg/bin'), undefined);
    assert.equal(meta(b, 'opt2/pkg/README'), 'file 444 0:0');
    assert.equal(meta(b, 'from-build/sub/file'), 'file 644 1000:2000');
    assert.equal(meta(b, 'etc/group'), undefined);
  });
});
