// `berth build` end to end, as root for real: RUN steps in berth's runtime, the image in the
// local store, then `berth run`, `images`, `history`, `save`, `push` on it. Offline: the base
// image is made from busybox-static (runtime/test-images.ts) and put in the store.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { buildImage, busyboxLayer } from '../runtime/test-images.js';
import { berth as runBerth } from '../client/testing/peers.js';
import { startTestRegistry, type TestRegistry } from '../server/testing.js';

const isRoot = process.getuid?.() === 0;

let dir: string;
let root: string;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function berth(args: string[], opts: { env?: Record<string, string>; cwd?: string; input?: string } = {}): Promise<Result> {
  return runBerth(args, { ...(process.env as Record<string, string>), BERTH_ROOT: root, ...opts.env }, opts.input, opts.cwd ?? dir);
}

/** A context folder with a Dockerfile (and files); returns its path. */
async function context(name: string, dockerfile: string, files: Record<string, string> = {}): Promise<string> {
  const ctx = join(dir, name);
  await mkdir(ctx, { recursive: true });
  await writeFile(join(ctx, 'Dockerfile'), dockerfile);
  for (const [f, content] of Object.entries(files)) await writeFile(join(ctx, f), content);
  return ctx;
}

async function buildOk(args: string[], opts: { env?: Record<string, string> } = {}): Promise<Result> {
  const r = await berth(['build', '--progress', 'plain', ...args], opts);
  assert.equal(r.code, 0, `berth build ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
  return r;
}

const run = async (...args: string[]) => {
  const r = await berth(['run', '--rm', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
};

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

describe('berth build', { skip: (!isRoot && 'needs root (namespaces, overlayfs, cgroups)') }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-build-'));
    root = join(dir, 'root');
    const layout = join(dir, 'layout');
    await buildImage(layout, 'busybox', [busyboxLayer()], { Cmd: ['sh'] });
    // The base in the local store under a name, as a pulled image would be.
    const { resolve } = await import('../client/image/resolve.js');
    const { LocalImageStore } = await import('../client/store/image-store.js');
    const { StoreSink } = await import('../client/image/store-image.js');
    const { copy } = await import('../client/image/copy.js');
    const { parseReference } = await import('../oci/reference.js');
    const base = await resolve(`oci:${layout}:busybox`);
    const sink = new StoreSink(await LocalImageStore.open(root));
    await copy(base.image, sink);
    await sink.commit([base.image], [parseReference('busybox:latest')], base.image.digest);
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('RUN writes a web page into the image; berth run -p serves it', async () => {
    const ctx = await context('web', ['FROM busybox', 'RUN mkdir -p /www && echo "<h1>built by berth</h1>" > /www/index.html', 'EXPOSE 80', 'CMD ["httpd", "-f", "-p", "80", "-h", "/www"]', ''].join('\n'));
    const r = await buildOk(['-t', 'web:1', ctx]);
    assert.match(r.stdout, /^Step 1\/4 : FROM busybox\n/);
    assert.match(r.stdout, /Step 2\/4 : RUN mkdir -p \/www/);
    assert.match(r.stdout, / ---> Running in [0-9a-f]{12}\n/);
    assert.match(r.stdout, /Successfully built [0-9a-f]{12}\nSuccessfully tagged web:1\n$/);
    const port = await freePort();
    const started = await berth(['run', '-d', '--name', 'web1', '-p', `127.0.0.1:${port}:80`, 'web:1']);
    assert.equal(started.code, 0, started.stderr);
    try {
      let body = '';
      for (let i = 0; i < 50 && !body; i++) {
        body = await fetch(`http://127.0.0.1:${port}/`).then((res) => res.text(), () => '');
        if (!body) await new Promise((res) => setTimeout(res, 100));
      }
      assert.equal(body, '<h1>built by berth</h1>\n');
    } finally {
      await berth(['rm', '-f', 'web1']);
    }
    const config = JSON.parse((await berth(['image', 'inspect', 'web:1'])).stdout) as Array<{ Config: { ExposedPorts: object; Cmd: string[] } }>;
    assert.deepEqual(config[0]!.Config.ExposedPorts, { '80/tcp': {} });
  });

  test('ARG and ENV substitution, --build-arg, USER and WORKDIR as berth run sees them', async () => {
    const ctx = await context(
      'vars',
      [
        'ARG BASE=busybox',
        'FROM ${BASE}',
        'ARG WHO=nobody',
        'ARG UNSET',
        'ENV GREETING="hello ${WHO}" ALT=${UNSET:-fallback} PLUS=${WHO:+set} NONE=${UNSET:+x}',
        'ENV DIR=/srv',
        'ARG TARGETARCH',
        'RUN test -n "$TARGETARCH" && echo "$TARGETARCH" > /arch',
        'WORKDIR $DIR',
        'WORKDIR app',
        'USER app',
        'RUN echo "$GREETING $ALT $PLUS [$NONE] $WHO" > note && id -u > uid',
        '',
      ].join('\n'),
    );
    await buildOk(['-t', 'vars', '--build-arg', 'WHO=berth', ctx]);
    assert.equal(await run('vars', 'sh', '-c', 'pwd; id -un; cat note uid; echo "$GREETING|$WHO"'), '/srv/app\napp\nhello berth fallback set [] berth\n1000\nhello berth|\n');
    const hist = await berth(['history', '--no-trunc', 'vars']);
    assert.match(hist.stdout, /\|2 WHO=berth TARGETARCH=\w+ \/bin\/sh -c echo "\$GREETING/);
    assert.equal(await run('vars', 'cat', '/arch'), `${process.arch === 'x64' ? 'amd64' : process.arch}\n`);
    assert.match(hist.stdout, /\/bin\/sh -c #\(nop\)\s+USER app/);
  });

  test('a file deleted in a later step is absent from the image (a whiteout in its layer)', async () => {
    const ctx = await context('delete', ['FROM busybox', 'RUN mkdir /data && echo secret > /data/key && echo keep > /data/keep && ln /data/keep /data/same', 'RUN rm /data/key', ''].join('\n'));
    await buildOk(['-t', 'deleted', ctx]);
    assert.equal(await run('deleted', 'ls', '/data'), 'keep\nsame\n');
    assert.equal(await run('deleted', 'sh', '-c', 'stat -c %h /data/keep; cat /data/same'), '2\nkeep\n', 'a hard link made by RUN stays one');
    const save = await berth(['save', '-o', join(dir, 'deleted.tar'), 'deleted']);
    assert.equal(save.code, 0, save.stderr);
    const listing = execFileSync('sh', ['-c', `mkdir -p ${dir}/deleted && tar -xf ${dir}/deleted.tar -C ${dir}/deleted && for l in $(find ${dir}/deleted -type f -size +0 | grep -v json); do tar -tvzf $l 2>/dev/null || tar -tvf $l 2>/dev/null || true; done`]).toString();
    assert.match(listing, / data\/\.wh\.key$/m);
    assert.match(listing, / data\/same link to data\/keep$/m, 'a hard link entry, not a second copy');
  });

  test('RUN in exec form, and under a SHELL', async () => {
    const ctx = await context('shell', ['FROM busybox', 'RUN ["sh", "-c", "echo exec form > /exec"]', 'SHELL ["/bin/sh", "-ec"]', 'RUN echo $0 $- > /flags', ''].join('\n'));
    await buildOk(['-t', 'shell', ctx]);
    assert.equal(await run('shell', 'cat', '/exec'), 'exec form\n');
    assert.match(await run('shell', 'cat', '/flags'), /^\/bin\/sh \S*e\S*\n$/, 'the SHELL\'s -e reached the command');
    const hist = await berth(['history', '--no-trunc', 'shell']);
    assert.match(hist.stdout, /\/bin\/sh -ec echo \$0 \$- > \/flags/);
    const strict = await berth(['build', await context('shell2', ['FROM busybox', 'SHELL ["/bin/sh", "-ec"]', 'RUN false; echo not reached', ''].join('\n'))]);
    assert.equal(strict.code, 1);
    assert.match(strict.stderr, /The command '\/bin\/sh -ec false; echo not reached' returned a non-zero code: 1/);
  });

  test('RUN heredocs: a script alone, with a shebang, and a command reading one', async () => {
    const ctx = await context(
      'heredoc',
      ['FROM busybox', 'RUN <<EOF', 'echo one > /one', 'echo two >> /one', 'EOF', 'RUN <<EOT', '#!/bin/sh', 'echo "shebang $0" > /two', 'EOT', 'RUN cat > /three <<"EOF"', 'literal $HOME', 'EOF', ''].join('\n'),
    );
    await buildOk(['-t', 'heredoc', ctx]);
    assert.equal(await run('heredoc', 'cat', '/one', '/three'), 'one\ntwo\nliteral $HOME\n');
    assert.match(await run('heredoc', 'cat', '/two'), /^shebang /);
  });

  test('multi-stage: --target builds only the stages it needs', async () => {
    const ctx = await context(
      'stages',
      ['FROM busybox AS base', 'RUN echo base > /base', 'FROM base AS broken', 'RUN exit 3', 'FROM base AS app', 'RUN cat /base > /app', 'FROM app', 'RUN exit 4', ''].join('\n'),
    );
    const r = await buildOk(['-t', 'staged', '--target', 'app', ctx]);
    assert.doesNotMatch(r.stdout, /exit 3|exit 4/);
    assert.match(r.stdout, /Step 4\/4 : RUN cat \/base > \/app/);
    assert.equal(await run('staged', 'cat', '/app'), 'base\n');
    const missing = await berth(['build', '--target', 'nope', ctx]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /target stage "nope" could not be found/);
  });

  test('cache: the second build runs no RUN; --no-cache runs them; a cache mount survives between builds', async () => {
    const df = ['FROM busybox', 'RUN --mount=type=cache,target=/cache,id=counter echo run >> /cache/runs && wc -l < /cache/runs > /count', 'CMD ["cat", "/count"]', ''].join('\n');
    const ctx = await context('cached', df);
    const runs = join(root, 'build', 'mounts', createHash('sha256').update('counter').digest('hex'), 'runs');
    const first = await buildOk(['-t', 'cached', ctx]);
    assert.equal(readFileSync(runs, 'utf8'), 'run\n');
    const second = await buildOk(['-t', 'cached', ctx]);
    assert.equal(readFileSync(runs, 'utf8'), 'run\n', 'the RUN did not run again');
    assert.match(second.stdout, /Step 2\/3 : RUN[^\n]*\n ---> Using cache\n/);
    const id = (r: Result) => /Successfully built ([0-9a-f]{12})/.exec(r.stdout)?.[1];
    assert.equal(id(second), id(first), 'a fully cached build gives the same image');
    await buildOk(['-t', 'cached', '--no-cache', ctx]);
    assert.equal(readFileSync(runs, 'utf8'), 'run\nrun\n');
    assert.equal(await run('cached'), '2\n', 'the cache folder kept the first build\'s line');
    assert.equal(await run('cached', 'sh', '-c', 'ls -A /cache 2>/dev/null; true'), '', 'what the cache mount held is not in the image');
  });

  test('RUN --mount=type=bind of the context: read-only, not in the image, its content in the cache key', async () => {
    const df = ['FROM busybox', 'RUN --mount=type=bind,source=src,target=/src cat /src/input > /copied && ! touch /src/x 2>/dev/null', ''].join('\n');
    const ctx = await context('bind', df);
    await mkdir(join(ctx, 'src'), { recursive: true });
    await writeFile(join(ctx, 'src', 'input'), 'one\n');
    await buildOk(['-t', 'bind', ctx]);
    assert.equal(await run('bind', 'sh', '-c', 'cat /copied; ls -A /src 2>/dev/null; true'), 'one\n');
    await writeFile(join(ctx, 'src', 'input'), 'two\n');
    const again = await buildOk(['-t', 'bind', ctx]);
    assert.doesNotMatch(again.stdout, /Using cache/, 'a changed bound file re-runs the step');
    assert.equal(await run('bind', 'cat', '/copied'), 'two\n');
  });

  test('RUN --mount=type=secret and type=tmpfs: seen by the command, in no layer, no cache key', async () => {
    const df = [
      'FROM busybox',
      'RUN --mount=type=secret,id=token --mount=type=tmpfs,target=/scratch cat /run/secrets/token > /scratch/t && wc -c < /scratch/t > /len',
      'RUN --mount=type=secret,id=absent test ! -e /run/secrets/absent',
      '',
    ].join('\n');
    const ctx = await context('secret', df);
    await writeFile(join(dir, 'token.txt'), 'hunter2');
    await buildOk(['-t', 'secret', '--secret', `id=token,src=${join(dir, 'token.txt')}`, ctx]);
    assert.equal(await run('secret', 'cat', '/len'), '7\n');
    assert.equal(await run('secret', 'sh', '-c', 'ls -A /run /scratch 2>&1 | grep -c . ; true'), '2\n', 'neither /run nor /scratch is in the image');
    // Another secret value hits the cache: secrets are no input of the key (BuildKit's rule).
    await writeFile(join(dir, 'token.txt'), 'other');
    const again = await buildOk(['-t', 'secret', '--secret', `id=token,src=${join(dir, 'token.txt')}`, ctx]);
    assert.match(again.stdout, /Using cache/);
    const required = await berth(['build', await context('secret2', 'FROM busybox\nRUN --mount=type=secret,id=x,required true\n')]);
    assert.equal(required.code, 1);
    assert.match(required.stderr, /Dockerfile:2: secret x not found/);
  });

  test('--progress tty: one line per step with its time, CACHED on a hit, the running step\'s output shown', async () => {
    const ctx = await context('tty', ['FROM busybox', 'RUN echo live output line', ''].join('\n'));
    const first = await berth(['build', '--progress', 'tty', '-t', 'tty', ctx]);
    assert.equal(first.code, 0, first.stderr);
    const plain = first.stdout.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
    assert.match(plain, /=> \[1\/2\] FROM busybox /);
    assert.match(plain, /=> \[2\/2\] RUN echo live output line \d+\.\ds\n/);
    assert.match(plain, /live output line/);
    assert.match(plain, /Successfully tagged tty:latest\n$/);
    const second = await berth(['build', '--progress', 'tty', '-t', 'tty', ctx]);
    assert.match(second.stdout.replace(/\x1b\[[0-9;]*[A-Za-z]/g, ''), /=> \[2\/2\] RUN echo live output line CACHED\n/);
  });

  test('-q prints the image ID only; --iidfile; several -t; --label; SOURCE_DATE_EPOCH gives the same image from scratch again', async () => {
    const ctx = await context('quiet', ['FROM busybox', 'RUN echo hi > /hi', 'LABEL stage=test', ''].join('\n'));
    const env = { SOURCE_DATE_EPOCH: '1700000000' };
    const iid = join(dir, 'iid');
    const r = await berth(['build', '-q', '--no-cache', '-t', 'q:1', '-t', 'q:2', '--label', 'extra=yes', '--iidfile', iid, ctx], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^sha256:[0-9a-f]{64}\n$/);
    assert.equal(readFileSync(iid, 'utf8'), r.stdout.trim());
    const again = await berth(['build', '-q', '--no-cache', '--label', 'extra=yes', ctx], { env });
    assert.equal(again.stdout, r.stdout, 'the same inputs give the same image ID');
    const images = await berth(['images']);
    assert.match(images.stdout, /^q\s+1\s+/m);
    assert.match(images.stdout, /^q\s+2\s+/m);
    const inspect = JSON.parse((await berth(['image', 'inspect', 'q:1'])).stdout) as Array<{ Config: { Labels: Record<string, string> }; Created: string }>;
    assert.deepEqual(inspect[0]!.Config.Labels, { stage: 'test', extra: 'yes' });
  });

  test('config kept in docker format: HEALTHCHECK, SHELL, ONBUILD (triggered in a build FROM it), STOPSIGNAL, VOLUME; --format oci', async () => {
    const ctx = await context(
      'config',
      ['FROM busybox', 'SHELL ["/bin/sh", "-ec"]', 'HEALTHCHECK --interval=5s --retries=2 CMD true', 'STOPSIGNAL SIGUSR1', 'VOLUME /data', 'ONBUILD RUN echo triggered > /onbuild', 'ENTRYPOINT ["echo"]', ''].join('\n'),
    );
    await buildOk(['-t', 'withconfig', ctx]);
    const cfg = JSON.parse((await berth(['image', 'inspect', 'withconfig'])).stdout) as Array<{ Config: Record<string, unknown> }>;
    const c = cfg[0]!.Config;
    assert.deepEqual(c.Healthcheck, { Test: ['CMD-SHELL', 'true'], Interval: 5e9, Retries: 2 });
    assert.deepEqual(c.Shell, ['/bin/sh', '-ec']);
    assert.deepEqual(c.OnBuild, ['RUN echo triggered > /onbuild']);
    assert.equal(c.StopSignal, 'SIGUSR1');
    assert.deepEqual(c.Volumes, { '/data': {} });
    const child = await context('child', ['FROM withconfig', 'CMD ["child"]', ''].join('\n'));
    const r = await buildOk(['-t', 'child', '--format', 'oci', child]);
    assert.match(r.stdout, /# Executing 1 build trigger/);
    assert.equal(await run('--entrypoint', 'cat', 'child', '/onbuild'), 'triggered\n');
    assert.equal(await run('child'), 'child\n');
    const childCfg = JSON.parse((await berth(['image', 'inspect', 'child'])).stdout) as Array<{ Config: Record<string, unknown> }>;
    assert.equal(childCfg[0]!.Config.OnBuild ?? null, null, 'triggers fire once');
    const { LocalImageStore } = await import('../client/store/image-store.js');
    const store = await LocalImageStore.open(root);
    const { record } = await store.resolve('child');
    assert.equal(record.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal((await store.resolve('withconfig')).record.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  });

  test('the tutorial: FROM scratch, ADD a static binary, CMD runs it', async () => {
    const ctx = await context('scratch', ['FROM scratch', 'ADD hello /', 'CMD ["/hello"]', ''].join('\n'), {
      'hello.c': '#include <stdio.h>\nint main(void) { puts("Hello from a static binary"); return 0; }\n',
    });
    execFileSync('gcc', ['-static', '-O2', '-o', join(ctx, 'hello'), join(ctx, 'hello.c')]);
    await buildOk(['-t', 'hello', ctx]);
    assert.equal(await run('hello'), 'Hello from a static binary\n');
    const inspect = JSON.parse((await berth(['image', 'inspect', 'hello'])).stdout) as Array<{ Config: { Env: string[] }; RootFS: { Layers: string[] } }>;
    assert.equal(inspect[0]!.RootFS.Layers.length, 1);
  });

  test('multi-stage: COPY --from an earlier stage; COPY heredoc with ARG expansion', async () => {
    const ctx = await context(
      'copyfrom',
      [
        'FROM busybox AS build',
        'RUN mkdir /out && echo artifact > /out/result',
        'FROM busybox',
        'ARG NAME=world',
        'COPY --from=build /out/result /app/result',
        'COPY <<EOF /app/greeting',
        'hello ${NAME}',
        'EOF',
        'CMD ["cat", "/app/result", "/app/greeting"]',
        '',
      ].join('\n'),
    );
    await buildOk(['-t', 'copyfrom', ctx]);
    assert.equal(await run('copyfrom'), 'artifact\nhello world\n');
    const unknown = await berth(['build', await context('badfrom', 'FROM busybox\nCOPY --from=nosuchstage /x /x\n')]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /Dockerfile:2: .*nosuchstage/);
  });

  test('cache: changing one copied file re-runs only the steps after it; touching it without a change re-runs nothing', async () => {
    const df = ['FROM busybox', 'COPY a /a', 'RUN --mount=type=cache,target=/m,id=touch cat /a >> /m/log', 'COPY b /b', 'RUN --mount=type=cache,target=/m,id=touch cat /b >> /m/log', ''].join('\n');
    const ctx = await context('touch', df, { a: 'a1\n', b: 'b1\n' });
    const log = join(root, 'build', 'mounts', createHash('sha256').update('touch').digest('hex'), 'log');
    await buildOk([ctx]);
    assert.equal(readFileSync(log, 'utf8'), 'a1\nb1\n');
    await writeFile(join(ctx, 'b'), 'b2\n');
    const second = await buildOk([ctx]);
    assert.equal(readFileSync(log, 'utf8'), 'a1\nb1\nb2\n', 'only the RUN after the changed COPY ran');
    assert.equal(second.stdout.match(/Using cache/g)?.length, 2);
    const { utimesSync } = await import('node:fs');
    utimesSync(join(ctx, 'a'), new Date(), new Date(Date.now() + 60_000));
    await buildOk([ctx]);
    assert.equal(readFileSync(log, 'utf8'), 'a1\nb1\nb2\n', 'a new mtime is no change');
  });

  test('bad input: unknown instruction, unterminated heredoc, a missing or outside file with their line; a failing RUN leaves no tag', async () => {
    const unknown = await berth(['build', await context('bad1', 'FROM busybox\n\nFORM x\n')]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /Dockerfile:3: unknown instruction: FORM/);
    const heredoc = await berth(['build', await context('bad2', 'FROM busybox\nRUN <<EOF\necho never\n')]);
    assert.equal(heredoc.code, 1);
    assert.match(heredoc.stderr, /Dockerfile:2: unterminated heredoc/);
    const missing = await berth(['build', await context('bad5', 'FROM busybox\nCOPY nothere /x\n')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Dockerfile:2: COPY failed: file not found in build context/);
    const outside = await berth(['build', await context('bad6', 'FROM busybox\nCOPY ../secret /x\n')]);
    assert.equal(outside.code, 1);
    assert.match(outside.stderr, /Dockerfile:2: COPY failed: forbidden path outside the build context: \.\.\/secret/);
    const failing = await berth(['build', '--progress', 'plain', '-t', 'never:1', await context('bad3', 'FROM busybox\nRUN echo some output && exit 3\nCMD ["x"]\n')]);
    assert.equal(failing.code, 1);
    assert.match(failing.stdout, /some output/);
    assert.match(failing.stderr, /The command '\/bin\/sh -c echo some output && exit 3' returned a non-zero code: 3/);
    assert.doesNotMatch((await berth(['images'])).stdout, /never/);
    assert.equal((await berth(['ps', '-a', '-q'])).stdout, '', 'no build container left');
    const quiet = await berth(['build', '-q', await context('bad4', 'FROM busybox\nRUN echo shown on failure; exit 2\n')]);
    assert.equal(quiet.code, 1);
    assert.match(quiet.stderr, /shown on failure/);
  });

  test('berth builder prune: the next build runs every step; --all also empties the cache mounts; images stay', async () => {
    const ctx = await context('prune', ['FROM busybox', 'RUN --mount=type=cache,target=/c,id=prune echo x > /c/file && echo kept > /kept', ''].join('\n'));
    await buildOk(['-t', 'pruned', ctx]);
    const pruned = await berth(['builder', 'prune', '-f']);
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.match(pruned.stdout, /^Total reclaimed space: /m);
    assert.equal(await run('pruned', 'cat', '/kept'), 'kept\n', 'the tagged image keeps its layers');
    const again = await buildOk(['-t', 'pruned', ctx]);
    assert.doesNotMatch(again.stdout, /Using cache/);
    const mount = join(root, 'build', 'mounts', createHash('sha256').update('prune').digest('hex'));
    assert.ok(existsSync(mount));
    assert.equal((await berth(['builder', 'prune', '-a', '-f'])).code, 0);
    assert.ok(!existsSync(mount));
  });

  test('a built image is pushed to berth serve (--push) and pulled back by a fresh store', async () => {
    let registry: TestRegistry | undefined;
    try {
      registry = await startTestRegistry();
      const name = `127.0.0.1:${registry.port}/built/app:1`;
      const ctx = await context('push', ['FROM busybox', 'RUN echo pushed > /msg', 'CMD ["cat", "/msg"]', ''].join('\n'));
      const r = await berth(['build', '--progress', 'plain', '-t', name, '--push', ctx]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Successfully tagged 127\.0\.0\.1:\d+\/built\/app:1\n/);
      const fresh = join(dir, 'fresh');
      const pulled = await berth(['run', '--rm', name], { env: { BERTH_ROOT: fresh } });
      assert.equal(pulled.code, 0, pulled.stderr);
      assert.equal(pulled.stdout, 'pushed\n');
    } finally {
      await registry?.destroy();
    }
    assert.ok(existsSync(root));
  });
});
