// `berth run --platform`: a multi-platform image built offline (busybox-static in every entry, so
// each one runs here; a file and an env variable tell which entry ran), as an OCI layout and pushed
// with skopeo to an in-process `berth serve`. The "other" entry also holds an ELF header for its
// architecture, which no qemu runs here: docker's exec format error.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startTestRegistry, type TestRegistry } from '../server/testing.js';
import { formatPlatform } from '../client/platform.js';
import { buildImage, buildIndex, busyboxLayer, HOST_ARCH, type Entry, type TestPlatform } from './test-images.js';

const BERTH = fileURLToPath(new URL('../../bin/launch.cjs', import.meta.url));
const isRoot = process.getuid?.() === 0;
const hasSkopeo = spawnSync('skopeo', ['--version']).status === 0;

const HOST: TestPlatform = { os: 'linux', architecture: HOST_ARCH, ...(HOST_ARCH === 'arm64' ? { variant: 'v8' } : {}) };
const OTHER: TestPlatform = HOST_ARCH === 'arm64' ? { os: 'linux', architecture: 'amd64' } : { os: 'linux', architecture: 'arm64', variant: 'v8' };
/** `--platform` for the other entry, without its variant (arm64's v8 is the default one). */
const OTHER_FLAG = `${OTHER.os}/${OTHER.architecture}`;

/** An ELF header for OTHER's architecture: enough for execve to refuse it with ENOEXEC. */
function foreignElf(): string {
  const h = Buffer.alloc(64);
  h.write('\x7fELF', 0, 'latin1');
  h[4] = 2; // 64-bit
  h[5] = 1; // little endian
  h[6] = 1; // ELF version
  h.writeUInt16LE(2, 16); // ET_EXEC
  h.writeUInt16LE(OTHER.architecture === 'arm64' ? 183 : 62, 18); // EM_AARCH64 or EM_X86_64
  h.writeUInt32LE(1, 20);
  h.writeUInt16LE(64, 52);
  return h.toString('latin1');
}

/** Whether some binfmt_misc handler (qemu-user-static) might run the foreign binary after all. */
function emulatorRegistered(): boolean {
  try {
    return readdirSync('/proc/sys/fs/binfmt_misc').some((e) => e !== 'register' && e !== 'status');
  } catch {
    return false;
  }
}

let dir: string;
let layout: string;
let registry: TestRegistry;
let multiRef: string;
let singleRef: string;

