// End to end through the registry: an image built offline is pushed to an in-process `berth serve`
// with skopeo, copied back from it into a fresh OCI layout and a fresh BERTH_ROOT, and run.
// (When the client's `berth pull` lands, this becomes serve → push → pull → run.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestRegistry, type TestRegistry } from '../server/testing.js';
import { buildImage, busyboxLayer } from './test-images.js';

const BERTH = fileURLToPath(new URL('../bin/berth.js', import.meta.url));
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

test('an image pushed to berth serve and copied back runs with its config', { skip: !usable && 'needs root and skopeo' }, async () => {
  await buildImage(join(dir, 'src'), '1.0', [busyboxLayer(), [{ name: 'app/', type: 'directory' }, { name: 'app/greeting', content: 'hello from the registry\n' }]], {
    Cmd: ['cat', '/app/greeting'],
  });
  const ref = `${registry.host}:${registry.port}/team/app:1.0`;
  // Asynchronously: the registry answers from this very process.
  const skopeo = (...args: string[]) => promisify(execFile)('skopeo', ['--insecure-policy', ...args]);
  await skopeo('copy', '--dest-tls-verify=false', `oci:${join(dir, 'src')}:1.0`, `docker://${ref}`);
  await skopeo('copy', '--src-tls-verify=false', `docker://${ref}`, `oci:${join(dir, 'pulled')}:1.0`);
  const r = spawnSync(process.execPath, [BERTH, 'run', '--rm', `oci:${join(dir, 'pulled')}:1.0`], {
    env: { ...process.env, BERTH_ROOT: join(dir, 'fresh-root') },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'hello from the registry\n');
});
