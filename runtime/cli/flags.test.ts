// `berth run`'s flag checks and docker's Entrypoint/Cmd/Env rules. (The flag grammar itself —
// combined short flags, flags stopping at the image — is bin/command-line.ts's: bin/cli.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBytes, runOptions, type RunFlags } from './run.js';
import { parseOciLayoutRef } from '../image-sources.js';
import { processSpec, UsageError } from '../process-spec.js';

const flags = (o: Partial<RunFlags> = {}): RunFlags => ({ env: [], envFile: [], volume: [], mount: [], networkAlias: [], volumesFrom: [], publish: [], capAdd: [], capDrop: [], securityOpt: [], ...o });

test('bad flag values are usage errors (exit 125)', () => {
  assert.throws(() => runOptions('img', [], flags({ pidsLimit: 'x' })), UsageError);
  assert.throws(() => runOptions('img', [], flags({ hostname: 'evil\n1.2.3.4 bank' })), UsageError);
  assert.throws(() => runOptions('img', [], flags({ workdir: 'relative' })), UsageError);
  assert.throws(() => runOptions('img', [], flags({ name: '../x' })), UsageError);
  assert.throws(() => runOptions('img', [], flags({ memory: '1k' })), /Minimum memory limit/);
  assert.throws(() => parseBytes('12q'), UsageError);
  assert.equal(parseBytes('1g'), 1024 ** 3);
  assert.equal(runOptions('img', [], flags({ memory: '512m' })).limits.memoryBytes, 512 * 1024 * 1024);
});

test('-p without --network means the bridge; --net is --network; --mount is -v', () => {
  assert.equal(runOptions('img', [], flags()).network, 'none');
  assert.equal(runOptions('img', [], flags({ publish: ['80:80'] })).network, 'bridge');
  assert.equal(runOptions('img', [], flags({ net: 'host' })).network, 'host');
  assert.deepEqual(runOptions('img', [], flags({ mount: ['type=bind,source=/a,target=/b,readonly'] })).volumes, ['/a:/b:ro']);
  assert.throws(() => runOptions('img', [], flags({ mount: ['type=tmpfs,target=/b'] })), UsageError);
});

test('Entrypoint/Cmd: CMD args replace Cmd; --entrypoint replaces Entrypoint and drops Cmd', () => {
  const image = { Entrypoint: ['/init'], Cmd: ['serve'], Env: ['PATH=/bin', 'A=image'] };
  assert.deepEqual(processSpec(image, { cmd: [], env: [] }, 'h').args, ['/init', 'serve']);
  assert.deepEqual(processSpec(image, { cmd: ['debug'], env: [] }, 'h').args, ['/init', 'debug']);
  assert.deepEqual(processSpec(image, { cmd: [], env: [], entrypoint: 'sh' }, 'h').args, ['sh']);
  assert.deepEqual(processSpec(image, { cmd: ['-c', 'x'], env: [], entrypoint: 'sh' }, 'h').args, ['sh', '-c', 'x']);
  assert.throws(() => processSpec({}, { cmd: [], env: [] }, 'h'), /no command specified/);
  const spec = processSpec(image, { cmd: [], env: ['A=flag'] }, 'h');
  assert.deepEqual(spec.env, ['HOSTNAME=h', 'PATH=/bin', 'A=flag']);
  assert.equal(spec.cwd, '/');
});

test('oci: references split at the tag colon only after the last slash', () => {
  assert.deepEqual(parseOciLayoutRef('oci:/a/b:v1'), { dir: '/a/b', tag: 'v1' });
  assert.deepEqual(parseOciLayoutRef('oci:/a:b/c'), { dir: '/a:b/c', tag: '' });
  assert.equal(parseOciLayoutRef('localhost:5000/app'), undefined);
});

test("--platform: os/arch[/variant] through the client's parser; anything else is a usage error without the help hint", () => {
  assert.deepEqual(runOptions('img', [], flags({ platform: 'linux/arm64/v8' })).platform, { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.deepEqual(runOptions('img', [], flags({ platform: 'Linux/x86_64' })).platform, { os: 'linux', architecture: 'amd64' });
  const saved = process.env.DOCKER_DEFAULT_PLATFORM;
  delete process.env.DOCKER_DEFAULT_PLATFORM;
  try {
    assert.equal(runOptions('img', [], flags()).platform, undefined);
    // docker's: an empty --platform is the default (the host's).
    assert.equal(runOptions('img', [], flags({ platform: '' })).platform, undefined);
  } finally {
    if (saved !== undefined) process.env.DOCKER_DEFAULT_PLATFORM = saved;
  }
  for (const bad of ['linux', 'foo/bar/baz/qux', 'linux/', '/arm64', 'linux/arm 64']) {
    assert.throws(
      () => runOptions('img', [], flags({ platform: bad })),
      (e: unknown) => e instanceof UsageError && !e.helpHint && e.message === `invalid platform ${JSON.stringify(bad)}: expected os/arch[/variant]`,
      bad,
    );
  }
});
