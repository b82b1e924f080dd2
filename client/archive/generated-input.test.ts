// Generated bad input for `berth load` (docs/reliability.md, "Generated bad input"): valid docker
// archives and OCI layout tars built here, then broken by fast-check one way at a time (manifest
// .json, index.json, oci-layout or a manifest with a field wrong; a blob missing or not matching
// its digest; escaping names, symlinks and hard links; the tar cut, a header field rewritten, bytes
// flipped, gzip broken) and fed to loadArchive. Properties: settles within 10 s; a failure is an
// Error with a one-line message (never a TypeError, RangeError or raw JSON SyntaxError); a failed
// load leaves the local store as it was (image index, blob files, temp folder); nothing appears
// outside the store (a sentinel folder beside it). A few cases go through the `berth load` verb:
// exit 1 and one stderr line.
// BERTH_FUZZ_RUNS scales the run counts, BERTH_FUZZ_SEED replays a run.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { digestOf } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import { LocalImageStore } from '../store/image-store.js';
import { loadArchive } from './load.js';
import { berth, sandbox, tempDir } from '../testing/peers.js';
import { assertCleanError, buildTar, FIELD_VALUES, HEADER_FIELDS, mutateTar, withTimeout, type ByteMutation, type HeaderField, type TarEntry } from '../testing/tar-bytes.js';

const SEED = process.env.BERTH_FUZZ_SEED ? Number(process.env.BERTH_FUZZ_SEED) : 20250601;
const SCALE = process.env.BERTH_FUZZ_RUNS ? Number(process.env.BERTH_FUZZ_RUNS) / 1000 : 1;
const runs = (n: number): number => Math.max(1, Math.round(n * SCALE));

// ---------------------------------------------------------------------------------------------
// A small image, as a docker archive and as an OCI layout

interface Blob {
  bytes: Buffer;
  digest: string;
}
const blob = (bytes: Buffer): Blob => ({ bytes, digest: digestOf(bytes) });
const hexOf = (d: string) => d.split(':')[1]!;

function image(n: number) {
  const layerTar = buildTar([{ name: 'etc/', type: '5' }, { name: `etc/file${n}`, data: Buffer.from(`layer ${n}\n`) }]).bytes;
  const layer = blob(layerTar);
  const config = blob(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [layer.digest] } })));
  const manifest = blob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: config.digest, size: config.bytes.length }, layers: [{ mediaType: MediaType.OciLayer, digest: layer.digest, size: layer.bytes.length }] })));
  return { layer, config, manifest };
}
const IMAGES = [image(1), image(2)];

type Doc = Record<string, unknown>;

/** The archive before byte-level mutation: its entries, JSON documents kept apart so a field can be made wrong. */
interface ArchiveSpec {
  format: 'docker' | 'oci';
  docs: Record<string, unknown>;
  entries: TarEntry[];
}

function dockerArchive(count: number): ArchiveSpec {
  const imgs = IMAGES.slice(0, count);
  const entries: TarEntry[] = [];
  imgs.forEach((img, i) => {
    entries.push({ name: `${hexOf(img.config.digest)}.json`, data: img.config.bytes });
    entries.push({ name: `layer${i}/`, type: '5' }, { name: `layer${i}/layer.tar`, data: img.layer.bytes });
  });
  const manifest = imgs.map((img, i) => ({ Config: `${hexOf(img.config.digest)}.json`, RepoTags: [`fuzz/img${i}:v${i}`], Layers: [`layer${i}/layer.tar`] }));
  return { format: 'docker', docs: { 'manifest.json': manifest, repositories: { 'fuzz/img0': { v0: 'x' } } }, entries };
}

