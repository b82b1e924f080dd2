// COPY and ADD against real files: a stage made of layers unpacked by the runtime's unpacker,
// a real context folder, layers written into a real local store, then read back as tars and
// unpacked again by runtime/layer-unpack.ts (what `berth run` does with them).
import { getHeapSpaceStatistics } from 'node:v8';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip, gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { LocalImageStore } from '../client/store/image-store.js';
import { digestOf } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';
import { unpackLayer } from '../runtime/layer-unpack.js';
import { busyboxLayer, layerTar, type Entry } from '../runtime/test-images.js';
import { IgnoreRules } from './dockerignore.js';
import { LayeredTree } from './layered-tree.js';
import { planCopy, planCopyRequest, type CopyRequest, type CopySource } from './copy.js';
import { parseDockerfile } from './dockerfile.js';
import { rootfsView } from './rootfs-view.js';
import type { BuiltLayer } from './layer-writer.js';

const isRoot = process.getuid?.() === 0;
let dir: string;
let store: LocalImageStore;
let base: LayeredTree;
let n = 0;

async function unpackEntries(entries: Entry[]): Promise<string> {
  const gz = await layerTar(entries);
  const dest = join(dir, `layer-${n++}`);
  await mkdir(dest);
  await unpackLayer(Readable.from([gz]), MediaType.OciLayerGzip, digestOf(gz), dest);
  return dest;
}

/** A stage of these layers (bottom first). */
async function stage(...layers: Entry[][]): Promise<LayeredTree> {
  const dirs: string[] = [];
  for (const l of layers) dirs.push(await unpackEntries(l));
  return new LayeredTree(dirs.reverse());
}

function context(files: Record<string, string | { mode?: number; content?: string; dir?: true; link?: string }>, ignore?: string): { tree: LayeredTree; ignore: IgnoreRules; root: string } {
  const root = join(dir, `ctx-${n++}`);
  mkdirSync(root);
  for (const [name, v] of Object.entries(files)) {
    const p = join(root, name);
    mkdirSync(join(p, '..'), { recursive: true });
    if (typeof v === 'string') writeFileSync(p, v);
    else if (v.dir) mkdirSync(p, { recursive: true });
    else if (v.link !== undefined) symlinkSync(v.link, p);
    else writeFileSync(p, v.content ?? '');
    if (typeof v !== 'string' && v.mode !== undefined) chmodSync(p, v.mode);
  }
  return { tree: new LayeredTree([root], false), ignore: ignore ? IgnoreRules.parse(ignore) : IgnoreRules.none(), root };
}

interface Got {
  layer: BuiltLayer;
  /** Entries in tar order: name → header (and text content for files). */
  entries: { name: string; type: string; mode: number; uid: number; gid: number; mtime: number; linkname?: string; content?: string }[];
  /** The layer unpacked by the runtime's unpacker. */
  unpacked: string;
}

async function readLayer(layer: BuiltLayer): Promise<Got['entries']> {
  const extract = tar.extract();
  const out: Got['entries'] = [];
  const reading = (async () => {
    for await (const e of extract) {
      const chunks: Buffer[] = [];
      for await (const c of e) chunks.push(c as Buffer);
      const h = e.header;
      out.push({ name: h.name, type: h.type ?? 'file', mode: h.mode ?? 0, uid: h.uid ?? 0, gid: h.gid ?? 0, mtime: h.mtime?.getTime() ?? 0, ...(h.linkname ? { linkname: h.linkname } : {}), ...(h.type === 'file' ? { content: Buffer.concat(chunks).toString() } : {}) });
    }
  })();
  (await store.blobs.read(layer.digest)).pipe(createGunzip()).pipe(extract);
  await reading;
  return out;
}

