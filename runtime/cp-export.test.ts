// berth cp and berth export as root, on real containers (overlayfs, mount namespaces): docker's
// copy rules, running and stopped containers, tar on stdin/stdout, and symlinks made inside a
// container that point at host paths (absolute or through `..`) resolving inside the container.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildImage, busyboxLayer } from './test-images.js';

const BERTH = fileURLToPath(new URL('../../bin/launch.cjs', import.meta.url));
const usable = process.getuid?.() === 0 && existsSync('/bin/busybox');

let dir: string;
let image: string;

function berth(args: string[], input?: Buffer): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BERTH, ...args], { env: { ...process.env, BERTH_ROOT: join(dir, 'root') }, stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d) => (stderr += d));
    if (input) child.stdin!.end(input);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr }));
  });
}
const ok = async (args: string[], input?: Buffer) => {
  const r = await berth(args, input);
  assert.equal(r.code, 0, `berth ${args.join(' ')}: ${r.stderr}`);
  return r;
};
const tarList = (tarBytes: Buffer) => spawnSync('tar', ['-t'], { input: tarBytes }).stdout.toString().split('\n').filter(Boolean).sort();

describe('berth cp and export', { skip: !usable && 'needs root and busybox-static' }, () => {
  let host: string; // a host directory the container's symlinks aim at
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-cp-'));
    host = join(dir, 'host');
    await mkdir(host);
    await writeFile(join(host, 'secret'), 'host secret\n');
    await buildImage(join(dir, 'img'), 'b', [busyboxLayer()]);
    image = `oci:${join(dir, 'img')}:b`;
    // A stopped container whose layer holds data and hostile symlinks.
    await ok(['run', '--name', 'stopped', image, 'sh', '-c',
      `mkdir -p /data/sub ${host} && echo hello > /data/a && echo deep > /data/sub/b && echo inside > ${host}/secret && ` +
      `ln -s ${host} /abs && ln -s ../../../../../../../..${host} /data/up && ln -s / /data/root`]);
  });
  after(async () => {
    await berth(['rm', '-f', 'stopped', 'running']);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('copies a file and a directory out of a stopped container with docker\'s rules', async () => {
    const out = join(dir, 'out1');
    await mkdir(out);
    await ok(['cp', 'stopped:/data/a', join(out, 'file')]); // DEST missing: created with that name
    assert.equal(readFileSync(join(out, 'file'), 'utf8'), 'hello\n');
    await ok(['cp', 'stopped:/data', out]); // DEST an existing dir: copied into it
    assert.deepEqual(readdirSync(join(out, 'data')).sort(), ['a', 'root', 'sub', 'up']);
    assert.equal(readFileSync(join(out, 'data', 'sub', 'b'), 'utf8'), 'deep\n');
    assert.equal(await readlink(join(out, 'data', 'root')), '/'); // links are copied as links
    await ok(['cp', 'stopped:/data/.', join(out, 'contents')]); // SRC/. : the contents only
    assert.deepEqual(readdirSync(join(out, 'contents')).sort(), ['a', 'root', 'sub', 'up']);
    const missing = await berth(['cp', 'stopped:/nope', join(out, 'x')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Could not find the file \/nope/);
    assert.equal((await berth(['cp', join(out, 'file'), join(out, 'y')])).code, 125);
  });

  test('symlinks made in the container resolve inside it, never to the host', async () => {
    const out = join(dir, 'out2');
    await mkdir(out);
    await ok(['cp', 'stopped:/abs/secret', join(out, 'abs')]);
    assert.equal(readFileSync(join(out, 'abs'), 'utf8'), 'inside\n');
    await ok(['cp', 'stopped:/data/up/secret', join(out, 'up')]);
    assert.equal(readFileSync(join(out, 'up'), 'utf8'), 'inside\n');
    await writeFile(join(out, 'payload'), 'payload\n');
    await ok(['cp', join(out, 'payload'), 'stopped:/data/up/']);
    await ok(['cp', join(out, 'payload'), 'stopped:/data/root/etc/payload']);
    assert.deepEqual(readdirSync(host), ['secret']); // nothing written on the host
    assert.equal(existsSync('/etc/payload'), false);
    assert.equal(readFileSync(join(host, 'secret'), 'utf8'), 'host secret\n');
    await ok(['cp', 'stopped:/etc/payload', join(out, 'back')]);
    assert.equal(readFileSync(join(out, 'back'), 'utf8'), 'payload\n');
    await ok(['cp', `stopped:${host}/payload`, join(out, 'back2')]);
    assert.equal(readFileSync(join(out, 'back2'), 'utf8'), 'payload\n');
  });

  test('copies into and out of a running container; - is a tar on stdin/stdout', async () => {
    await ok(['run', '-d', '--name', 'running', image, 'sleep', '300']);
    const src = join(dir, 'src');
    await mkdir(join(src, 'nested'), { recursive: true });
    await writeFile(join(src, 'nested', 'f'), 'from host\n');
    await ok(['cp', src, 'running:/tmp/']);
    await ok(['cp', join(src, 'nested', 'f'), 'running:/tmp/renamed']);
    const seen = await ok(['exec', 'running', 'sh', '-c', 'cat /tmp/src/nested/f /tmp/renamed; stat -c %u:%g /tmp/renamed']);
    assert.equal(seen.stdout.toString(), 'from host\nfrom host\n0:0\n');
    const tarOut = await ok(['cp', 'running:/tmp/src', '-']);
    assert.deepEqual(tarList(tarOut.stdout), ['src/', 'src/nested/', 'src/nested/f']);
    await ok(['cp', '-', 'running:/tmp'], spawnSync('tar', ['-c', '-C', src, 'nested']).stdout);
    assert.equal((await ok(['exec', 'running', 'cat', '/tmp/nested/f'])).stdout.toString(), 'from host\n');
    const notDir = await berth(['cp', '-', 'running:/tmp/renamed'], Buffer.alloc(1024));
    assert.equal(notDir.code, 1);
  });

  test('export writes the whole filesystem, without /proc, /sys, /dev contents', async () => {
    const file = join(dir, 'stopped.tar');
    await ok(['export', 'stopped', '-o', file]);
    const names = tarList(readFileSync(file));
    assert.ok(names.includes('./bin/busybox'));
    assert.ok(names.includes('./data/sub/b'));
    assert.ok(names.includes(`.${host}/secret`));
    const running = tarList((await ok(['export', 'running'])).stdout);
    assert.ok(running.includes('./tmp/nested/f'));
    assert.ok(running.includes('./proc/'));
    assert.equal(running.filter((n) => /^\.\/(proc|sys|dev)\/./.test(n)).length, 0);
    assert.equal((await berth(['export', 'no-such-container', '-o', join(dir, 'x.tar')])).code, 1);
    assert.equal(existsSync(join(dir, 'x.tar')), false);
  });
});
