// An image whose layers come from COPY and ADD (context files and folders, wildcards, symlinks,
// --chown by names, --chmod, ADD of a tar, COPY --from, .dockerignore) is built by berth, pushed to
// `berth serve`, then run by podman and by docker (a private dockerd): each lists the copied
// files with their modes, owners, link targets and contents exactly as `berth run` does.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage, busyboxLayer, layerTar } from '../runtime/test-images.js';
import { startTestRegistry, type TestRegistry } from '../server/testing.js';
import { berth as runBerth } from '../client/testing/peers.js';
import { dockerMissing, dockerPullRun, podmanMissing, podmanPullRun } from '../conformance-tests/fixtures/peer-daemon.js';

const isRoot = process.getuid?.() === 0;

let dir: string;
let root: string;
let registry: TestRegistry;
let ref: string;
let expected: string;

// What each engine runs: every copied path with type, mode, owner and content (or link target).
const LIST = 'cd / && for p in $(find app opt etc/app from-build -print 2>/dev/null | sort); do if [ -L "$p" ]; then echo "$p link $(readlink "$p")"; elif [ -d "$p" ]; then echo "$p dir $(stat -c "%a %u:%g" "$p")"; else echo "$p file $(stat -c "%a %u:%g" "$p") $(cat "$p" | tr "\\n" " ")"; fi; done';

const berth = (args: string[]) => runBerth(args, { ...(process.env as Record<string, string>), BERTH_ROOT: root }, undefined, dir);

describe('an image made by COPY and ADD, run by podman and docker from berth serve', { skip: !isRoot && 'needs root' }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-copy-peers-'));
    root = join(dir, 'root');
    await buildImage(join(dir, 'layout'), 'busybox', [[...busyboxLayer(), { name: 'bin/find', type: 'symlink', linkname: 'busybox' }, { name: 'bin/sort', type: 'symlink', linkname: 'busybox' }]], { Cmd: ['sh'] });
    registry = await startTestRegistry();
    ref = `127.0.0.1:${registry.port}/built/copies:1`;
    const ctx = join(dir, 'ctx');
    const file = (p: string, content: string, mode?: number) => {
      mkdirSync(join(ctx, p, '..'), { recursive: true });
      writeFileSync(join(ctx, p), content);
      if (mode !== undefined) chmodSync(join(ctx, p), mode);
    };
    file('src/main.js', 'main', 0o640);
    file('src/lib/util.js', 'util', 0o600);
    file('src/bin/run', '#!/bin/sh', 0o755);
    symlinkSync('main.js', join(ctx, 'src', 'entry'));
    file('conf/a.conf', 'a=1');
    file('notes.md', 'notes');
    file('skip.log', 'never');
    file('.dockerignore', '*.log\n');
    writeFileSync(join(ctx, 'pkg.tar.gz'), await layerTar([{ name: 'pkg/', type: 'directory', mode: 0o711 }, { name: 'pkg/tool', content: 'tool', mode: 0o755 }, { name: 'pkg/link', type: 'symlink', linkname: 'tool' }]));
    file(
      'Dockerfile',
      [
        `FROM oci:${join(dir, 'layout')}:busybox AS build`,
        'RUN mkdir -p /out && echo built > /out/result && chmod 604 /out/result && chown 1000:2000 /out/result',
        `FROM oci:${join(dir, 'layout')}:busybox`,
        'WORKDIR /app',
        'COPY src/ ./',
        'COPY *.md *.log docs/',
        'COPY --chown=app:extra --chmod=0750 conf /etc/app/',
        'ADD pkg.tar.gz /opt/',
        'COPY --from=build /out /from-build/',
        `CMD ["sh", "-c", ${JSON.stringify(LIST)}]`,
        '',
      ].join('\n'),
    );
    const built = await berth(['build', '--progress', 'plain', '-t', ref, '--push', ctx]);
    assert.equal(built.code, 0, `${built.stdout}\n${built.stderr}`);
    const own = await berth(['run', '--rm', ref]);
    assert.equal(own.code, 0, own.stderr);
    expected = own.stdout;
    // What berth itself shows is what the Dockerfile asked for.
    for (const line of ['app/main.js file 640 0:0 main', 'app/lib/util.js file 600 0:0 util', 'app/entry link main.js', 'app/docs/notes.md file 644 0:0 notes', 'etc/app/a.conf file 750 1000:2000 a=1', 'opt/pkg dir 711 0:0', 'opt/pkg/link link tool', 'from-build/result file 604 1000:2000 built']) {
      assert.ok(expected.split('\n').some((l) => l.trim() === line), `${line} in\n${expected}`);
    }
    assert.ok(!expected.includes('skip.log'), expected);
  });
  after(async () => {
    await registry?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('podman pulls it and lists the same files', { skip: podmanMissing() }, async () => {
    assert.equal(await podmanPullRun(dir, ref), expected);
  });

  test('docker pulls it and lists the same files', { skip: dockerMissing() }, async () => {
    assert.equal(await dockerPullRun(`127.0.0.1:${registry.port}`, ref), expected);
  });
});
