// The build context: a folder, a tar on stdin (plain or compressed), a Dockerfile alone on stdin,
// `-f` inside and outside the context, the per-Dockerfile .dockerignore, and hostile tars.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { layerTar } from '../runtime/test-images.js';
import { ContextError, openBuildContext } from './context.js';
import { archiveKind } from './archive-kind.js';

let dir: string;

describe('build context', () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-context-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a folder: its Dockerfile (or dockerfile), -f relative to the cwd, <Dockerfile>.dockerignore before .dockerignore', async () => {
    const ctx = join(dir, 'f');
    mkdirSync(join(ctx, 'build'), { recursive: true });
    writeFileSync(join(ctx, 'dockerfile'), 'FROM scratch\n');
    writeFileSync(join(ctx, '.dockerignore'), '*.tmp\n');
    writeFileSync(join(ctx, 'build', 'Release.Dockerfile'), 'FROM busybox\n');
    writeFileSync(join(ctx, 'build', 'Release.Dockerfile.dockerignore'), '*.log\n');
    const c = await openBuildContext(ctx);
    assert.equal(c.dockerfile.text, 'FROM scratch\n');
    assert.equal(c.ignore.excludes('x.tmp'), true);
    const f = await openBuildContext(ctx, { file: join(ctx, 'build', 'Release.Dockerfile') });
    assert.equal(f.dockerfile.text, 'FROM busybox\n');
    assert.deepEqual([f.ignore.excludes('x.tmp'), f.ignore.excludes('x.log')], [false, true]);
    await assert.rejects(openBuildContext(join(dir, 'nope')), { message: `unable to prepare context: path "${join(dir, 'nope')}" not found` });
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    await assert.rejects(openBuildContext(empty), /unable to evaluate symlinks in Dockerfile path: lstat .*Dockerfile: no such file or directory/);
  });

  test('-: a tar on stdin (plain, gzip, bzip2, xz) is unpacked, -f names a file in it; close() removes it', async () => {
    const gz = await layerTar([{ name: 'Dockerfile', content: 'FROM scratch\nCOPY a /\n' }, { name: 'sub/', type: 'directory' }, { name: 'sub/Other', content: 'FROM x\n' }, { name: 'a', content: 'A', mode: 0o600 }, { name: '.dockerignore', content: 'b\n' }]);
    const plain = gunzipSync(gz);
    for (const [kind, bytes] of [['gzip', gz], ['tar', plain], ['bzip2', execFileSync('bzip2', ['-c'], { input: plain })], ['xz', execFileSync('xz', ['-c'], { input: plain })]] as const) {
      assert.equal(archiveKind(bytes.subarray(0, 512)), kind);
      const c = await openBuildContext('-', { stdin: Readable.from([bytes]) });
      assert.equal(c.dockerfile.text, 'FROM scratch\nCOPY a /\n', kind);
      assert.equal(readFileSync(join(c.dir!, 'a'), 'utf8'), 'A');
      assert.equal(c.ignore.excludes('b'), true);
      const { node } = await c.tree.resolve('a');
      assert.equal(node?.stat.mode! & 0o777, 0o600);
      await c.close();
      assert.equal(existsSync(c.dir!), false);
    }
    const other = await openBuildContext('-', { stdin: Readable.from([gz]), file: 'sub/Other' });
    assert.equal(other.dockerfile.text, 'FROM x\n');
    await other.close();
    await assert.rejects(openBuildContext('-', { stdin: Readable.from([gz]), file: 'missing' }), { message: 'Cannot locate specified Dockerfile: missing' });
  });

  test('-: a Dockerfile alone on stdin gives an empty context', async () => {
    const c = await openBuildContext('-', { stdin: Readable.from([Buffer.from('FROM scratch\nCMD ["x"]\n')]) });
    assert.equal(c.dir, undefined);
    assert.equal(c.dockerfile.text, 'FROM scratch\nCMD ["x"]\n');
    assert.equal((await c.tree.resolve('anything')).node, undefined);
    await c.close();
    const tiny = await openBuildContext('-', { stdin: Readable.from([Buffer.from('FROM a')]) });
    assert.equal(tiny.dockerfile.text, 'FROM a');
  });

  test('-f - reads the Dockerfile from stdin with a folder context; both on stdin is refused', async () => {
    const ctx = join(dir, 'g');
    mkdirSync(ctx);
    const c = await openBuildContext(ctx, { file: '-', stdin: Readable.from([Buffer.from('FROM y\n')]) });
    assert.equal(c.dockerfile.text, 'FROM y\n');
    assert.equal(c.dir, ctx);
    await assert.rejects(openBuildContext('-', { file: '-' }), ContextError);
  });

  test('a context tar may not write outside its folder: `..` entries and paths through its own symlinks are refused', async () => {
    const up = await layerTar([{ name: 'Dockerfile', content: 'FROM x\n' }, { name: '../../escaped', content: 'e' }]);
    await assert.rejects(openBuildContext('-', { stdin: Readable.from([up]), tmpDir: dir }), /path outside the context/);
    const through = await layerTar([{ name: 'Dockerfile', content: 'FROM x\n' }, { name: 'l', type: 'symlink', linkname: '/tmp' }, { name: 'l/planted', content: 'p' }]);
    await assert.rejects(openBuildContext('-', { stdin: Readable.from([through]), tmpDir: dir }), /below a non-directory/);
    assert.equal(existsSync('/tmp/planted'), false);
  });
});
