// The CLI bundle and its launcher (scripts/bundle-cli.mjs, bin/launch.cjs): the code cache is
// written once per verb and then taken as it is, a damaged or foreign cache is replaced, a bundle
// older than dist/'s modules is not run, an unwritable cache folder costs nothing but speed, and
// the verbs left out of the bundle (the registry's) still load from dist/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../client/testing/peers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const LAUNCH = join(ROOT, 'bin', 'launch.cjs');
const BUNDLE = join(ROOT, 'dist', 'cli', 'berth.cjs');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function node(args: string[], env: Record<string, string>, opts: { closeStdout?: boolean } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    // The reader goes away before berth writes (`berth images | head -0`).
    if (opts.closeStdout) child.stdout.destroy();
    else child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

async function sandbox(): Promise<{ dir: string; env: Record<string, string>; cache: string }> {
  const dir = await tempDir('berth-bundle-');
  const env = { HOME: join(dir, 'home'), BERTH_ROOT: join(dir, 'root'), BERTH_CONFIG: join(dir, 'none.json'), XDG_CACHE_HOME: join(dir, 'cache') };
  return { dir, env, cache: join(dir, 'cache', 'berth', 'compile-cache') };
}

const cacheFiles = async (cache: string) => (await readdir(cache).catch(() => [] as string[])).filter((f) => f.endsWith('.v8')).sort();

test('the bundle holds the client and runtime verbs, not the registry or berth build', async () => {
  const code = await readFile(BUNDLE, 'latin1');
  assert.ok(code.length > 100_000, 'the bundle holds the verbs');
  // Loaded on demand, from dist/ (the launcher's __berth_import): never bundled.
  assert.match(code, /__berth_import\("\.\.\/server\/cli\.js"\)/);
  assert.match(code, /__berth_import\("\.\.\/build\/cli\.js"\)/);
  assert.doesNotMatch(code, /\bimport\(\s*["'`]/, 'every import() goes through the launcher');
  assert.doesNotMatch(code, /koa|@aws-sdk|classic-level/i);
});

test('each verb writes its code cache once, then runs from it; the output is the same', async () => {
  const { env, cache } = await sandbox();
  const first = await node([LAUNCH, 'images'], env);
  assert.deepEqual({ code: first.code, stderr: first.stderr }, { code: 0, stderr: '' });
  assert.match(first.stdout, /^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE\n$/);
  const files = await cacheFiles(cache);
  assert.equal(files.length, 1);
  assert.match(files[0]!, new RegExp(`^cli-${process.version.replaceAll('.', '\\.')}-\\d+-\\d+-images\\.v8$`));
  const before = await stat(join(cache, files[0]!));
  assert.ok(before.size > 10_000, `a cache of the compiled functions (${before.size} bytes)`);
  const second = await node([LAUNCH, 'images'], env);
  assert.deepEqual(second, first);
  // Taken as it is: a cache V8 refused would have been written again (a new file renamed over it).
  const after = await stat(join(cache, files[0]!));
  assert.deepEqual([after.ino, after.mtimeMs], [before.ino, before.mtimeMs]);
  // Another verb has its own.
  assert.equal((await node([LAUNCH, 'ps', '-a'], env)).code, 0);
  assert.equal((await cacheFiles(cache)).length, 2);
});

test('a damaged cache is refused by V8 and replaced; the verb runs as usual', async () => {
  const { env, cache } = await sandbox();
  assert.equal((await node([LAUNCH, 'ps'], env)).code, 0);
  const [file] = await cacheFiles(cache);
  const good = await readFile(join(cache, file!));
  // Same length, different bytes: what a cache of another bundle or a torn write looks like.
  await writeFile(join(cache, file!), Buffer.alloc(good.length, 0x5a));
  const r = await node([LAUNCH, 'ps'], env);
  assert.deepEqual({ code: r.code, stderr: r.stderr }, { code: 0, stderr: '' });
  assert.match(r.stdout, /^CONTAINER ID +IMAGE +COMMAND +CREATED +STATUS +PORTS +NAMES\n$/);
  const replaced = await readFile(join(cache, file!));
  assert.notDeepEqual(replaced, Buffer.alloc(good.length, 0x5a));
  assert.ok(replaced.length > 10_000);
});

test('an unwritable cache folder: the verb runs, uncached', async () => {
  const { dir, env } = await sandbox();
  await writeFile(join(dir, 'not-a-dir'), '');
  const r = await node([LAUNCH, 'images', '-q'], { ...env, XDG_CACHE_HOME: join(dir, 'not-a-dir') });
  assert.deepEqual(r, { code: 0, stdout: '', stderr: '' });
});

test('a bundle older than what tsc last wrote is not run: dist/bin/berth.js is', async () => {
  // A copy of the layout the launcher expects, with a stand-in for dist/'s entry point.
  const { dir, env } = await sandbox();
  await mkdir(join(dir, 'bin'));
  await mkdir(join(dir, 'dist', 'cli'), { recursive: true });
  await mkdir(join(dir, 'dist', 'bin'));
  await copyFile(LAUNCH, join(dir, 'bin', 'launch.cjs'));
  await copyFile(BUNDLE, join(dir, 'dist', 'cli', 'berth.cjs'));
  await writeFile(join(dir, 'package.json'), JSON.stringify({ version: '9.9.9-bundle' }));
  await writeFile(join(dir, 'dist', 'bin', 'berth.js'), "process.stdout.write('dist modules ' + process.argv.slice(2).join(' ') + '\\n');\n");
  const commands = join(dir, 'dist', 'bin', 'commands.js');
  await writeFile(commands, '');
  const past = new Date(Date.now() - 60_000);
  await utimes(commands, past, past);
  const fresh = await node([join(dir, 'bin', 'launch.cjs'), '--version'], env);
  assert.deepEqual(fresh, { code: 0, stdout: 'berth 9.9.9-bundle\n', stderr: '' });
  // tsc ran after the bundle was made.
  const now = new Date(Date.now() + 60_000);
  await utimes(commands, now, now);
  assert.deepEqual(await node([join(dir, 'bin', 'launch.cjs'), '--version'], env), { code: 0, stdout: 'dist modules --version\n', stderr: '' });
  // And the registry always runs from dist/'s modules.
  await utimes(commands, past, past);
  assert.deepEqual(await node([join(dir, 'bin', 'launch.cjs'), 'serve', '--help'], env), { code: 0, stdout: 'dist modules serve --help\n', stderr: '' });
});

test('a verb whose module is left out of the bundle loads it from dist/ through the launcher', async () => {
  const { env } = await sandbox();
  const r = await node([LAUNCH, 'fsck', '--help'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Usage: berth fsck \[OPTIONS\]/);
});

test('a reader that went away ends the output quietly (no EPIPE trace)', async () => {
  const { env } = await sandbox();
  for (const args of [['images'], ['ps', '-a'], ['network', 'ls'], ['version']]) {
    const r = await node([LAUNCH, ...args], env, { closeStdout: true });
    assert.deepEqual({ code: r.code, stderr: r.stderr }, { code: 0, stderr: '' }, args.join(' '));
  }
});