function ociArchive(count: number): ArchiveSpec {
  const imgs = IMAGES.slice(0, count);
  const entries: TarEntry[] = [{ name: 'blobs/', type: '5' }, { name: 'blobs/sha256/', type: '5' }];
  const docs: Record<string, unknown> = { 'oci-layout': { imageLayoutVersion: '1.0.0' } };
  imgs.forEach((img) => {
    for (const b of [img.layer, img.config]) entries.push({ name: `blobs/sha256/${hexOf(b.digest)}`, data: b.bytes });
    docs[`blobs/sha256/${hexOf(img.manifest.digest)}`] = JSON.parse(img.manifest.bytes.toString());
  });
  docs['index.json'] = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: imgs.map((img, i) => ({ mediaType: MediaType.OciManifest, digest: img.manifest.digest, size: img.manifest.bytes.length, annotations: { 'io.containerd.image.name': `docker.io/fuzz/oci${i}:v${i}`, 'org.opencontainers.image.ref.name': `v${i}` } })) };
  return { format: 'oci', docs, entries };
}

/** Serialises the spec: documents first (manifest blobs named by their content's digest unless `keepNames`). */
function toEntries(spec: ArchiveSpec, opts: { keepNames: boolean }): TarEntry[] {
  const out: TarEntry[] = [];
  for (const [name, doc] of Object.entries(spec.docs)) {
    if (doc === undefined) continue;
    const data = Buffer.isBuffer(doc) ? doc : Buffer.from(JSON.stringify(doc));
    // A manifest blob whose content was changed is renamed to its new digest unless the mutation wants a mismatch.
    const renamed = name.startsWith('blobs/sha256/') && !opts.keepNames ? `blobs/sha256/${hexOf(digestOf(data))}` : name;
    if (renamed !== name && spec.format === 'oci') retarget(spec, name, renamed);
    out.push({ name: renamed, data });
  }
  return [...spec.entries, ...out];
}