async function copy(req: Partial<CopyRequest> & { sources: CopySource[]; dest: string }): Promise<Got> {
  const plan = await planCopyRequest({ instruction: 'COPY', rootfs: base, tmpDir: dir, ...req });
  try {
    const layer = await plan.writeLayer(store);
    assert.ok(layer, 'a layer was written');
    const unpacked = join(dir, `out-${n++}`);
    await mkdir(unpacked);
    await unpackLayer(await store.blobs.read(layer.digest), layer.mediaType, layer.digest, unpacked);
    return { layer, entries: await readLayer(layer), unpacked };
  } finally {
    await plan.close();
  }
}

const names = (g: Got) => g.entries.map((e) => e.name);
const entry = (g: Got, name: string) => {
  const e = g.entries.find((x) => x.name === name);
  assert.ok(e, `${name} in ${names(g).join(', ')}`);
  return e;
};

describe('COPY and ADD', { skip: !isRoot && 'needs root (layer unpacking: chown, whiteouts)' }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-copy-'));
    store = await LocalImageStore.open(join(dir, 'store'));
    base = await stage([...busyboxLayer(), { name: 'usr/', type: 'directory' }, { name: 'usr/lib/', type: 'directory' }, { name: 'lib', type: 'symlink', linkname: 'usr/lib' }, { name: 'srv/', type: 'directory', mode: 0o750 }]);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a file into a folder (trailing slash), as a named file, and relative to WORKDIR; parents keep the stage\'s modes', async () => {
    const ctx = context({ 'a.txt': { content: 'A', mode: 0o640 } });
    const into = await copy({ context: ctx, sources: ['a.txt'], dest: '/tmp/sub/' });
    assert.deepEqual(names(into), ['tmp/', 'tmp/sub/', 'tmp/sub/a.txt']);
    assert.equal(entry(into, 'tmp/').mode, 0o1777); // the stage's /tmp, not a default 0755
    assert.equal(entry(into, 'tmp/sub/').mode, 0o755);
    assert.equal(entry(into, 'tmp/sub/a.txt').mode, 0o640);
    assert.equal(entry(into, 'tmp/sub/a.txt').uid, 0);
    assert.equal(readFileSync(join(into.unpacked, 'tmp/sub/a.txt'), 'utf8'), 'A');
    const as = await copy({ context: ctx, sources: ['a.txt'], dest: '/srv/b.txt' });
    assert.deepEqual(names(as), ['srv/', 'srv/b.txt']);
    assert.equal(entry(as, 'srv/').mode, 0o750);
    const rel = await copy({ context: ctx, sources: ['a.txt'], dest: 'x', workdir: '/srv/app' });
    assert.deepEqual(names(rel), ['srv/', 'srv/app/', 'srv/app/x']);
    // An existing folder without the trailing slash still receives the file by name.
    const existing = await copy({ context: ctx, sources: ['a.txt'], dest: '/srv' });
    assert.deepEqual(names(existing), ['srv/', 'srv/a.txt']);
    const dot = await copy({ context: ctx, sources: ['a.txt'], dest: '.', workdir: '/srv' });
    assert.deepEqual(names(dot), ['srv/', 'srv/a.txt']);
  });

  test('a destination through a symlink of the stage lands where the link points', async () => {
    const ctx = context({ 'lib.so': 'x' });
    const g = await copy({ context: ctx, sources: ['lib.so'], dest: '/lib/' });
    assert.deepEqual(names(g), ['usr/', 'usr/lib/', 'usr/lib/lib.so']);
    assert.equal(lstatSync(join(g.unpacked, 'usr/lib/lib.so')).isFile(), true);
  });

  test('a folder\'s content (not the folder), sorted, symlinks inside kept, a named symlink followed', async () => {
    const ctx = context({ 'src/b.js': 'b', 'src/a/z.js': 'z', 'src/link': { link: 'b.js' }, 'top': { link: 'src/b.js' }, 'src/x.sh': { content: '#!', mode: 0o755 } });
    const g = await copy({ context: ctx, sources: ['src'], dest: '/app' });
    assert.deepEqual(names(g), ['app/', 'app/a/', 'app/a/z.js', 'app/b.js', 'app/link', 'app/x.sh']);
    assert.equal(entry(g, 'app/link').type, 'symlink');
    assert.equal(entry(g, 'app/link').linkname, 'b.js');
    assert.equal(entry(g, 'app/x.sh').mode, 0o755);
    const followed = await copy({ context: ctx, sources: ['top'], dest: '/t' });
    assert.equal(entry(followed, 't').type, 'file');
    assert.equal(entry(followed, 't').content, 'b');
    const all = await copy({ context: ctx, sources: ['.'], dest: '/all/' });
    assert.ok(names(all).includes('all/src/a/z.js'));
    assert.ok(names(all).includes('all/top'));
  });

  test('wildcards follow Go\'s filepath.Match; several sources need a folder destination', async () => {
    const ctx = context({ 'a.txt': 'a', 'b.txt': 'b', 'c.md': 'c', 'd.md': 'd', 'x/y/1.txt': '1', 'x/z/2.txt': '2', '.hidden.txt': 'h' });
    const star = await copy({ context: ctx, sources: ['*.txt'], dest: '/w/' });
    assert.deepEqual(names(star), ['w/', 'w/.hidden.txt', 'w/a.txt', 'w/b.txt']);
    const cls = await copy({ context: ctx, sources: ['[^c].md', '?.txt'], dest: '/w/' });
    assert.deepEqual(names(cls), ['w/', 'w/d.md', 'w/a.txt', 'w/b.txt']);
    const deep = await copy({ context: ctx, sources: ['x/*/*.txt'], dest: '/w/' });
    assert.deepEqual(names(deep), ['w/', 'w/1.txt', 'w/2.txt']);
    // Several matches make the destination a folder even without the slash (BuildKit).
    const multi = await copy({ context: ctx, sources: ['*.md'], dest: '/m' });
    assert.deepEqual(names(multi), ['m/', 'm/c.md', 'm/d.md']);
    await assert.rejects(copy({ context: ctx, sources: ['a.txt', 'b.txt'], dest: '/file' }), { message: 'When using COPY with more than one source file, the destination must be a directory and end with a /' });
    await assert.rejects(copy({ context: ctx, sources: ['*.none'], dest: '/w/' }), { message: 'COPY failed: no source files were specified' });
    await assert.rejects(copy({ context: ctx, sources: ['[a'], dest: '/w/' }), /syntax error in pattern/);
  });

  test('docker\'s messages for a path outside the context and a missing file', async () => {
    const ctx = context({ 'in.txt': 'i' });
    await assert.rejects(copy({ context: ctx, sources: ['../x'], dest: '/' }), { message: 'COPY failed: forbidden path outside the build context: ../x' });
    await assert.rejects(copy({ context: ctx, sources: ['sub/../../x'], dest: '/' }), { message: 'COPY failed: forbidden path outside the build context: sub/../../x' });
    await assert.rejects(copy({ context: ctx, sources: ['x'], dest: '/' }), { message: 'COPY failed: file not found in build context or excluded by .dockerignore: stat x: file does not exist' });
    // A symlink pointing out of the context resolves inside it (FollowSymlinkInScope), so it is not found there.
    const out = context({ esc: { link: '../../../../etc/hostname' } });
    await assert.rejects(copy({ context: out, sources: ['esc'], dest: '/' }), /file not found in build context/);
  });

  test('.dockerignore: excluded files are invisible, `!` exceptions come back with their folders', async () => {
    const ctx = context(
      { 'keep.txt': 'k', 'debug.log': 'd', 'logs/a.log': 'a', 'logs/important.log': 'i', 'node_modules/m/index.js': 'm', 'docs/x/README.md': 'r', 'docs/x/other.md': 'o' },
      '# comment\n*.log\nnode_modules\ndocs\n!docs/x/README.md\nlogs/\n!logs/important.log\n',
    );
    const g = await copy({ context: ctx, sources: ['.'], dest: '/c/' });
    assert.deepEqual(names(g), ['c/', 'c/docs/', 'c/docs/x/', 'c/docs/x/README.md', 'c/keep.txt', 'c/logs/', 'c/logs/important.log']);
    await assert.rejects(copy({ context: ctx, sources: ['debug.log'], dest: '/' }), /file not found in build context or excluded by .dockerignore: stat debug.log/);
    await assert.rejects(copy({ context: ctx, sources: ['node_modules/m/index.js'], dest: '/' }), /excluded by .dockerignore/);
    const glob = await copy({ context: ctx, sources: ['*.txt', 'logs/*'], dest: '/g/' });
    assert.deepEqual(names(glob), ['g/', 'g/keep.txt', 'g/important.log']);
    await assert.rejects(copy({ context: ctx, sources: ['*.log'], dest: '/g/' }), { message: 'COPY failed: no source files were specified' });
    const excl = await copy({ context: ctx, sources: ['.'], dest: '/e/', exclude: ['*.txt', 'docs'] });
    assert.deepEqual(names(excl), ['e/', 'e/logs/', 'e/logs/important.log']);
  });

  test('--chown by names of the stage\'s /etc/passwd and /etc/group, numbers, user alone; --chmod octal and symbolic', async () => {
    const ctx = context({ 'd/f': { content: 'f', mode: 0o600 }, 'run.sh': { content: 's', mode: 0o644 } });
    const names_ = await copy({ context: ctx, sources: ['d'], dest: '/opt/d/', chown: 'app:extra' });
    assert.deepEqual([entry(names_, 'opt/d/f').uid, entry(names_, 'opt/d/f').gid], [1000, 2000]);
    assert.deepEqual([entry(names_, 'opt/').uid, entry(names_, 'opt/d/').gid], [1000, 2000]); // created parents too (BuildKit)
    const user = await copy({ context: ctx, sources: ['run.sh'], dest: '/r', chown: 'nobody' });
    assert.deepEqual([entry(user, 'r').uid, entry(user, 'r').gid], [65534, 65534]);
    const num = await copy({ context: ctx, sources: ['run.sh'], dest: '/r', chown: '42' });
    assert.deepEqual([entry(num, 'r').uid, entry(num, 'r').gid], [42, 42]);
    const mixed = await copy({ context: ctx, sources: ['run.sh'], dest: '/r', chown: 'app:7' });
    assert.deepEqual([entry(mixed, 'r').uid, entry(mixed, 'r').gid], [1000, 7]);
    await assert.rejects(copy({ context: ctx, sources: ['run.sh'], dest: '/r', chown: 'ghost' }), { message: "unable to convert uid/gid chown string to host mapping: can't find uid for user ghost: no such user: ghost" });
    await assert.rejects(copy({ context: ctx, sources: ['run.sh'], dest: '/r', chown: 'app:ghosts' }), /can't find gid for group ghosts: no such group: ghosts/);
    const oct = await copy({ context: ctx, sources: ['run.sh'], dest: '/r', chmod: '0750' });
    assert.equal(entry(oct, 'r').mode, 0o750);
    assert.equal(lstatSync(join(oct.unpacked, 'r')).mode & 0o7777, 0o750);
    const sym = await copy({ context: ctx, sources: ['d'], dest: '/s/', chmod: 'u+x,go-rwx,a+X' });
    assert.equal(entry(sym, 's/f').mode, 0o700);
    await assert.rejects(copy({ context: ctx, sources: ['run.sh'], dest: '/r', chmod: 'rwx' }), /invalid chmod value/);
  });

  test('--from reads a layered filesystem: whiteouts and opaque folders hide lower files, owners are kept', async () => {
    const from = await stage(
      [{ name: 'out/', type: 'directory' }, { name: 'out/keep', content: 'k' }, { name: 'out/gone', content: 'g' }, { name: 'out/old/', type: 'directory' }, { name: 'out/old/x', content: 'x' }],
      [{ name: 'out/.wh.gone' }, { name: 'out/old/', type: 'directory' }, { name: 'out/old/.wh..wh..opq' }, { name: 'out/old/y', content: 'y' }, { name: 'out/new', content: 'n', mode: 0o600 }],
    );
    // Owners set on the unpacked files: COPY --from keeps them.
    chownSync(join(from.layers[0]!, 'out/new'), 1234, 5678);
    const g = await copy({ sources: ['/out'], dest: '/o/', from: { tree: from, name: 'builder' } });
    assert.deepEqual(names(g), ['o/', 'o/keep', 'o/new', 'o/old/', 'o/old/y']);
    assert.deepEqual([entry(g, 'o/new').uid, entry(g, 'o/new').gid, entry(g, 'o/new').mode], [1234, 5678, 0o600]);
    await assert.rejects(copy({ sources: ['/out/gone'], dest: '/o/', from: { tree: from, name: 'builder' } }), { message: 'COPY failed: file not found in builder: stat /out/gone: file does not exist' });
    const owned = await copy({ sources: ['out/new'], dest: '/n', from: { tree: from, name: 'builder' }, chown: '1:1' });
    assert.deepEqual([entry(owned, 'n').uid, entry(owned, 'n').gid], [1, 1]);
  });

  test('ADD extracts local tars (plain, gzip, bzip2, xz) into the destination; other files are copied as they are', async () => {
    const plain = await layerTar([{ name: 'pkg/', type: 'directory', mode: 0o711 }, { name: 'pkg/bin', content: 'B', mode: 0o755 }, { name: 'pkg/l', type: 'symlink', linkname: 'bin' }]);
    const raw = (await import('node:zlib')).gunzipSync(plain);
    const root = join(dir, `arch-${n++}`);
    mkdirSync(root);
    writeFileSync(join(root, 'p.tar'), raw);
    writeFileSync(join(root, 'p.tar.gz'), gzipSync(raw));
    writeFileSync(join(root, 'p.tar.bz2'), execFileSync('bzip2', ['-c'], { input: raw }));
    writeFileSync(join(root, 'p.tar.xz'), execFileSync('xz', ['-c'], { input: raw }));
    writeFileSync(join(root, 'notes.gz.txt'), 'plain text');
    const ctx = { tree: new LayeredTree([root], false), ignore: IgnoreRules.none() };
    for (const f of ['p.tar', 'p.tar.gz', 'p.tar.bz2', 'p.tar.xz']) {
      const g = await copy({ instruction: 'ADD', context: ctx, sources: [f], dest: '/x' });
      assert.deepEqual(names(g), ['x/', 'x/pkg/', 'x/pkg/bin', 'x/pkg/l'], f);
      assert.equal(entry(g, 'x/pkg/').mode, 0o711);
      assert.equal(readFileSync(join(g.unpacked, 'x/pkg/bin'), 'utf8'), 'B');
      assert.equal(readlinkSync(join(g.unpacked, 'x/pkg/l')), 'bin');
    }
    const txt = await copy({ instruction: 'ADD', context: ctx, sources: ['notes.gz.txt'], dest: '/n.txt' });
    assert.deepEqual(names(txt), ['n.txt']);
    // COPY never extracts.
    const cp = await copy({ context: ctx, sources: ['p.tar.gz'], dest: '/y/' });
    assert.deepEqual(names(cp), ['y/', 'y/p.tar.gz']);
    const evil = await layerTar([{ name: '../escape', content: 'e' }]);
    writeFileSync(join(root, 'evil.tar.gz'), evil);
    await assert.rejects(copy({ instruction: 'ADD', context: ctx, sources: ['evil.tar.gz'], dest: '/x' }), /entry outside its destination: \.\.\/escape/);
  });

  test('ADD of a URL downloads it (mode 0600, name from the URL, --checksum checked); COPY refuses URLs; git is refused', async () => {
    const server = createServer((req, res) => {
      if (req.url === '/files/tool.sh') {
        res.writeHead(200, { 'last-modified': 'Tue, 01 Feb 2022 10:00:00 GMT' });
        res.end('#!/bin/sh\necho tool\n');
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const g = await copy({ instruction: 'ADD', sources: [`${url}/files/tool.sh`], dest: '/usr/' });
      assert.deepEqual(names(g), ['usr/', 'usr/tool.sh']);
      assert.equal(entry(g, 'usr/tool.sh').mode, 0o600);
      assert.equal(entry(g, 'usr/tool.sh').mtime, Date.parse('2022-02-01T10:00:00Z'));
      assert.equal(entry(g, 'usr/tool.sh').content, '#!/bin/sh\necho tool\n');
      const good = digestOf(Buffer.from('#!/bin/sh\necho tool\n'));
      await copy({ instruction: 'ADD', sources: [`${url}/files/tool.sh`], dest: '/t', checksum: good });
      await assert.rejects(copy({ instruction: 'ADD', sources: [`${url}/files/tool.sh`], dest: '/t', checksum: `sha256:${'0'.repeat(64)}` }), /checksum mismatch/);
      await assert.rejects(copy({ instruction: 'ADD', sources: [`${url}/missing`], dest: '/t' }), /ADD failed: GET .*\/missing: 404/);
      await assert.rejects(copy({ sources: [`${url}/files/tool.sh`], dest: '/t' }), /source can't be a URL for COPY/);
      await assert.rejects(copy({ instruction: 'ADD', sources: ['git@example.com:x/y.git'], dest: '/t' }), /git sources .* are not supported/);
    } finally {
      server.close();
    }
  });

  test('COPY <<EOF: here-documents become files named by their delimiter (planCopy expands the instruction)', async () => {
    const df = parseDockerfile('FROM scratch\nARG NAME=world\nCOPY --chmod=755 <<EOF <<"RAW" /docs/\nhello ${NAME} "q"\nEOF\nraw ${NAME}\nRAW\nCOPY <<EOF /single.txt\none\nEOF\n');
    const view = rootfsView(async () => base.layers, join(dir, 'views'));
    const ctx = { dir: undefined as unknown as string };
    const vars = new Map([['NAME', 'berth']]);
    const step = (i: number) => ({ instruction: df.instructions[i]!, escape: '\\', vars, workdir: '/', rootfs: view, from: async () => view, context: ctx, store });
    const plan = await planCopy(step(2));
    const layer = await plan.build();
    await plan.release();
    const g = { layer: layer!, entries: await readLayer(layer!), unpacked: '' };
    assert.deepEqual(names(g), ['docs/', 'docs/EOF', 'docs/RAW']);
    assert.equal(entry(g, 'docs/EOF').content, 'hello berth "q"\n');
    assert.equal(entry(g, 'docs/RAW').content, 'raw ${NAME}\n');
    assert.equal(entry(g, 'docs/EOF').mode, 0o755);
    const single = await planCopy(step(3));
    const l2 = await single.build();
    const e2 = await readLayer(l2!);
    assert.deepEqual(e2.map((e) => [e.name, e.mode, e.content]), [['single.txt', 0o644, 'one\n']]);
    // The cache input follows the expanded text: another value of NAME, another key.
    const other = await planCopy({ ...step(2), vars: new Map([['NAME', 'x']]) });
    assert.notEqual(other.cacheInput, plan.cacheInput);
    assert.equal((await planCopy(step(2))).cacheInput, plan.cacheInput);
  });

  test('input digests follow contents, modes and owners, not mtimes; with SOURCE_DATE_EPOCH the layer is byte for byte the same', async () => {
    const ctx = context({ 'd/a': 'a', 'd/b': 'b', 'd/sub/c': 'c' });
    const plan = async () => planCopyRequest({ instruction: 'COPY', rootfs: base, tmpDir: dir, context: ctx, sources: ['d'], dest: '/d/' });
    const first = await plan();
    const before = process.env.SOURCE_DATE_EPOCH;
    process.env.SOURCE_DATE_EPOCH = '1700000000';
    try {
      const l1 = await first.writeLayer(store);
      utimesSync(join(ctx.root, 'd/a'), new Date(2001, 1, 1), new Date(2001, 1, 1));
      const second = await plan();
      assert.equal(second.inputDigest, first.inputDigest);
      const l2 = await second.writeLayer(store);
      assert.equal(l2!.digest, l1!.digest);
      assert.equal(l2!.diffId, l1!.diffId);
      const e = await readLayer(l2!);
      assert.ok(e.every((x) => x.mtime <= 1_700_000_000_000));
    } finally {
      if (before === undefined) delete process.env.SOURCE_DATE_EPOCH;
      else process.env.SOURCE_DATE_EPOCH = before;
    }
    writeFileSync(join(ctx.root, 'd/a'), 'A');
    const content = await plan();
    assert.notEqual(content.inputDigest, first.inputDigest);
    chmodSync(join(ctx.root, 'd/b'), 0o600);
    const mode = await plan();
    assert.notEqual(mode.inputDigest, content.inputDigest);
    // A file changed between the plan and the write: the step refuses to store a layer its key does not describe.
    writeFileSync(join(ctx.root, 'd/sub/c'), 'C changed');
    await assert.rejects(mode.writeLayer(store), /changed while the build read them/);
  });

  test('a context of 100 000 small files: planned and written with memory flat', { timeout: 300_000 }, async (t) => {
    const root = join(dir, 'big');
    for (let d = 0; d < 100; d++) {
      mkdirSync(join(root, `d${d}`), { recursive: true });
      for (let f = 0; f < 1000; f++) writeFileSync(join(root, `d${d}`, `f${f}`), `${d}/${f}\n`);
    }
    const ctx = { tree: new LayeredTree([root], false), ignore: IgnoreRules.parse('d9*/f1*\n') };
    // What the build keeps, not what V8 lets pile up before collecting it: the old and large-object
    // spaces plus buffers, read right after each full (mark-compact) collection, when what is left
    // is what is kept. Peaks sampled at any time moved with the collector's timing (59-95 MiB from
    // run to run on Node 24, whose young generation follows the machine's memory); forcing
    // collections (--expose-gc set at run time) slowed Node 24's run threefold.
    const kept = (): number => {
      let bytes = process.memoryUsage().arrayBuffers;
      for (const s of getHeapSpaceStatistics()) if (s.space_name !== 'new_space') bytes += s.space_used_size;
      return bytes;
    };
    const rss0 = process.memoryUsage().rss;
    const kept0 = kept();
    let peak = rss0;
    let keptPeak = kept0;
    let fullCollections = 0;
    const rssTimer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const gcs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if ((e as { detail?: { kind?: number } }).detail?.kind !== perfConstants.NODE_PERFORMANCE_GC_MAJOR) continue;
        fullCollections++;
        keptPeak = Math.max(keptPeak, kept());
      }
    });
    gcs.observe({ entryTypes: ['gc'] });
    const started = performance.now();
    try {
      const plan = await planCopyRequest({ instruction: 'COPY', rootfs: base, tmpDir: dir, context: ctx, sources: ['.'], dest: '/big/' });
      const layer = await plan.writeLayer(store);
      assert.ok(layer);
    } finally {
      gcs.disconnect();
      clearInterval(rssTimer);
    }
    // No full collection at all: what is there now, garbage included, is the bound instead.
    if (fullCollections === 0) keptPeak = Math.max(keptPeak, kept());
    const grown = (peak - rss0) / 2 ** 20;
    const keptGrown = (keptPeak - kept0) / 2 ** 20;
    t.diagnostic(`plan + layer of 100 000 files: ${((performance.now() - started) / 1000).toFixed(1)} s, RSS +${grown.toFixed(0)} MiB, heap after full collections plus buffers +${keptGrown.toFixed(0)} MiB (${fullCollections} full collections)`);
    // 100 000 entries kept in memory would take far more than this (names, stats, headers).
    assert.ok(keptGrown < 48, `heap after full collections plus buffers grew by ${keptGrown.toFixed(0)} MiB`);
  });
});
