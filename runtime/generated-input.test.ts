// Generated bad input for the layer tar reader of `berth run` (runtime/layer-unpack.ts;
// docs/reliability.md, "Generated bad input"): layers built entry by entry, with hostile entries
// among ordinary ones (`../`, absolute paths, symlinks and hard links out of the layer, writes
// through a symlink, whiteouts of `..`, devices), then broken at the byte level (cut, a header
// field rewritten with or without a valid checksum, bytes flipped, gzip broken). Properties:
// settles within 10 s; a failure is an Error with a one-line message; nothing is written outside
// the layer's folder (a sentinel folder beside it, and the absolute paths the entries name).
// BERTH_FUZZ_RUNS scales the run count, BERTH_FUZZ_SEED replays a run.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { digestOf } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';
import { unpackLayer } from './layer-unpack.js';
import { assertCleanError, buildTar, FIELD_VALUES, HEADER_FIELDS, mutateTar, withTimeout, type ByteMutation, type HeaderField, type TarEntry } from '../client/testing/tar-bytes.js';

const SEED = process.env.BERTH_FUZZ_SEED ? Number(process.env.BERTH_FUZZ_SEED) : 20250601;
const SCALE = process.env.BERTH_FUZZ_RUNS ? Number(process.env.BERTH_FUZZ_RUNS) / 1000 : 1;
const isRoot = process.getuid?.() === 0;
const ABS = '/tmp/berth-fuzz-unpack-abs';

const ordinary: fc.Arbitrary<TarEntry> = fc.constantFrom<TarEntry>(
  { name: 'etc/', type: '5' },
  { name: 'etc/passwd', data: Buffer.from('root:x:0:0::/:/bin/sh\n') },
  { name: './bin/', type: '5' },
  { name: 'bin/sh', data: Buffer.from('#!'), mode: 0o755 },
  { name: 'bin/ln', type: '2', linkname: 'sh' },
  { name: 'bin/hard', type: '1', linkname: 'bin/sh' },
  { name: 'etc/.wh.passwd' },
  { name: 'var/', type: '5' },
  { name: 'var/.wh..wh..opq' },
  { name: 'big', data: Buffer.alloc(5000, 1) },
);

const hostile: fc.Arbitrary<TarEntry> = fc.oneof(
  fc.constantFrom<TarEntry>(
    { name: '../sentinel/evil', data: Buffer.from('x') },
    { name: '../../escape', data: Buffer.from('x') },
    { name: `${ABS}`, data: Buffer.from('x') },
    { name: 'up', type: '2', linkname: '../sentinel' },
    { name: 'up/evil', data: Buffer.from('x') },
    { name: 'root', type: '2', linkname: '/' },
    { name: `root${ABS}`, data: Buffer.from('x') },
    { name: 'etc', type: '2', linkname: '../sentinel' },
    { name: 'etc/evil', data: Buffer.from('x') },
    { name: 'hard-out', type: '1', linkname: '../sentinel/keep' },
    { name: 'hard-abs', type: '1', linkname: '/etc/hostname' },
    { name: 'hard-root', type: '1', linkname: '.' },
    { name: 'hard-dir', type: '1', linkname: 'etc' },
    { name: '.wh...', data: Buffer.alloc(0) },
    { name: 'etc/.wh.', data: Buffer.alloc(0) },
    { name: '.wh.../sentinel', data: Buffer.alloc(0) },
    { name: 'dev/null', type: '3' },
    { name: 'fifo', type: '6' },
    { name: 'a/b/../../../sentinel/evil', data: Buffer.from('x') },
    { name: 'bin/sh', type: '5' },
    { name: 'bin', data: Buffer.from('file over a directory') },
    { name: '', data: Buffer.from('x') },
    { name: '.', type: '5' },
    { name: 'x'.repeat(300), data: Buffer.from('x') },
  ),
  fc.record({ name: fc.string({ maxLength: 24 }), type: fc.constantFrom('0', '1', '2', '5', '3', '4', '6', '7', 'x'), linkname: fc.constantFrom('', '..', '../sentinel', '/', ABS, 'etc/passwd', 'missing') }).map((e) => ({ ...e, data: Buffer.from('z') })),
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
  entries: TarEntry[];
  bytes: ByteMutation;
  gzip: boolean;
  /** The digest the layer is unpacked under: of the bytes given, or of the layer before mutation. */
  digest: 'actual' | 'original';
}
const caseArb: fc.Arbitrary<Case> = fc.record({
  entries: fc.array(fc.oneof({ weight: 2, arbitrary: ordinary }, { weight: 1, arbitrary: hostile }), { minLength: 1, maxLength: 8 }),
  bytes: byteMutation,
  gzip: fc.boolean(),
  digest: fc.constantFrom('actual', 'actual', 'actual', 'original'),
});

function describeCase(c: Case): string {
  return JSON.stringify(c, (_k, v) => (v && v.type === 'Buffer' ? `<${v.data.length} bytes>` : v));
}

describe('generated bad input for layer unpacking', { skip: !isRoot && 'needs root (mknod, trusted.* xattrs, chown)', timeout: 300_000 }, () => {
  let base: string;
  let n = 0;
  let refused = 0;
  before(async () => {
    base = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'berth-unpack-fuzz-'));
    await mkdir(join(base, 'layers'));
    await mkdir(join(base, 'sentinel'));
    await writeFile(join(base, 'sentinel', 'keep'), 'untouched');
  });
  after(async () => {
    console.log(`# generated-input (unpack): ${n} layers, ${refused} refused, seed ${SEED}`);
    await rm(base, { recursive: true, force: true });
    await rm(ABS, { force: true });
  });

  async function outside(): Promise<string> {
    return JSON.stringify({ top: (await readdir(base)).sort(), sentinel: (await readdir(join(base, 'sentinel'))).sort(), keep: await readFile(join(base, 'sentinel', 'keep'), 'utf8'), abs: existsSync(ABS), up: existsSync(join(base, '..', 'escape')) });
  }

  it(`layers with hostile entries and broken bytes (seed ${SEED})`, async () => {
    const before = await outside();
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const tar = buildTar(c.entries);
        const original = c.gzip ? mutateTar(tar, { kind: 'none' }, true) : tar.bytes;
        const bytes = mutateTar(tar, c.bytes, c.gzip);
        const gz = c.gzip || c.bytes.kind.startsWith('gzip');
        const dest = join(base, 'layers', String(n++));
        await mkdir(dest);
        try {
          await withTimeout(unpackLayer(Readable.from([bytes]), gz ? MediaType.OciLayerGzip : MediaType.OciLayer, digestOf(c.digest === 'actual' ? bytes : original), dest), 10_000, 'unpackLayer');
        } catch (e) {
          refused++;
          assertCleanError(e, describeCase(c));
        }
        assert.equal(await outside(), before, `${describeCase(c)}: something was written outside the layer folder`);
        await rm(dest, { recursive: true, force: true });
      }),
      { seed: SEED, numRuns: Math.max(1, Math.round(1000 * SCALE)), endOnFailure: !process.env.BERTH_FUZZ_SHRINK },
    );
  });
});