function retarget(spec: ArchiveSpec, from: string, to: string): void {
  const index = spec.docs['index.json'] as { manifests?: Array<{ digest?: unknown; size?: unknown }> } | undefined;
  for (const m of Array.isArray(index?.manifests) ? index.manifests : []) {
    if (m && typeof m === 'object' && m.digest === `sha256:${from.slice('blobs/sha256/'.length)}`) m.digest = `sha256:${to.slice('blobs/sha256/'.length)}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Mutations

const wrongValue = fc.oneof(
  fc.constantFrom(null, true, 0, -1, 1.5, '', 'x', [], {}, [1], { a: 1 }, [null], ['Team/App:1'], ['fuzz/ok:1', 'Bad Ref'], '../../etc/passwd', '/etc/passwd', 'layer0/layer.tar', 'sha256:zz', `sha256:${'0'.repeat(64)}`, 'manifest.json', ['../../../x'], 2 ** 53, '1.0', 'docker.io/fuzz/x:' + 'y'.repeat(200)),
  fc.string({ maxLength: 12 }),
  fc.integer(),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.oneof(fc.string({ maxLength: 4 }), fc.integer(), fc.constant(null)), { maxKeys: 2 }),
);

/** Document field paths made wrong in turn (`*` = the first array element, then any). */
const DOC_FIELDS: Record<string, string[]> = {
  'manifest.json': ['', '0', '0.Config', '0.RepoTags', '0.RepoTags.0', '0.Layers', '0.Layers.0', '1', '1.Config', '1.Layers.0', '1.RepoTags'],
  'index.json': ['', 'schemaVersion', 'manifests', 'manifests.0', 'manifests.0.digest', 'manifests.0.size', 'manifests.0.mediaType', 'manifests.0.annotations', 'manifests.0.annotations.io.containerd.image.name', 'manifests.1.digest', 'manifests.1.annotations'],
  'oci-layout': ['', 'imageLayoutVersion'],
  manifest: ['', 'schemaVersion', 'mediaType', 'config', 'config.digest', 'config.size', 'layers', 'layers.0', 'layers.0.digest', 'layers.0.mediaType', 'manifests'],
};

function setPath(doc: unknown, path: string, value: unknown): unknown {
  if (path === '') return value;
  const root = doc as Doc;
  // 'annotations.io.containerd.image.name' is one key: only the first dots are path separators.
  const keys = path.startsWith('manifests.0.annotations.') ? ['manifests', '0', 'annotations', path.slice('manifests.0.annotations.'.length)] : path.split('.');
  let o: Doc = root;
  for (const k of keys.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null) o[k] = {};
    o = o[k] as Doc;
  }
  o[keys[keys.length - 1]!] = value;
  return root;
}

type Structural =
  | { kind: 'none' }
  | { kind: 'field'; doc: string; path: number; value: unknown }
  | { kind: 'raw-doc'; doc: string; bytes: string }
  | { kind: 'drop'; entry: number }
  | { kind: 'alter-blob'; entry: number }
  | { kind: 'rename-mismatch' }
  | { kind: 'extra'; entry: TarEntry };

const extraEntry: fc.Arbitrary<TarEntry> = fc.oneof(
  fc.constantFrom<TarEntry>(
    { name: '../outside', data: Buffer.from('x') },
    { name: '../../sentinel/evil', data: Buffer.from('x') },
    { name: '/tmp/berth-fuzz-abs', data: Buffer.from('x') },
    { name: 'manifest.json', type: '2', linkname: '../../../etc/passwd' },
    { name: 'index.json', type: '2', linkname: '/etc/passwd' },
    { name: 'layer0/layer.tar', type: '2', linkname: 'layer0/layer.tar' },
    { name: 'loop/a', type: '2', linkname: 'b' },
    { name: 'loop/b', type: '2', linkname: 'a' },
    { name: 'layer0/layer.tar', type: '1', linkname: '../../../etc/passwd' },
    { name: 'hard', type: '1', linkname: '/etc/shadow' },
    { name: 'dev', type: '3' },
    { name: 'fifo', type: '6' },
    { name: 'blobs/sha256/../../manifest.json', data: Buffer.from('[]') },
  ),
  fc.record({ name: fc.string({ maxLength: 30 }), type: fc.constantFrom('0', '1', '2', '5'), linkname: fc.constantFrom('', '..', '../../x', '/x', 'manifest.json') }).map((e) => ({ ...e, data: Buffer.from('y') })),
);

const structural: fc.Arbitrary<Structural> = fc.oneof(
  { weight: 2, arbitrary: fc.constant({ kind: 'none' } as const) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('field' as const), doc: fc.constantFrom('manifest.json', 'index.json', 'oci-layout', 'manifest'), path: fc.nat(), value: wrongValue }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('raw-doc' as const), doc: fc.constantFrom('manifest.json', 'index.json', 'oci-layout', 'manifest'), bytes: fc.constantFrom('', '{', '[', 'null', '"x"', '{"schemaVersion":2}', '\u0000', '[{}]', '{"manifests":[{}]}', '[{"Config":"x"}]', '[1e400]', '[' + '['.repeat(5000) + ']'.repeat(5000) + ']') }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('drop' as const), entry: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('alter-blob' as const), entry: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'rename-mismatch' } as const) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('extra' as const), entry: extraEntry }) },
);

const byteMutation: fc.Arbitrary<ByteMutation> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: 'none' } as const) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('field' as const), entry: fc.nat(), field: fc.constantFrom(...(Object.keys(HEADER_FIELDS) as HeaderField[])), value: fc.oneof(fc.constantFrom(...FIELD_VALUES), fc.string({ maxLength: 12 })), fixSum: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }), count: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('zero-block' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('gzip-flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('gzip-truncate' as const), at: fc.nat() }) },
);

interface Case {
  format: 'docker' | 'oci';
  images: number;
  structural: Structural;
  bytes: ByteMutation;
  gzip: boolean;
}
const caseArb: fc.Arbitrary<Case> = fc.record({ format: fc.constantFrom('docker', 'oci'), images: fc.constantFrom(1, 2, 2), structural, bytes: byteMutation, gzip: fc.boolean() });

function archiveFor(c: Case): Buffer {
  const spec = c.format === 'docker' ? dockerArchive(c.images) : ociArchive(c.images);
  let keepNames = false;
  const s = c.structural;
  const docName = (d: string) => (d === 'manifest' ? Object.keys(spec.docs).find((k) => k.startsWith('blobs/')) ?? 'index.json' : d);
  switch (s.kind) {
    case 'field': {
      const name = docName(s.doc);
      const fields = DOC_FIELDS[s.doc]!;
      if (name in spec.docs) spec.docs[name] = setPath(structuredClone(spec.docs[name]), fields[s.path % fields.length]!, structuredClone(s.value));
      break;
    }
    case 'raw-doc': {
      const name = docName(s.doc);
      if (name in spec.docs) spec.docs[name] = Buffer.from(s.bytes);
      keepNames = true;
      break;
    }
    case 'drop': {
      const names = [...Object.keys(spec.docs), ...spec.entries.map((e) => e.name)];
      const victim = names[s.entry % names.length]!;
      if (victim in spec.docs) delete spec.docs[victim];
      else spec.entries = spec.entries.filter((e) => e.name !== victim);
      break;
    }
    case 'alter-blob': {
      const files = spec.entries.filter((e) => e.data && e.data.length > 0);
      const victim = files[s.entry % files.length]!;
      victim.data = Buffer.concat([victim.data!, Buffer.from('!')]);
      break;
    }
    case 'rename-mismatch': {
      keepNames = true;
      const m = Object.keys(spec.docs).find((k) => k.startsWith('blobs/'));
      if (m) spec.docs[m] = { ...(spec.docs[m] as Doc), annotations: { changed: 'yes' } };
      break;
    }
    case 'extra':
      spec.entries.push(s.entry);
      break;
  }
  return mutateTar(buildTar(toEntries(spec, { keepNames })), c.bytes, c.gzip);
}

// ---------------------------------------------------------------------------------------------

/** Counterexamples this campaign found, replayed first on every run (docs/reliability.md). */
const REGRESSIONS: Case[] = [
  // index.json's descriptor without a digest: a TypeError escaped ("Cannot read properties of undefined").
  { format: 'oci', images: 1, structural: { kind: 'field', doc: 'index.json', path: 3, value: { '': 684312357 } }, bytes: { kind: 'none' }, gzip: false },
  // A config cut to 2 bytes: the raw JSON SyntaxError, no file named ("Unterminated string in JSON at position 2").
  { format: 'docker', images: 1, structural: { kind: 'none' }, bytes: { kind: 'field', entry: 0, field: 'size', value: '2', fixSum: true }, gzip: false },
  // Two images, the second's config broken: the first was registered before the second failed (a partial load).
  { format: 'docker', images: 2, structural: { kind: 'field', doc: 'manifest.json', path: 991563613, value: 0 }, bytes: { kind: 'field', entry: 2147483632, field: 'size', value: '2', fixSum: true }, gzip: false },
  // manifest.json entries of the wrong types: TypeErrors (Config a number, Layers a string, RepoTags an object).
  { format: 'docker', images: 1, structural: { kind: 'field', doc: 'manifest.json', path: 2, value: 7 }, bytes: { kind: 'none' }, gzip: false },
  { format: 'docker', images: 1, structural: { kind: 'field', doc: 'manifest.json', path: 5, value: 'layer0/layer.tar' }, bytes: { kind: 'none' }, gzip: false },
  { format: 'docker', images: 1, structural: { kind: 'field', doc: 'manifest.json', path: 3, value: { a: 1 } }, bytes: { kind: 'none' }, gzip: false },
];

describe('generated bad input for berth load', { timeout: 300_000 }, () => {
  let base: string;
  let root: string;
  let store: LocalImageStore;
  let loads = 0;
  let failures = 0;

  async function storeState(): Promise<string> {
    const doc = await store.index.read();
    const blobs = (await store.allBlobs()).sort();
    const tmp = await readdir(store.blobs.layout.tmpDir).catch(() => []);
    return JSON.stringify({ tags: doc.tags, images: doc.images, blobs, tmp });
  }

  async function outside(): Promise<string> {
    const top = (await readdir(base)).sort();
    const sentinel = (await readdir(join(base, 'sentinel'))).sort();
    return JSON.stringify({ top, sentinel, file: await readFile(join(base, 'sentinel', 'keep'), 'utf8') });
  }

  before(async () => {
    // On tmpfs when there is one: every load fsyncs its blobs, and the campaign is about parsing, not disks.
    base = existsSync('/dev/shm') ? await mkdtemp(join('/dev/shm', 'berth-load-fuzz-')) : await tempDir('berth-load-fuzz-');
    root = join(base, 'store');
    await mkdir(join(base, 'sentinel'));
    await writeFile(join(base, 'sentinel', 'keep'), 'untouched');
    store = await LocalImageStore.open(root);
    // The store holds an image already: a failed load must keep it, and the blobs it shares.
    await loadArchive(store, Readable.from([buildTar(toEntries(dockerArchive(1), { keepNames: false })).bytes]));
  });
  after(async () => {
    console.log(`# generated-input (load): ${loads} archives, ${failures} refused, seed ${SEED}`);
    await rm(base, { recursive: true, force: true });
  });

  async function checkLoad(c: Case): Promise<void> {
    const bytes = archiveFor(c);
    const what = `${JSON.stringify(c, (_k, v) => (Buffer.isBuffer(v) || (v && v.type === 'Buffer') ? `<${v.length ?? v.data?.length} bytes>` : v))} (${bytes.length} bytes)`;
    const before = await storeState();
    const outsideBefore = await outside();
    loads++;
    let error: unknown;
    try {
      await withTimeout(loadArchive(store, Readable.from([bytes])), 10_000, 'loadArchive');
    } catch (e) {
      error = e;
    }
    if (error !== undefined) {
      failures++;
      assertCleanError(error, what);
      assert.equal(await storeState(), before, `${what}: refused (${(error as Error).message}), yet the store changed`);
    } else {
      // Loaded: every image it names is whole in the store.
      const doc = await store.index.read();
      for (const d of Object.values(doc.tags)) assert.ok(doc.images[d], `${what}: tag to ${d} without an image record`);
      for (const r of Object.values(doc.images)) for (const b of [r.digest, r.config?.digest, ...(r.layers ?? []).map((l) => l.digest)]) if (b) assert.ok(await store.blobs.has(b), `${what}: image ${r.digest} lacks blob ${b}`);
      assert.deepEqual(await readdir(store.blobs.layout.tmpDir), [], `${what}: temp files left`);
    }
    assert.equal(await outside(), outsideBefore, `${what}: something was written outside the store`);
  }

  it(`docker archives and OCI layouts, a field wrong or the bytes broken, one way at a time (seed ${SEED})`, async () => {
    await fc.assert(fc.asyncProperty(caseArb, checkLoad), { seed: SEED, numRuns: runs(350), endOnFailure: !process.env.BERTH_FUZZ_SHRINK, examples: REGRESSIONS.map((c) => [c]) });
  });

  it(`berth load on broken archives: exit 1, one line on stderr, nothing stored (seed ${SEED})`, async () => {
    const sb = await sandbox();
    try {
      await fc.assert(
        fc.asyncProperty(caseArb.filter((c) => c.bytes.kind === 'truncate' || c.bytes.kind === 'gzip-truncate' || c.structural.kind === 'drop'), async (c) => {
          const file = join(sb.dir, 'in.tar');
          await writeFile(file, archiveFor(c));
          const s = await LocalImageStore.open(sb.env.BERTH_ROOT!);
          const before = JSON.stringify(await s.index.read());
          const r = await berth(['load', '-i', file], sb.env);
          if (r.code === 0) return;
          assert.equal(r.code, 1, `${JSON.stringify(c)}: exit ${r.code} ${r.stderr}`);
          assert.match(r.stderr, /^berth load: [^\n]+\n$/, `${JSON.stringify(c)}: ${JSON.stringify(r.stderr)}`);
          assert.equal(JSON.stringify(await s.index.read()), before, `${JSON.stringify(c)}: a failed load changed the image index`);
        }),
        { seed: SEED, numRuns: runs(8), endOnFailure: true },
      );
    } finally {
      await sb.cleanup();
    }
  });
});
