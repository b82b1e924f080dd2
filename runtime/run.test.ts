// End-to-end container tests, as root for real: namespaces, overlayfs, cgroups, the CLI's exit
// codes. Images are OCI layouts built from busybox-static (test-images.ts).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { buildImage, busyboxLayer } from './test-images.js';

const BERTH = fileURLToPath(new URL('../../bin/launch.cjs', import.meta.url));
const isRoot = process.getuid?.() === 0;

let dir: string;
let root: string;
let image: string;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function berth(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BERTH, ...args], { env: { ...process.env, BERTH_ROOT: root, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const run = (...args: string[]) => berth(['run', '--rm', ...args]);

/** Answers each datagram on UDP port argv[1] with "echo:" and its bytes. */
const UDP_ECHO = `#include <arpa/inet.h>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
int main(int argc, char** argv) {
  if (argc < 2) return 2;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<unsigned short>(atoi(argv[1])));
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) return 1;
  char in[2048], out[2048 + 5];
  for (;;) {
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(fd, in, sizeof in, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) return 3;
    memcpy(out, "echo:", 5);
    memcpy(out + 5, in, static_cast<size_t>(n));
    sendto(fd, out, static_cast<size_t>(n) + 5, 0, reinterpret_cast<sockaddr*>(&from), len);
  }
}
`;

describe('berth run', { skip: !isRoot && 'needs root (namespaces, overlayfs, cgroups)' }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-run-'));
    root = join(dir, 'root');
    const layout = join(dir, 'images');
    await buildImage(layout, 'busybox', [busyboxLayer()], { Cmd: ['sh', '-c', 'echo default cmd'] });
    await buildImage(layout, 'whiteout', [
      [...busyboxLayer(), { name: 'etc/secret', content: 'hidden' }, { name: 'opq/', type: 'directory' }, { name: 'opq/old', content: 'old' }, { name: 'keep', content: 'kept' }],
      [{ name: 'etc/.wh.secret' }, { name: 'opq/', type: 'directory' }, { name: 'opq/.wh..wh..opq' }, { name: 'opq/new', content: 'new' }],
    ]);
    await buildImage(layout, 'config', [busyboxLayer()], {
      Entrypoint: ['echo', 'entry'],
      Cmd: ['default'],
      Env: ['PATH=/bin', 'FROM_IMAGE=1', 'OVERRIDE=image'],
      WorkingDir: '/srv/app',
      User: 'app',
    });
    await buildImage(layout, 'stopsignal', [busyboxLayer()], { StopSignal: 'SIGUSR1' });
    await buildImage(layout, 'escape', [[...busyboxLayer(), { name: '../escaped', content: 'x' }]]);
    // busybox has no UDP server applet: a 20-line echo server, built static with the g++ that
    // builds the native addon.
    await writeFile(join(dir, 'udp-echo.cc'), UDP_ECHO);
    execFileSync('g++', ['-static', '-O2', '-o', join(dir, 'udp-echo'), join(dir, 'udp-echo.cc')]);
    await buildImage(layout, 'udpecho', [[...busyboxLayer(), { name: 'bin/udp-echo', fromFile: join(dir, 'udp-echo'), mode: 0o755 }]]);
    image = `oci:${layout}:busybox`;
    process.env.BERTH_TEST_LAYOUT = layout;
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  const img = (tag: string) => `oci:${process.env.BERTH_TEST_LAYOUT}:${tag}`;

  test('the command is PID 1, sees only its own processes and its own hostname; its exit code is run\'s', async () => {
    // ps writes to a file, not a pipe: a pipe's reader may or may not exist yet when ps reads /proc.
    const r = await run('--hostname', 'box1', image, 'sh', '-c', 'echo pid=$$; hostname; ps -o pid,comm > /ps.out; tail -n +2 /ps.out; exit 7');
    assert.equal(r.code, 7, r.stderr);
    const [pid, host, ...procs] = r.stdout.trim().split('\n');
    assert.equal(pid, 'pid=1');
    assert.equal(host, 'box1');
    // Only the shell (PID 1) and ps itself: nothing of the host.
    assert.deepEqual(procs.map((l) => l.trim().split(/\s+/)[1]), ['sh', 'ps'], procs.join('\n'));
    assert.equal(procs[0]?.trim().split(/\s+/)[0], '1');
  });

  test('signals sent to a foreground berth run reach the container; run exits with its code, leaving no trace', async () => {
    const child = spawn(process.execPath, [BERTH, 'run', '--rm', '--name', 'fg-signals', image, 'sh', '-c', "trap 'echo got TERM; exit 3' TERM; echo ready; while true; do sleep 0.1; done"], {
      env: { ...process.env, BERTH_ROOT: root },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    const ready = new Promise<void>((resolve) => child.stdout.on('data', (d) => ((stdout += d), stdout.includes('ready') && resolve())));
    const code = new Promise<number | null>((resolve) => child.on('exit', resolve)); // 'exit': a stray container holding stdout must not hang the test
    await ready;
    child.kill('SIGTERM');
    assert.equal(await code, 3);
    assert.match(stdout, /got TERM/);
    assert.notEqual((await berth(['inspect', 'fg-signals'])).code, 0, 'the --rm container is gone');
  });

  test('a helper that cannot be spawned is exit 125 with its path and the reason; nothing is left behind', async () => {
    const r = await berth(['run', '--rm', '--name', 'no-helper', image, 'true'], { BERTH_HELPER: join(dir, 'no-such-helper') });
    assert.equal(r.code, 125);
    assert.match(r.stderr, /no-such-helper.*No such file or directory/);
    assert.notEqual((await berth(['inspect', 'no-helper'])).code, 0);
  });

  test('the container starts with no signal ignored that berth or glibc ignored (posix_spawn leaves 32/33 ignored)', async () => {
    // /proc/self of `cat`, exec'd by the shell: it inherits only what the helper passed on.
    const r = await run(image, 'cat', '/proc/self/status');
    assert.equal(r.code, 0, r.stderr);
    const ign = BigInt(`0x${/^SigIgn:\s*([0-9a-f]+)$/m.exec(r.stdout)?.[1] ?? 'ffff'}`);
    assert.equal(ign, 0n, `SigIgn ${ign.toString(16)}`);
  });

  test('the image Cmd runs by default; CMD args replace it', async () => {
    assert.equal((await run(image)).stdout, 'default cmd\n');
    assert.equal((await run(image, 'echo', 'override')).stdout, 'override\n');
  });

  test('Entrypoint, Env, WorkingDir and User come from the image; flags override them', async () => {
    const r = await run(img('config'), 'a', 'b');
    assert.equal(r.stdout, 'entry a b\n', r.stderr);
    const env = await run('-e', 'OVERRIDE=flag', '-e', 'NEW=x', '--entrypoint', 'sh', img('config'), '-c', 'echo $FROM_IMAGE $OVERRIDE $NEW; pwd; id');
    assert.equal(env.code, 0, env.stderr);
    assert.deepEqual(env.stdout.trim().split('\n'), ['1 flag x', '/srv/app', 'uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)']);
    const flags = await run('-w', '/tmp', '-u', '65534:65534', image, 'sh', '-c', 'pwd; id -u; id -g');
    assert.deepEqual(flags.stdout.trim().split('\n'), ['/tmp', '65534', '65534']);
  });

  test('a root process gets docker\'s default capabilities, and no_new_privs only when asked (as docker; runtime/confine.test.ts)', async () => {
    const r = await run(image, 'grep', '-E', '^(CapEff|NoNewPrivs)', '/proc/self/status');
    assert.match(r.stdout, /CapEff:\s+00000000a80425fb/);
    assert.match(r.stdout, /NoNewPrivs:\s+0/);
  });

  test('the process gets stdin, stdout and stderr only: no fd of berth leaks in', async () => {
    const r = await run(image, 'ls', '/proc/self/fd');
    assert.deepEqual(r.stdout.trim().split('\n'), ['0', '1', '2', '3']); // 3: ls reading the directory
  });

  test('-t gives the process a terminal, and -it a shell on it', async () => {
    const cmd = `${process.execPath} ${BERTH} run --rm -t ${image} sh -c 'test -t 0 && test -t 1 && echo on-a-tty; exit 4'`;
    const r = await new Promise<Result>((resolve) => {
      const c = spawn('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, BERTH_ROOT: root }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      c.stdout.on('data', (d) => (stdout += d));
      c.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr: '' }));
    });
    assert.match(r.stdout, /on-a-tty/);
    assert.equal(r.code, 4);
  });

  test('a file written inside lands in the container layer only, not in the image layer or the host', async () => {
    const name = 'writer';
    const w = await berth(['run', '--name', name, image, 'sh', '-c', 'echo data > /created-inside']);
    assert.equal(w.code, 0, w.stderr);
    const [id] = readdirSync(join(root, 'containers'));
    assert.ok(id);
    assert.equal(readFileSync(join(root, 'containers', id, 'upper', 'created-inside'), 'utf8'), 'data\n');
    const layersRoot = join(root, 'layers', 'sha256');
    for (const layer of readdirSync(layersRoot)) assert.equal(existsSync(join(layersRoot, layer, 'created-inside')), false);
    assert.equal(existsSync('/created-inside'), false);
    assert.equal((await run(image, 'cat', '/created-inside')).code, 1); // a new container starts from the image
    assert.equal((await berth(['rm', name])).code, 0);
    assert.equal(existsSync(join(root, 'containers', id)), false);
  });

  test('whiteouts hide deleted files and opaque directories hide lower contents', async () => {
    const r = await run(img('whiteout'), 'sh', '-c', 'test -e /etc/secret && echo secret-visible; ls /opq; cat /keep');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['new', 'kept']);
  });

  test('-v makes a host directory visible; :ro makes it read-only', async () => {
    const host = join(dir, 'shared');
    await mkdir(host);
    await writeFile(join(host, 'from-host'), 'hello');
    const r = await run('-v', `${host}:/data`, image, 'sh', '-c', 'cat /data/from-host; echo back > /data/from-container');
    assert.equal(r.stdout, 'hello');
    assert.equal(readFileSync(join(host, 'from-container'), 'utf8'), 'back\n');
    const ro = await run('-v', `${host}:/data:ro`, image, 'touch', '/data/x');
    assert.notEqual(ro.code, 0);
    assert.equal(existsSync(join(host, 'x')), false);
  });

  test('--read-only makes the root filesystem read-only', async () => {
    const r = await run('--read-only', image, 'touch', '/x');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Read-only file system/);
  });

  test('-m 32m: a process over the limit is OOM-killed and run exits 137', async () => {
    const r = await berth(['run', '--name', 'hog', '-m', '32m', image, 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1']);
    assert.equal(r.code, 137, r.stderr);
    const inspect = JSON.parse((await berth(['inspect', 'hog'])).stdout) as { State: { OOMKilled: boolean; ExitCode: number; Status: string } }[];
    assert.equal(inspect[0]?.State.OOMKilled, true);
    assert.equal(inspect[0]?.State.ExitCode, 137);
    assert.equal(inspect[0]?.State.Status, 'exited');
    await berth(['rm', 'hog']);
  });

  test('--pids-limit stops a fork bomb', async () => {
    const r = await run('--pids-limit', '8', image, 'sh', '-c', 'n=0; for i in $(seq 1 30); do sleep 5 & n=$((n+1)); done; echo started $n');
    assert.match(r.stderr, /can't fork|Resource temporarily unavailable/);
    assert.doesNotMatch(r.stdout, /started 30/);
  });

  test('--rm leaves no trace: no state dir, no mount, no cgroup', async () => {
    const cgroupDirs = () =>
      ['memory', 'pids'].flatMap((ctl) => {
        const base = `/sys/fs/cgroup/${ctl}/berth`;
        return existsSync(base) ? readdirSync(base, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => `${ctl}/${d.name}`) : [];
      });
    const before = cgroupDirs();
    const r = await run('--name', 'ephemeral', '-m', '64m', image, 'true');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(join(root, 'containers')), []);
    assert.equal(existsSync(join(root, 'names', 'ephemeral')), false);
    assert.equal(readFileSync('/proc/self/mountinfo', 'utf8').includes(root), false);
    assert.deepEqual(cgroupDirs(), before);
  });

  test('docker exit codes for errors: 127 unknown command, 126 not executable, 125 bad flag or unknown image', async () => {
    const missing = await run(image, 'no-such-command');
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /executable file not found/);
    assert.equal((await run(image, '/etc/passwd')).code, 126);
    assert.equal((await run('--no-such-flag', image)).code, 125);
    assert.equal((await run('-m', 'lots', image)).code, 125);
    const unknown = await run(img('nope'));
    assert.equal(unknown.code, 125);
    assert.match(unknown.stderr, /Unable to find image/);
  });

  test('a layer with a ../ path is refused and nothing is written outside', async () => {
    const r = await run(img('escape'), 'true');
    assert.equal(r.code, 125);
    assert.match(r.stderr, /escapes the layer root/);
    assert.equal(existsSync(join(root, 'layers', 'escaped')), false);
    assert.equal(existsSync(join(root, 'layers', 'tmp', 'escaped')), false);
    assert.deepEqual(readdirSync(join(root, 'layers', 'tmp')), []);
  });

  test('--init runs an init as PID 1 that passes on the exit code', async () => {
    const r = await run('--init', image, 'sh', '-c', 'echo $$; exit 3');
    assert.equal(r.code, 3);
    assert.notEqual(r.stdout.trim(), '1');
  });

  test('--network none has only loopback; host shares the host network', async () => {
    const none = await run(image, 'cat', '/proc/net/dev');
    assert.deepEqual(none.stdout.trim().split('\n').slice(2).map((l) => l.trim().split(':')[0]), ['lo']);
    const host = await run('--network', 'host', image, 'cat', '/proc/net/dev');
    const names = (text: string) => text.trim().split('\n').slice(2).map((l) => l.trim().split(':')[0]).sort();
    assert.deepEqual(names(host.stdout), names(readFileSync('/proc/net/dev', 'utf8')));
  });

  test('-d: the container outlives the CLI; ps, logs, exec, inspect, stop, wait, rm', async () => {
    const d = await berth(['run', '-d', '--name', 'bg', '--hostname', 'bghost', image, 'sh', '-c', "trap 'echo got TERM; exit 3' TERM; echo ready; while true; do sleep 0.1; done"]);
    assert.equal(d.code, 0, d.stderr);
    const id = d.stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const ps = await berth(['ps']);
    assert.match(ps.stdout, new RegExp(`${id.slice(0, 12)}.*Up.*bg`));
    assert.equal((await berth(['ps', '-q'])).stdout.trim(), id.slice(0, 12));
    const exec = await berth(['exec', 'bg', 'sh', '-c', 'hostname; cat /proc/1/cmdline | tr "\\0" " "; echo; echo $$']);
    assert.equal(exec.code, 0, exec.stderr);
    const [host, init, execPid] = exec.stdout.split('\n');
    assert.equal(host, 'bghost');
    assert.match(init!, /^sh -c trap/);
    assert.notEqual(execPid, '1');
    assert.equal((await berth(['exec', 'bg', 'sh', '-c', 'exit 5'])).code, 5);
    const inspect = JSON.parse((await berth(['inspect', 'bg'])).stdout) as { Config: { Hostname: string }; State: { Status: string } }[];
    assert.equal(inspect[0]?.Config.Hostname, 'bghost');
    assert.equal(inspect[0]?.State.Status, 'running');
    assert.equal((await berth(['rm', 'bg'])).code, 1); // running: needs -f
    assert.equal((await berth(['stop', '-t', '5', 'bg'])).code, 0);
    assert.equal((await berth(['wait', 'bg'])).stdout, '3\n');
    const logs = await berth(['logs', 'bg']);
    assert.equal(logs.stdout, 'ready\ngot TERM\n');
    assert.equal((await berth(['logs', '--tail', '1', 'bg'])).stdout, 'got TERM\n');
    const after = JSON.parse((await berth(['inspect', id.slice(0, 8)])).stdout) as { State: { Status: string; ExitCode: number } }[];
    assert.equal(after[0]?.State.Status, 'exited');
    assert.equal(after[0]?.State.ExitCode, 3);
    assert.equal((await berth(['rm', 'bg'])).code, 0);
    assert.equal((await berth(['inspect', 'bg'])).code, 1);
  });

  test('stop sends the image StopSignal, then SIGKILL after -t', async () => {
    const d = await berth(['run', '-d', '--name', 'stubborn', img('stopsignal'), 'sh', '-c', "trap 'echo got USR1' USR1; echo ready; while true; do sleep 0.1; done"]);
    assert.equal(d.code, 0, d.stderr);
    assert.equal((await berth(['stop', '-t', '1', 'stubborn'])).code, 0);
    assert.equal((await berth(['wait', 'stubborn'])).stdout, '137\n');
    assert.match((await berth(['logs', 'stubborn'])).stdout, /got USR1/);
    assert.equal((await berth(['rm', 'stubborn'])).code, 0);
  });

  test('a named volume keeps its data across containers and cannot be removed while used', async () => {
    assert.equal((await run('-v', 'keep:/data', image, 'sh', '-c', 'echo persisted > /data/f')).code, 0);
    assert.equal((await run('--mount', 'type=volume,source=keep,target=/v', image, 'cat', '/v/f')).stdout, 'persisted\n');
    assert.match((await berth(['volume', 'ls', '-q'])).stdout, /^keep$/m);
    assert.equal((await berth(['run', '--name', 'user', '-v', 'keep:/data', image, 'true'])).code, 0);
    assert.equal((await berth(['volume', 'rm', 'keep'])).code, 1);
    assert.equal((await berth(['rm', 'user'])).code, 0);
    assert.equal((await berth(['volume', 'rm', 'keep'])).code, 0);
    assert.equal((await berth(['volume', 'inspect', 'keep'])).code, 1);
  });

  test('diff lists added, changed and deleted paths; top lists the processes; prune removes stopped containers', async () => {
    const d = await berth(['run', '-d', '--name', 'changer', image, 'sh', '-c', 'rm /etc/group; echo x >> /etc/passwd; mkdir /new; touch /new/a; exec sleep 30']);
    assert.equal(d.code, 0, d.stderr);
    let diff = ''; // the shell makes its changes right after run -d returns: poll until they are all there
    for (let i = 0; i < 50 && !diff.includes('/new/a'); i++) diff = (await berth(['diff', 'changer'])).stdout;
    assert.deepEqual(diff.trim().split('\n'), ['C /etc', 'D /etc/group', 'C /etc/passwd', 'A /new', 'A /new/a']);
    const top = await berth(['top', 'changer']);
    assert.match(top.stdout, /^UID\s+PID\s+PPID\s+CMD\n0\s+\d+\s+\d+\s+sleep 30\n$/);
    const stats = await berth(['stats', '--no-stream', 'changer']);
    assert.match(stats.stdout, /^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+PIDS\n[0-9a-f]{12}\s+changer\s+\d+\.\d\d%\s+\S+ \/ \S+\s+\d+\.\d\d%\s+1\n$/);
    await berth(['kill', 'changer']);
    await berth(['wait', 'changer']);
    const prune = await berth(['container', 'prune', '-f']);
    assert.match(prune.stdout, new RegExp(d.stdout.trim()));
    assert.equal((await berth(['inspect', 'changer'])).code, 1);
  });

  test('commit makes the container layer, deletions included, the top layer of a new image', async () => {
    assert.equal((await berth(['run', '--name', 'tocommit', image, 'sh', '-c', 'rm /etc/group; mkdir /new; echo hi > /new/file; ln -s file /new/link'])).code, 0);
    const target = `oci:${join(dir, 'committed')}:v2`;
    const c = await berth(['commit', 'tocommit', target]);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /^sha256:[0-9a-f]{64}\n$/);
    const r = await run(target, 'sh', '-c', 'test -e /etc/group && echo group-visible; cat /new/link; test -x /bin/busybox && echo base-intact');
    assert.equal(r.stdout, 'hi\nbase-intact\n', r.stderr);
    await berth(['rm', 'tocommit']);
  });

  test('start runs a stopped container again, on its own writable layer and with its limits', async () => {
    const first = await berth(['run', '--name', 'again', '-m', '64m', image, 'sh', '-c', 'echo run >> /count; wc -l < /count']);
    assert.equal(first.stdout.trim(), '1');
    assert.equal((await berth(['start', 'again'])).code, 0);
    assert.equal((await berth(['wait', 'again'])).stdout, '0\n');
    // The log keeps both runs, the foreground one and the detached one, as docker's does.
    assert.equal((await berth(['logs', 'again'])).stdout, '1\n2\n');
    await berth(['rm', 'again']);
  });

  test('--network bridge: an address per container, reachable from the host and from containers; -p publishes a port', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    const d = await berth(['run', '-d', '--name', 'web', '--network', 'bridge', '-p', `127.0.0.1:${port}:80`, image, 'httpd', '-f', '-p', '80', '-h', '/etc']);
    assert.equal(d.code, 0, d.stderr);
    const short = d.stdout.trim().slice(0, 12);
    const info = JSON.parse((await berth(['inspect', 'web'])).stdout) as { NetworkSettings: { IPAddress: string } }[];
    const address = info[0]!.NetworkSettings.IPAddress;
    assert.match(address, /^10\.89\.\d+\.\d+$/);
    // httpd starts listening right after run -d returns: retry until it answers.
    const get = async (url: string) => {
      for (let i = 0; ; i++) {
        try {
          return await (await fetch(url)).text();
        } catch (err) {
          if (i >= 100) throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    assert.equal(await get(`http://127.0.0.1:${port}/hostname`), `${short}\n`);
    assert.equal(await get(`http://${address}/hostname`), `${short}\n`);
    const peer = await run('--network', 'bridge', image, 'wget', '-qO-', `http://${address}/hostname`);
    assert.equal(peer.stdout, `${short}\n`, peer.stderr);
    assert.match((await berth(['ps'])).stdout, new RegExp(`127.0.0.1:${port}->80/tcp`));
    assert.equal((await berth(['rm', '-f', 'web'])).code, 0);
    assert.equal(existsSync(join('/run/berth/ips', address)), false);
    // -p alone puts the container on the bridge, docker's default network; with --network none it is refused.
    const implied = await berth(['run', '-d', '--name', 'implied', '-p', `127.0.0.1:${port}:80`, image, 'sleep', '30']);
    assert.equal(implied.code, 0, implied.stderr);
    const impliedInfo = JSON.parse((await berth(['inspect', 'implied'])).stdout) as { HostConfig: { NetworkMode: string }; NetworkSettings: { IPAddress: string } }[];
    assert.equal(impliedInfo[0]!.HostConfig.NetworkMode, 'bridge');
    assert.match(impliedInfo[0]!.NetworkSettings.IPAddress, /^10\.89\.\d+\.\d+$/);
    assert.equal((await berth(['rm', '-f', 'implied'])).code, 0);
    const refused = await run('--network', 'none', '-p', '8080:80', image, 'true');
    assert.equal(refused.code, 125);
    assert.match(refused.stderr, /-p publishes ports of a container on --network bridge/);
  });

  test('a foreground run\'s output reaches berth\'s stdout and stderr unchanged and is logged for berth logs', async () => {
    const bytes = await new Promise<{ code: number; out: Buffer; err: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [BERTH, 'run', '--name', 'fg', image, 'sh', '-c', 'echo out; echo err >&2; printf "\\377\\000bin"; exit 3'], { env: { ...process.env, BERTH_ROOT: root }, stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let err = '';
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d) => (err += d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? -1, out: Buffer.concat(out), err }));
    });
    assert.equal(bytes.code, 3);
    assert.deepEqual(bytes.out, Buffer.concat([Buffer.from('out\n'), Buffer.from([0xff, 0x00]), Buffer.from('bin')]));
    assert.equal(bytes.err, 'err\n');
    const logs = await berth(['logs', 'fg']);
    assert.equal(logs.stderr, 'err\n');
    assert.match(logs.stdout, /^out\n/);
    assert.equal((await berth(['rm', 'fg'])).code, 0);
  });

  test('logs -tf follows a foreground run, --rm included, with timestamps, and ends when it exits', async () => {
    for (const rmFlag of [[], ['--rm']]) {
      const name = `follow${rmFlag.length}`;
      const fg = berth(['run', ...rmFlag, '--name', name, image, 'sh', '-c', 'echo one; sleep 1; echo two >&2; sleep 1; echo three']);
      let follow: Result | undefined;
      for (let i = 0; i < 100 && !follow; i++) {
        // started once its name resolves; logs -f then waits for the rest
        if ((await berth(['inspect', name])).code === 0) follow = await berth(['logs', '-tf', name]);
        else await new Promise((r) => setTimeout(r, 50));
      }
      const done = await fg;
      assert.equal(done.code, 0, done.stderr);
      assert.equal(done.stdout, 'one\nthree\n');
      assert.ok(follow, `${name} never appeared`);
      assert.match(follow.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z one\n\d{4}-\d\d-\d\dT[^ ]+Z three\n$/, rmFlag.join(''));
      assert.match(follow.stderr, /^\d{4}-[^ ]+Z two\n$/);
      if (rmFlag.length === 0) assert.equal((await berth(['rm', name])).code, 0);
      else assert.equal((await berth(['inspect', name])).code, 1); // --rm removed it, log and all
    }
  });

  test('output without newlines is logged in 16 KiB pieces, and logs gives it back whole', async () => {
    const r = await berth(['run', '--name', 'longline', image, 'sh', '-c', 'head -c 40000 /dev/zero | tr "\\0" x']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'x'.repeat(40000));
    const id = (await berth(['inspect', 'longline'])).stdout.match(/"Id": "([0-9a-f]{64})"/)![1]!;
    const entries = readFileSync(join(root, 'containers', id, 'container-json.log'), 'utf8').trim().split('\n');
    assert.deepEqual(entries.map((e) => (JSON.parse(e) as { log: string }).log.length), [16384, 16384, 7232]);
    assert.equal((await berth(['logs', 'longline'])).stdout, 'x'.repeat(40000));
    assert.equal((await berth(['rm', 'longline'])).code, 0);
  });

  test('a foreground run piped into a reader that quits: the container meets the closed pipe and ends', async () => {
    // Without berth between them, `yes | head -1` ends by SIGPIPE; berth must not keep it writing.
    // (--init: as PID 1 of its namespace, yes would not be killed by SIGPIPE but exit on EPIPE.)
    const r = await new Promise<{ code: number; stdout: string }>((resolve, reject) => {
      const child = spawn('sh', ['-c', `"${process.execPath}" "${BERTH}" run --init --name piped ${image} yes | head -1`], { env: { ...process.env, BERTH_ROOT: root }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? -1, stdout }));
    });
    assert.equal(r.stdout, 'y\n');
    const info = JSON.parse((await berth(['inspect', 'piped'])).stdout) as { State: { Status: string; ExitCode: number } }[];
    assert.equal(info[0]?.State.Status, 'exited');
    assert.equal(info[0]?.State.ExitCode, 141, 'killed by SIGPIPE (128 + 13)');
    assert.equal((await berth(['rm', 'piped'])).code, 0);
  });

  test('-p HOSTPORT:CTRPORT/udp relays datagrams to the container and its replies back, per client', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createSocket('udp4').bind(0, '127.0.0.1', () => {
        const p = probe.address().port;
        probe.close(() => resolve(p));
      });
    });
    const d = await berth(['run', '-d', '--name', 'udp', '-p', `127.0.0.1:${port}:9999/udp`, img('udpecho'), 'udp-echo', '9999']);
    assert.equal(d.code, 0, d.stderr);
    try {
      // The server binds right after run -d returns: ask until it answers (no timing asserted).
      const ask = (payload: string) =>
        new Promise<string>((resolve, reject) => {
          const client = createSocket('udp4');
          let tries = 0;
          const send = () => {
            if (++tries > 100) {
              clearInterval(timer);
              client.close();
              reject(new Error('no UDP answer'));
              return;
            }
            client.send(payload, port, '127.0.0.1');
          };
          const timer = setInterval(send, 100);
          client.on('message', (m) => {
            clearInterval(timer);
            client.close();
            resolve(m.toString());
          });
          send();
        });
      const [a, b] = await Promise.all([ask('one'), ask('two')]);
      assert.equal(a, 'echo:one');
      assert.equal(b, 'echo:two');
      assert.match((await berth(['ps'])).stdout, new RegExp(`127.0.0.1:${port}->9999/udp`));
      const info = JSON.parse((await berth(['inspect', 'udp'])).stdout) as { NetworkSettings: { Ports: Record<string, unknown> } }[];
      assert.deepEqual(Object.keys(info[0]!.NetworkSettings.Ports), ['9999/udp']);
    } finally {
      assert.equal((await berth(['rm', '-f', 'udp'])).code, 0);
    }
    assert.equal((await run('--network', 'bridge', '-p', '1:2/sctp', image, 'true')).code, 125);
  });

  test('-dt: a detached container on a terminal keeps its shell waiting; its output is logged as stdout', async () => {
    // docker run -dt IMAGE sh: the shell's stdin is the terminal, which never ends, so it stays up.
    const d = await berth(['run', '-dt', '--name', 'dtty', image, 'sh', '-c', 'test -t 0 && test -t 1 && echo on-a-tty; stty size; exec sh']);
    assert.equal(d.code, 0, d.stderr);
    const inspect = JSON.parse((await berth(['inspect', 'dtty'])).stdout) as { Config: { Tty: boolean }; State: { Status: string } }[];
    assert.equal(inspect[0]?.Config.Tty, true);
    assert.equal(inspect[0]?.State.Status, 'running');
    const exec = await berth(['exec', 'dtty', 'sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "']);
    assert.equal(exec.stdout.trim(), 'sh', 'the shell replaced the script and still runs: ' + exec.stdout);
    // The monitor logs as the output comes; wait for the two lines (no timing is asserted).
    let logs = await berth(['logs', 'dtty']);
    for (let i = 0; i < 100 && !logs.stdout.includes('24 80'); i++) {
      await new Promise((r) => setTimeout(r, 100));
      logs = await berth(['logs', 'dtty']);
    }
    assert.match(logs.stdout, /^on-a-tty\r\n24 80\r\n/, JSON.stringify(logs.stdout));
    assert.equal(logs.stderr, '');
    assert.equal((await berth(['stop', '-t', '1', 'dtty'])).code, 0);
    assert.equal((await berth(['rm', 'dtty'])).code, 0);
  });

  test('run -d --rm removes the container when it exits', async () => {
    const d = await berth(['run', '-d', '--rm', image, 'true']);
    const id = d.stdout.trim();
    await berth(['wait', id]);
    assert.equal(existsSync(join(root, 'containers', id)), false);
  });
});
