// docker's flag grammar and docker's Entrypoint/Cmd/Env rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBytes } from './cli-flags.js';
import { parseRunArgs } from './cli-run.js';
import { parseOciLayoutRef } from './image-sources.js';
import { processSpec, UsageError } from './process-spec.js';

test('run flags: combined short booleans, attached values, flags stop at the image', () => {
  const o = parseRunArgs(['-dit', '--rm', '-m512m', '-e', 'A=1', '--env=B=2', '--name=web', 'img', '-e', 'not-a-flag']);
  assert.notEqual(o, 'help');
  if (o === 'help') return;
  assert.equal(o.detach && o.interactive && o.tty && o.autoRemove, true);
  assert.equal(o.limits.memoryBytes, 512 * 1024 * 1024);
  assert.deepEqual(o.env, ['A=1', 'B=2']);
  assert.equal(o.name, 'web');
  assert.equal(o.image, 'img');
  assert.deepEqual(o.cmd, ['-e', 'not-a-flag']);
});

test('bad flags are usage errors (exit 125)', () => {
  assert.throws(() => parseRunArgs(['--nope', 'img']), UsageError);
  assert.throws(() => parseRunArgs(['-m']), UsageError);
  assert.throws(() => parseRunArgs(['--pids-limit', 'x', 'img']), UsageError);
  assert.throws(() => parseRunArgs([]), UsageError);
  assert.throws(() => parseRunArgs(['--hostname', 'evil\n1.2.3.4 bank', 'img']), UsageError);
  assert.throws(() => parseRunArgs(['-w', 'relative', 'img']), UsageError);
  assert.throws(() => parseRunArgs(['--name', '../x', 'img']), UsageError);
  assert.throws(() => parseBytes('12q'), UsageError);
  assert.equal(parseBytes('1g'), 1024 ** 3);
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

test('--platform: os/arch[/variant] through the client\'s parser; anything else is a usage error without the help hint', () => {
  const o = parseRunArgs(['--platform', 'linux/arm64/v8', 'img']);
  assert.notEqual(o, 'help');
  if (o === 'help') return;
  assert.deepEqual(o.platform, { os: 'linux', architecture: 'arm64', variant: 'v8' });
  const eq = parseRunArgs(['--platform=Linux/x86_64', 'img']);
  assert.deepEqual(eq !== 'help' && eq.platform, { os: 'linux', architecture: 'amd64' });
  const none = parseRunArgs(['img']);
  assert.equal(none !== 'help' && none.platform, undefined);
  // docker's: an empty --platform is the default (the host's).
  const empty = parseRunArgs(['--platform', '', 'img']);
  assert.equal(empty !== 'help' && empty.platform, undefined);
  for (const bad of ['linux', 'foo/bar/baz/qux', 'linux/', '/arm64', 'linux/arm 64']) {
    assert.throws(
      () => parseRunArgs(['--platform', bad, 'img']),
      (e: unknown) => e instanceof UsageError && !e.helpHint && e.message === `invalid platform ${JSON.stringify(bad)}: expected os/arch[/variant]`,
      bad,
    );
  }
});
