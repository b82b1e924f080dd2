// End to end through the registry: an image built offline is pushed to an in-process `berth serve`
// (skopeo), then `berth run` on a fresh BERTH_ROOT pulls it (the client's store) and runs it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestRegistry, type TestRegistry } from '../server/testing.js';
import { buildImage, busyboxLayer } from './test-images.js';

const BERTH = fileURLToPath(new URL('../../bin/launch.cjs', import.meta.url));
const usable = process.getuid?.() === 0 && spawnSync('skopeo', ['--version']).status === 0;
let dir: string;
let registry: TestRegistry;

before(async () => {
  if (!usable) return;
  dir = await mkdtemp(join(tmpdir(), 'berth-roundtrip-'));
  registry = await startTestRegistry();
});
after(async () => {
  await registry?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('berth run pulls a missing image from berth serve and runs it with its config', { skip: !usable && 'needs root and skopeo' }, async () => {
  await buildImage(join(dir, 'src'), '1.0', [busyboxLayer(), [{ name: 'app/', type: 'directory' }, { name: 'app/greeting', content: 'hello from the registry\n' }]], {
    Cmd: ['cat', '/app/greeting'],
  });
  const ref = `${registry.host}:${registry.port}/team/app:1.0`;
  // Asynchronously: the registry answers from this very process.
  const skopeo = (...args: string[]) => promisify(execFile)('skopeo', ['--insecure-policy', ...args]);
  await skopeo('copy', '--dest-tls-verify=false', `oci:${join(dir, 'src')}:1.0`, `docker://${ref}`);
  const berth = (...args: string[]) =>
    promisify(execFile)(process.execPath, [BERTH, ...args], { env: { ...process.env, BERTH_ROOT: join(dir, 'fresh-root') } }).then(
      (o) => ({ status: 0, stdout: o.stdout, stderr: o.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ status: e.code, stdout: e.stdout, stderr: e.stderr }),
    );
  const r = await berth('run', '--rm', ref);
  assert.match(r.stderr, /Unable to find image/);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'hello from the registry\n');
  const again = await berth('run', '--rm', ref); // now local: no pull
  assert.equal(again.stdout, 'hello from the registry\n');
  assert.doesNotMatch(again.stderr, /Unable to find image/);
  const missing = await berth('run', '--rm', `${registry.host}:${registry.port}/team/absent:1.0`);
  assert.equal(missing.status, 125);

  // The unpacked layers go with the image: not while a container uses them, then at image prune;
  // at once when nothing uses them.
  const unpacked = () => readdirSync(join(dir, 'fresh-root', 'layers', 'sha256'));
  assert.equal(unpacked().length, 2, 'each layer unpacked once');
  const keeper = await berth('run', '-d', '--name', 'keeper', ref, 'sleep', '60');
  assert.equal(keeper.status, 0, keeper.stderr);
  // As docker: an image a container uses is not deleted unless forced.
  const refused = await berth('rmi', ref);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /^berth rmi: conflict: unable to remove repository reference ".*team\/app:1\.0" \(must force\) - container [0-9a-f]{12} is using its referenced image [0-9a-f]{12}\n$/);
  assert.match((await berth('images')).stdout, /team\/app\s+1\.0/);
  assert.equal((await berth('rmi', '-f', ref)).status, 0);
  assert.equal(unpacked().length, 2, 'the running container still has its layers');
  assert.equal((await berth('exec', 'keeper', 'cat', '/app/greeting')).stdout, 'hello from the registry\n');
  assert.equal((await berth('rm', '-f', 'keeper')).status, 0);
  assert.equal((await berth('image', 'prune', '-f')).status, 0);
  assert.deepEqual(unpacked(), []);
  assert.equal((await berth('run', '--rm', ref)).stdout, 'hello from the registry\n'); // pulled and unpacked again
  assert.equal(unpacked().length, 2);
  assert.equal((await berth('rmi', ref)).status, 0);
  assert.deepEqual(unpacked(), []);
  assert.deepEqual(readdirSync(join(dir, 'fresh-root', 'layers', 'tmp')), [], 'nothing left being deleted');
});
