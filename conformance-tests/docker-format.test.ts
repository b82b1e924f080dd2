// `--format` against docker's CLI on the same objects: one busybox image (a docker-archive that
// both load), one container made the same way in each (name, env, bind mount), then the same
// templates through `berth` and `docker` (Debian docker.io: dockerd 20.10 with a private data root,
// no bridge, no iptables) and their stdout, stderr and exit codes compared.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BERTH_BIN } from './fixtures/berth-process.js';
import { buildBusyboxImage, imageToolsMissing, skopeoCopy, writePermissiveSkopeoPolicy, SKOPEO } from './fixtures/oci-image.js';
import { DOCKER, dockerMissing, startDockerd, type DockerDaemon } from './fixtures/peer-daemon.js';

const skip = dockerMissing() ?? imageToolsMissing() ?? (existsSync(SKOPEO) ? undefined : `${SKOPEO} not installed (apt-get install skopeo; .ci/run does)`);

interface Result {
  stdout: string;
  stderr: string;
  code: number;
}

function exec(bin: string, args: string[], env: NodeJS.ProcessEnv): Promise<Result> {
  return new Promise((resolve) => {
    execFile(bin, args, { env, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ stdout, stderr, code });
    });
  });
}

describe('--format: berth and docker print the same', { skip: skip ?? false, timeout: 300_000 }, () => {
  let work: string;
  let dockerd: DockerDaemon;
  let dockerEnv: NodeJS.ProcessEnv;
  let berthEnv: NodeJS.ProcessEnv;
  let hostDir: string;
  const IMAGE = 'fmt/app:1';
  const NAME = 'fmt-c';

  const docker = (...args: string[]) => exec(DOCKER, args, dockerEnv);
  const berth = (...args: string[]) => exec(process.execPath, [BERTH_BIN, ...args], berthEnv);
  /** Both, checked to succeed; returns [berth, docker] stdout. */
  const both = async (...args: string[]): Promise<[string, string]> => {
    const [b, d] = await Promise.all([berth(...args), docker(...args)]);
    assert.equal(d.code, 0, `docker ${args.join(' ')}: ${d.stderr}`);
    assert.equal(b.code, 0, `berth ${args.join(' ')}: ${b.stderr}`);
    return [b.stdout, d.stdout];
  };
  /** The same output, error line and exit code. */
  const same = async (...args: string[]): Promise<Result> => {
    const [b, d] = await Promise.all([berth(...args), docker(...args)]);
    assert.deepEqual(b, d, args.join(' '));
    return b;
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-format-'));
    hostDir = join(work, 'shared');
    await mkdir(hostDir);
    const policy = await writePermissiveSkopeoPolicy(join(work, 'policy.json'));
    const image = await buildBusyboxImage(join(work, 'app'), { tag: 'v1' });
    const archive = join(work, 'app.tar');
    await skopeoCopy(`oci:${image.layoutDir}:v1`, `docker-archive:${archive}:${IMAGE}`, { policy });
    dockerd = await startDockerd();
    dockerEnv = { PATH: process.env.PATH, DOCKER_HOST: dockerd.host, DOCKER_CONFIG: join(dockerd.dir, 'client'), DOCKER_CLI_HINTS: 'false' };
    berthEnv = { ...process.env, BERTH_ROOT: join(work, 'berth') };
    for (const load of [berth, docker]) {
      const r = await load('load', '-i', archive);
      assert.equal(r.code, 0, r.stderr);
    }
    // The same container in each: exits at once (busybox sh's builtin), a bind mount, an env var.
    const runArgs = ['run', '--name', NAME, '-e', 'A=1', '-v', `${hostDir}:/mnt`, IMAGE, 'sh', '-c', 'exit 0'];
    for (const run of [berth, docker]) {
      const r = await run(...runArgs);
      assert.equal(r.code, 0, r.stderr);
    }
  });

  after(async () => {
    await berth('rm', '-f', NAME);
    await dockerd?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("inspect -f '{{.State.Status}}' and other single fields", async () => {
    const [b, d] = await both('inspect', '-f', '{{.State.Status}} {{.State.ExitCode}} {{.State.Running}} {{.Name}} {{.Path}} {{.Args}}', NAME);
    assert.equal(d, 'exited 0 false /fmt-c sh [-c exit 0]\n');
    assert.equal(b, d);
    assert.deepEqual(...(await both('inspect', '--format', '{{.Config.Image}} {{.Config.Cmd}} {{.Config.Entrypoint}} {{.HostConfig.Binds}}', NAME)));
  });

  it("inspect -f '{{json .Config.Env}}' and '{{json .Config}}': the keys both have agree", async () => {
    const [b, d] = await both('inspect', '-f', '{{json .Config.Env}}', NAME);
    assert.ok((JSON.parse(b) as string[]).includes('A=1'), b);
    // berth's Config.Env is the process's whole environment (PATH and HOSTNAME too); docker's has what the image and -e set.
    const own = (env: string) => (JSON.parse(env) as string[]).filter((e) => !e.startsWith('PATH=') && !e.startsWith('HOSTNAME='));
    assert.deepEqual(own(b), own(d));
    const [bc, dc] = (await both('inspect', '-f', '{{json .Config}}', NAME)).map((s) => JSON.parse(s) as Record<string, unknown>);
    // Known differences of berth's container record, not of --format: the hostname is the
    // container's own; WorkingDir is the directory the process ran in ("/" where the image sets none).
    const common = Object.keys(dc!).filter((k) => k in bc! && !['Hostname', 'Env', 'WorkingDir'].includes(k));
    assert.ok(common.length >= 6, `keys both have: ${common.join(' ')}`);
    const differ = common.filter((k) => JSON.stringify(bc![k]) !== JSON.stringify(dc![k]));
    assert.deepEqual(differ.map((k) => `${k}: ${JSON.stringify(bc![k])} ≠ ${JSON.stringify(dc![k])}`), []);
  });

  it("inspect -f '{{range .Mounts}}{{.Source}}{{end}}' and map fields", async () => {
    const [b, d] = await both('inspect', '-f', '{{range .Mounts}}{{.Source}}:{{.Destination}}:{{.RW}}{{end}}', NAME);
    assert.equal(d, `${hostDir}:/mnt:true\n`);
    assert.equal(b, d);
    // A key a map does not have prints <no value>; a field a struct does not have is an error.
    assert.deepEqual(...(await both('inspect', '-f', '{{.Config.Labels.nope}}|{{index .Config.Labels "nope"}}|{{.HostConfig.Binds}}', NAME)));
    // Fields docker's JSON omits when empty are still fields of its Go types.
    assert.deepEqual(...(await both('inspect', '-f', '{{.SizeRw}} {{.Config.ExposedPorts}} {{.Config.Volumes}} {{.State.Health}} {{.Config.Entrypoint}} {{.Config.Labels}}', NAME)));
    assert.deepEqual(...(await both('inspect', '-f', '{{range .Mounts}}{{.Type}}|{{.Name}}|{{.Driver}}|{{.Mode}}|{{.RW}}{{end}}', NAME)));
  });

  it('an unknown field: the same error line, blank stdout and exit code as docker', async () => {
    const r = await same('inspect', '-f', '{{.NoSuchField}}', NAME);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^template parsing error: template: :1:2: executing "" at <.NoSuchField>: map has no entry for key "NoSuchField"\n$/);
    await same('inspect', '-f', 'x\n {{.State.NoSuchField}}', NAME);
  });

  it('a syntax error: docker\'s message with the line, exit 64 for inspect, 1 for the list verbs', async () => {
    assert.equal((await same('inspect', '-f', '{{.State.Status', NAME)).code, 64);
    assert.equal((await same('inspect', '-f', '{{.State.Status}', NAME)).code, 64);
    assert.equal((await same('inspect', '-f', '{{if .State.Running}}', NAME)).code, 64);
    assert.equal((await same('inspect', '-f', '{{nosuchfunc .State}}', NAME)).code, 64);
    assert.equal((await same('ps', '-a', '--format', '{{.Names')).code, 1);
    assert.equal((await same('ps', '-a', '--format', '{{.NoSuchField}}')).code, 1);
    assert.equal((await same('images', '--format', '{{.Repository')).code, 1);
    assert.equal((await same('images', '--format', '{{.NoSuchField}}')).code, 1);
  });

  it("ps --format 'table {{.Names}}' and '{{.Names}} {{.Status}}'", async () => {
    await same('ps', '-a', '--format', 'table {{.Names}}');
    await same('container', 'ls', '-a', '--format', '{{.Names}} {{.State}}');
    await same('ps', '-a', '--format', 'table {{.Names}}\\t{{.State}}\\t{{.Image}}\\t{{.Command}}\\t{{.Mounts}}');
    const [b, d] = await both('ps', '-a', '--format', '{{.Names}} {{.Status}}');
    const shape = /^fmt-c Exited \(0\) (Less than a second|\d+ seconds?|About a minute|\d+ minutes) ago\n$/;
    assert.match(d, shape);
    assert.match(b, shape);
    const [bi, di] = (await both('ps', '-a', '--format', '{{.ID}}|{{.Label "x"}}|{{upper .Names}}|{{json .State}}')).map((s) => s.replace(/^[0-9a-f]{12}/, 'ID'));
    assert.equal(bi, di);
    // .Size: the writable layer's bytes (berth leaves out docker's "(virtual …)": it does not count unpacked image bytes).
    const [bs, ds] = await both('ps', '-a', '--format', '{{.Size}}');
    assert.equal(bs.trim(), ds.trim().split(' ')[0]);
    // No running container: a table is the header alone.
    await same('ps', '--format', 'table {{.Names}}\\t{{.Status}}');
  });

  it("images --format '{{.Repository}}:{{.Tag}}' and image inspect", async () => {
    assert.equal((await same('images', '--format', '{{.Repository}}:{{.Tag}}')).stdout, `${IMAGE}\n`);
    await same('images', '--format', 'table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.Digest}}');
    await same('image', 'inspect', '-f', '{{.Id}} {{json .RootFS}} {{.Os}}/{{.Architecture}} {{.Config.Cmd}}', IMAGE);
    await same('inspect', '--format', '{{json .RepoTags}}', IMAGE);
    await same('history', '--format', '{{.ID}}\\t{{.CreatedBy}}\\t{{.Comment}}', IMAGE);
  });

  it('stats --no-stream --format on a running container', async () => {
    for (const run of [berth, docker]) {
      const r = await run('run', '-d', '--name', 'fmt-s', IMAGE, 'sh', '-c', 'exec /bin/busybox sleep 60');
      assert.equal(r.code, 0, r.stderr);
    }
    try {
      assert.deepEqual(...(await both('stats', '--no-stream', '--format', '{{.Container}} {{.Name}} {{.PIDs}} {{len .ID}}', 'fmt-s')));
      const [b, d] = await both('stats', '--no-stream', '--format', 'table {{.Name}}\\t{{.CPUPerc}}', 'fmt-s');
      for (const out of [b, d]) assert.match(out, /^NAME\s+CPU %\nfmt-s\s+\d+\.\d\d%\n$/);
      await same('stats', '--no-stream', '--format', '{{.Nope}}', 'fmt-s');
    } finally {
      await Promise.all([berth('rm', '-f', 'fmt-s'), docker('rm', '-f', 'fmt-s')]);
    }
  });

  it('info and version --format', async () => {
    // One container (stopped), one image in each.
    assert.deepEqual(...(await both('info', '--format', '{{.Containers}} {{.ContainersRunning}} {{.ContainersStopped}} {{.Images}} {{.OSType}}')));
    assert.equal((await same('info', '--format', '{{.Containers')).code, 64);
    assert.equal((await same('version', '--format', '{{.Client.Version')).code, 64);
    const [b, d] = await both('version', '--format', '{{.Client.Version}}');
    assert.match(b, /^\d+\.\d+\.\d+/);
    assert.match(d, /^\d+\.\d+\.\d+/);
  });

  it('volume ls and network ls --format', async () => {
    for (const v of [berth, docker]) assert.equal((await v('volume', 'create', 'fmt-vol')).code, 0);
    await same('volume', 'ls', '--format', '{{.Name}} {{.Driver}} {{.Scope}}');
    await same('volume', 'ls', '--format', 'table {{.Name}}\\t{{.Driver}}');
    await same('volume', 'inspect', '-f', '{{.Name}} {{.Driver}} {{.Scope}} {{.Labels}}', 'fmt-vol');
    const [b, d] = await both('network', 'ls', '--format', '{{.Name}} {{.Driver}} {{.Scope}}');
    for (const line of ['host host local', 'none null local']) {
      assert.ok(d.split('\n').includes(line), d);
      assert.ok(b.split('\n').includes(line), b);
    }
    assert.deepEqual(...(await both('network', 'inspect', '-f', '{{.Name}} {{.Driver}} {{.Scope}} {{.Internal}}', 'host')));
  });
});
