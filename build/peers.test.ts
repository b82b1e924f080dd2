// An image built by `berth build` is pushed to `berth serve`, then pulled and run by real peers:
// podman (Debian's, with its own storage in a temp folder) and docker (a private dockerd, as the
// conformance tests start it). Each prints what `berth run` prints: config (Env, WorkingDir,
// User, Entrypoint/Cmd) and files (a RUN's output, a deletion) are understood the same way.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage, busyboxLayer } from '../runtime/test-images.js';
import { startTestRegistry, type TestRegistry } from '../server/testing.js';
import { berth as runBerth } from '../client/testing/peers.js';
import { dockerMissing, dockerPullRun, podmanMissing, podmanPullRun } from '../conformance-tests/fixtures/peer-daemon.js';

const isRoot = process.getuid?.() === 0;

let dir: string;
let root: string;
let registry: TestRegistry;
let ref: string;
const EXPECTED = 'app|/srv/app|hello from RUN|berth build|gone\n';

const berth = (args: string[]) => runBerth(args, { ...(process.env as Record<string, string>), BERTH_ROOT: root }, undefined, dir);

describe('an image built by berth, pulled by podman and docker from berth serve', { skip: (!isRoot && 'needs root') }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-build-peers-'));
    root = join(dir, 'root');
    await buildImage(join(dir, 'layout'), 'busybox', [busyboxLayer()]);
    registry = await startTestRegistry();
    ref = `127.0.0.1:${registry.port}/built/peers:1`;
    const ctx = join(dir, 'ctx');
    await mkdir(ctx);
    await writeFile(
      join(ctx, 'Dockerfile'),
      [
        `FROM oci:${join(dir, 'layout')}:busybox`,
        'ENV MSG="berth build"',
        'RUN mkdir -p /srv/app /opt && echo "hello from RUN" > /srv/app/greeting && echo x > /opt/tmpfile',
        'RUN rm /opt/tmpfile',
        'WORKDIR /srv/app',
        'USER app',
        'ENTRYPOINT ["sh", "-c"]',
        `CMD ["echo \\"$(id -un)|$(pwd)|$(cat greeting)|$MSG|$(test -e /opt/tmpfile && echo present || echo gone)\\""]`,
        '',
      ].join('\n'),
    );
    const built = await berth(['build', '--progress', 'plain', '-t', ref, '--push', ctx]);
    assert.equal(built.code, 0, `${built.stdout}\n${built.stderr}`);
    const own = await berth(['run', '--rm', ref]);
    assert.equal(own.stdout, EXPECTED, own.stderr);
  });
  after(async () => {
    await registry?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('podman pulls it and runs it with the same output', { skip: podmanMissing() }, async () => {
    assert.equal(await podmanPullRun(dir, ref), EXPECTED);
  });

  test('docker pulls it and runs it with the same output', { skip: dockerMissing() }, async () => {
    assert.equal(await dockerPullRun(`127.0.0.1:${registry.port}`, ref), EXPECTED);
  });
});
