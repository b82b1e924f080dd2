// docker commit → docker push → docker run elsewhere: a committed container goes into the client's
// local store, `berth push` sends it to an in-process `berth serve`, and a fresh BERTH_ROOT pulls
// and runs it with the container's change.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestRegistry, type TestRegistry } from '../server/testing.js';
import { buildImage, busyboxLayer } from './test-images.js';

const BERTH = fileURLToPath(new URL('../../bin/launch.cjs', import.meta.url));
const isRoot = process.getuid?.() === 0;
let dir: string;
let registry: TestRegistry;

before(async () => {
  if (!isRoot) return;
  dir = await mkdtemp(join(tmpdir(), 'berth-commit-'));
  registry = await startTestRegistry();
});
after(async () => {
  await registry?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

// Asynchronous: the registry answers from this very process.
const berth = (root: string, ...args: string[]) =>
  promisify(execFile)(process.execPath, [BERTH, ...args], { env: { ...process.env, BERTH_ROOT: join(dir, root) } }).then(
    (o) => ({ code: 0, stdout: o.stdout, stderr: o.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

test('commit puts the image in the local store; push sends it; a fresh store runs the change', { skip: !isRoot && 'needs root' }, async () => {
  await buildImage(join(dir, 'src'), 'base', [busyboxLayer()], { Cmd: ['cat', '/etc/motd'] });
  const made = await berth('a', 'run', '--name', 'c1', `oci:${join(dir, 'src')}:base`, 'sh', '-c', 'echo committed change > /etc/motd; rm /etc/group');
  assert.equal(made.code, 0, made.stderr);
  const ref = `${registry.host}:${registry.port}/team/committed:2.0`;
  const c = await berth('a', 'commit', '-m', 'the motd', 'c1', ref);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /^sha256:[0-9a-f]{64}\n$/);
  const images = await berth('a', 'images');
  assert.match(images.stdout, new RegExp(`team/committed\\s+2\\.0\\s+${c.stdout.slice(7, 19)}`));
  const history = await berth('a', 'history', '--no-trunc', ref);
  assert.match(history.stdout, /the motd|berth commit/);

  const p = await berth('a', 'push', ref);
  assert.equal(p.code, 0, p.stderr);
  const r = await berth('fresh', 'run', '--rm', ref);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /Unable to find image/);
  assert.equal(r.stdout, 'committed change\n');
  const deleted = await berth('fresh', 'run', '--rm', ref, 'sh', '-c', 'test -e /etc/group && echo group-present; test -x /bin/busybox && echo base');
  assert.equal(deleted.stdout, 'base\n'); // the deletion (a whiteout) travelled too

  const bad = await berth('a', 'commit', 'c1', 'Bad/UPPER:tag');
  assert.equal(bad.code, 125);
  const missing = await berth('a', 'commit', 'no-such-container', ref);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /No such container/);
  await berth('a', 'rm', 'c1');
});