// Asynchronous: the registry answers from this very process.
const berth = (root: string, ...args: string[]) =>
  promisify(execFile)(process.execPath, [BERTH, ...args], { env: { ...process.env, BERTH_ROOT: join(dir, root) } }).then(
    (o) => ({ code: 0, stdout: o.stdout, stderr: o.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
/** Which entry ran: its /which file and its ENTRY variable. */
const WHICH = ['sh', '-c', 'cat /which; echo "$ENTRY"'];

describe('berth run --platform', { skip: !isRoot && 'needs root (namespaces, overlayfs, cgroups)' }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-platform-'));
    layout = join(dir, 'images');
    const entry = (name: string, extra: Entry[] = []): Entry[] => [{ name: 'which', content: `${name}\n` }, ...extra];
    const host = await buildImage(layout, 'host-entry', [busyboxLayer(), entry('host')], { Env: ['PATH=/bin', 'ENTRY=host-env'], Cmd: WHICH }, HOST);
    const other = await buildImage(layout, 'other-entry', [busyboxLayer(), entry('other', [{ name: 'bin/foreign', content: foreignElf(), mode: 0o755 }])], { Env: ['PATH=/bin', 'ENTRY=other-env'], Cmd: WHICH }, OTHER);
    // The host's entry last: taking the first entry is not the host's choice.
    await buildIndex(layout, 'multi', [{ digest: other, platform: OTHER }, { digest: host, platform: HOST }]);
    if (!hasSkopeo) return;
    registry = await startTestRegistry();
    multiRef = `${registry.host}:${registry.port}/plat/app:multi`;
    singleRef = `${registry.host}:${registry.port}/plat/single:1`;
    const skopeo = (...args: string[]) => promisify(execFile)('skopeo', ['--insecure-policy', ...args]);
    await skopeo('copy', '--all', '--dest-tls-verify=false', `oci:${layout}:multi`, `docker://${multiRef}`);
    await skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:host-entry`, `docker://${singleRef}`);
  });
  after(async () => {
    await registry?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('invalid --platform values exit 125 with one stderr line', async () => {
    for (const bad of ['linux', 'foo/bar/baz/qux']) {
      const r = await berth('invalid', 'run', '--rm', '--platform', bad, `oci:${layout}:multi`);
      assert.equal(r.code, 125, bad);
      assert.equal(r.stderr, `berth: invalid platform ${JSON.stringify(bad)}: expected os/arch[/variant]\n`);
      assert.equal(r.stdout, '');
    }
  });

  test('oci: layout index: --platform runs its entry, the default the host\'s; a missing platform is named (125)', async () => {
    const img = `oci:${layout}:multi`;
    const def = await berth('oci', 'run', '--rm', img);
    assert.equal(def.code, 0, def.stderr);
    assert.equal(def.stdout, 'host\nhost-env\n');
    for (const p of [OTHER_FLAG, formatPlatform(OTHER)]) {
      const r = await berth('oci', 'run', '--rm', '--platform', p, img);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'other\nother-env\n', p);
      assert.doesNotMatch(r.stderr, /WARNING/); // asked for: no warning
    }
    const host = await berth('oci', 'run', '--rm', '--platform', formatPlatform(HOST), img);
    assert.equal(host.stdout, 'host\nhost-env\n');
    // DOCKER_DEFAULT_PLATFORM is the default of --platform; the flag wins, and '' means the host's.
    const withDefault = (...args: string[]) =>
      promisify(execFile)(process.execPath, [BERTH, 'run', '--rm', ...args, img], { env: { ...process.env, BERTH_ROOT: join(dir, 'oci'), DOCKER_DEFAULT_PLATFORM: OTHER_FLAG } }).then((o) => o.stdout);
    assert.equal(await withDefault(), 'other\nother-env\n');
    assert.equal(await withDefault('--platform', formatPlatform(HOST)), 'host\nhost-env\n');
    assert.equal(await withDefault('--platform', ''), 'host\nhost-env\n');
    const missing = await berth('oci', 'run', '--rm', '--platform', 'linux/s390x', img);
    assert.equal(missing.code, 125);
    assert.match(missing.stderr, /no matching manifest for linux\/s390x/);
    // A single-platform image: --platform must be its platform.
    const single = await berth('oci', 'run', '--rm', '--platform', OTHER_FLAG, `oci:${layout}:host-entry`);
    assert.equal(single.code, 125);
    assert.equal(single.stderr, `berth: image with reference oci:${layout}:host-entry was found but does not match the specified platform: wanted ${OTHER_FLAG}, actual: ${formatPlatform(HOST)}\n`);
    const same = await berth('oci', 'run', '--rm', '--platform', formatPlatform(HOST), `oci:${layout}:host-entry`);
    assert.equal(same.code, 0, same.stderr);
    // Without --platform a foreign image still runs (here it can), with docker's warning.
    const foreign = await berth('oci', 'run', '--rm', `oci:${layout}:other-entry`);
    assert.equal(foreign.stdout, 'other\nother-env\n');
    assert.match(foreign.stderr, new RegExp(`^WARNING: The requested image's platform \\(${formatPlatform(OTHER)}\\) does not match the detected host platform`, 'm'));
  });

  test('registry: a missing image is pulled for --platform (else for the host); present for another platform only, the requested one is pulled', { skip: !hasSkopeo && 'needs skopeo' }, async () => {
    const other = await berth('a', 'run', '--rm', '--platform', OTHER_FLAG, multiRef);
    assert.equal(other.code, 0, other.stderr);
    assert.match(other.stderr, /Unable to find image '.*' locally/);
    assert.equal(other.stdout, 'other\nother-env\n');
    const again = await berth('a', 'run', '--rm', '--platform', OTHER_FLAG, multiRef);
    assert.equal(again.stdout, 'other\nother-env\n');
    assert.doesNotMatch(again.stderr, /Unable to find image/); // stored for that platform: no pull

    const def = await berth('b', 'run', '--rm', multiRef);
    assert.equal(def.code, 0, def.stderr);
    assert.match(def.stderr, /Unable to find image/);
    assert.equal(def.stdout, 'host\nhost-env\n');
    // Stored for the host only: docker 24+ pulls the requested platform (and the tag names it then).
    const switched = await berth('b', 'run', '--rm', '--platform', OTHER_FLAG, multiRef);
    assert.equal(switched.code, 0, switched.stderr);
    assert.match(switched.stderr, /Unable to find image '.*' locally/);
    assert.equal(switched.stdout, 'other\nother-env\n');
    const back = await berth('b', 'run', '--rm', '--platform', formatPlatform(HOST), multiRef);
    assert.match(back.stderr, /Unable to find image/);
    assert.equal(back.stdout, 'host\nhost-env\n');

    const missing = await berth('b', 'run', '--rm', '--platform', 'linux/s390x', multiRef);
    assert.equal(missing.code, 125);
    assert.match(missing.stderr, /no matching manifest for linux\/s390x in the manifest list entries\n$/);
    // A single-platform image in the registry: pulled, then refused as docker does.
    const single = await berth('b', 'run', '--rm', '--platform', OTHER_FLAG, singleRef);
    assert.equal(single.code, 125);
    assert.match(single.stderr, new RegExp(`image with reference ${singleRef} was found but does not match the specified platform: wanted ${OTHER_FLAG}, actual: ${formatPlatform(HOST)}\\n$`));
  });

  test('registry: with every platform stored (pull --all-platforms), run picks the entry locally, without pulling', { skip: !hasSkopeo && 'needs skopeo' }, async () => {
    const pulled = await berth('all', 'pull', '--all-platforms', multiRef);
    assert.equal(pulled.code, 0, pulled.stderr);
    const other = await berth('all', 'run', '--rm', '--platform', OTHER_FLAG, multiRef);
    assert.equal(other.code, 0, other.stderr);
    assert.equal(other.stdout, 'other\nother-env\n');
    const def = await berth('all', 'run', '--rm', multiRef);
    assert.equal(def.stdout, 'host\nhost-env\n');
    for (const r of [other, def]) assert.doesNotMatch(r.stderr, /Unable to find image/);
  });

  test('a foreign binary fails at exec: docker\'s "exec format error", exit 126, naming both platforms', { skip: emulatorRegistered() && 'an emulator is registered with binfmt_misc' }, async () => {
    const img = `oci:${layout}:multi`;
    const want = `exec /bin/foreign: exec format error (the image is for ${formatPlatform(OTHER)}, this host is ${formatPlatform(HOST)}: running it needs an emulator such as qemu-user-static registered with binfmt_misc)`;
    const r = await berth('exec', 'run', '--rm', '--platform', OTHER_FLAG, img, '/bin/foreign');
    assert.equal(r.code, 126);
    assert.equal(r.stderr, `berth: ${want}\n`);
    const d = await berth('exec', 'run', '-d', '--name', 'foreign', '--platform', OTHER_FLAG, img, '/bin/foreign');
    assert.equal(d.code, 126);
    assert.equal(d.stderr, `berth: ${want}\n`);
    const state = JSON.parse((await berth('exec', 'inspect', 'foreign')).stdout) as [{ State: { ExitCode: number; Error: string } }];
    assert.deepEqual([state[0].State.ExitCode, state[0].State.Error], [126, want]);
    assert.equal((await berth('exec', 'rm', 'foreign')).code, 0);
  });

  test('commit of a container run with --platform builds on that entry', async () => {
    const made = await berth('commit', 'run', '--name', 'plat', '--platform', OTHER_FLAG, `oci:${layout}:multi`, 'sh', '-c', 'echo changed > /changed');
    assert.equal(made.code, 0, made.stderr);
    const c = await berth('commit', 'commit', 'plat', `oci:${join(dir, 'committed')}:1`);
    assert.equal(c.code, 0, c.stderr);
    const r = await berth('commit', 'run', '--rm', '--platform', OTHER_FLAG, `oci:${join(dir, 'committed')}:1`, 'cat', '/which', '/changed');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'other\nchanged\n');
    assert.equal((await berth('commit', 'rm', 'plat')).code, 0);
  });
});
