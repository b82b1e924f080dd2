// The command line as a user meets it: `--help` on every verb and subcommand, docker's lines and
// exit code 125 for an unknown flag and for missing operands, docker's flag grammar (combined
// short flags, attached values, flags stopping at run's image, --flag=false).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { VERBS, programFor } from './commands.js';
import { run, commandPath } from './command-line.js';
import { runOptions } from '../runtime/cli/run.js';

// bin/launch.cjs, as bin/berth runs it: the CLI bundle (dist/'s modules where the bundle is stale).
const BERTH = new URL('../../bin/launch.cjs', import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), 'berth-cli-'));
process.on('exit', () => rmSync(root, { recursive: true, force: true }));
const env = { ...process.env, BERTH_ROOT: join(root, 'store'), BERTH_CONFIG: join(root, 'none.json'), XDG_CACHE_HOME: join(root, 'cache') };

function berth(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BERTH, ...args], { env, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Every command of the table: `['network', 'create']`, … (groups and leaves). */
async function allPaths(): Promise<{ path: string[]; cmd: Command }[]> {
  const out: { path: string[]; cmd: Command }[] = [];
  const walk = (cmd: Command, path: string[]) => {
    out.push({ path, cmd });
    for (const sub of cmd.commands) walk(sub, [...path, sub.name()]);
  };
  for (const verb of Object.keys(VERBS)) walk((await programFor(verb))!.commands[0]!, [verb]);
  return out;
}

/** Runs `f` over `items`, `n` at a time (each spawns a berth). */
async function pool<T>(items: T[], n: number, f: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: n }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await f(item);
  }));
}

test('--help on every verb and subcommand: exit 0, the usage line on stdout', async () => {
  const paths = await allPaths();
  assert.ok(paths.length > 60, `${paths.length} commands`);
  for (const must of [['network', 'create'], ['image', 'ls'], ['volume', 'rm'], ['container', 'ls'], ['serve', 'user', 'add'], ['system', 'df'], ['info'], ['version']]) {
    assert.ok(paths.some((p) => p.path.join(' ') === must.join(' ')), must.join(' '));
  }
  await pool(paths, 4, async ({ path, cmd }) => {
    const r = await berth([...path, '--help']);
    assert.equal(r.code, 0, `${path.join(' ')}: ${r.stderr}`);
    // commander's usage line names the first alias too: `berth image ls|list [OPTIONS] …`
    const alias = cmd.aliases()[0] ? `|${cmd.aliases()[0]}` : '';
    assert.equal(r.stdout.split('\n')[0], `Usage: ${commandPath(cmd)}${alias} ${cmd.usage().split('\n')[0]}`, path.join(' '));
    // then the summary (commander wraps it at 80 columns: its first words)
    assert.ok(r.stdout.includes(`\n\n${(cmd.summary() || cmd.description()).split(/\s+/).slice(0, 4).join(' ')}`), r.stdout);
    assert.equal(r.stderr, '');
  });
  // `berth help VERB [SUB]` as docker's
  const viaHelp = await berth(['help', 'network', 'create']);
  assert.deepEqual([viaHelp.code, viaHelp.stdout.split('\n')[0]], [0, 'Usage: berth network create [OPTIONS] NETWORK']);
  // -h too, except on run where -h is --hostname (as docker's)
  assert.equal((await berth(['network', 'ls', '-h'])).code, 0);
  const runH = await berth(['run', '-h']);
  assert.equal(runH.stderr, "flag needs an argument: 'h' in -h\nSee 'berth run --help'.\n");
});

test("an unknown flag on every verb and subcommand: docker's two lines, exit 125, nothing done", async () => {
  await pool(await allPaths(), 4, async ({ path }) => {
    for (const flag of path.length === 1 ? ['--bogus', '--bogus=1'] : ['--bogus']) {
      const r = await berth([...path, flag]);
      assert.equal(r.code, 125, `${path.join(' ')} ${flag}: ${r.stderr}`);
      assert.equal(r.stderr, `unknown flag: --bogus\nSee 'berth ${path.join(' ')} --help'.\n`, path.join(' '));
      assert.equal(r.stdout, '');
    }
  });
  const short = await berth(['ps', '-x']);
  assert.deepEqual([short.code, short.stderr], [125, "unknown shorthand flag: 'x' in -x\nSee 'berth ps --help'.\n"]);
  const unknownVerb = await berth(['bogus']);
  assert.deepEqual([unknownVerb.code, unknownVerb.stderr], [125, "berth: 'bogus' is not a berth command.\nSee 'berth --help'.\n"]);
  const unknownSub = await berth(['network', 'bogus']);
  assert.deepEqual([unknownSub.code, unknownSub.stderr], [125, "unknown command: berth network bogus\nSee 'berth network --help'.\n"]);
});

test("missing operands: docker's sentence, the usage line, exit 125", async () => {
  const leaves = (await allPaths()).filter(({ cmd }) => cmd.registeredArguments.some((a) => a.required));
  assert.ok(leaves.length > 30, `${leaves.length} commands with operands`);
  await pool(leaves, 4, async ({ path, cmd }) => {
    const r = await berth(path);
    assert.equal(r.code, 125, `${path.join(' ')}: ${r.stderr}`);
    const [first, second, , usage] = r.stderr.split('\n');
    assert.match(first!, new RegExp(`^"berth ${path.join(' ')}" requires (exactly \\d+|at least \\d+( and at most \\d+)?) arguments?\\.$`), path.join(' '));
    assert.equal(second, `See 'berth ${path.join(' ')} --help'.`);
    assert.equal(usage, `Usage:  berth ${path.join(' ')} ${cmd.usage().split('\n')[0]}`);
  });
  const rm = await berth(['rm']);
  assert.equal(rm.stderr, "\"berth rm\" requires at least 1 argument.\nSee 'berth rm --help'.\n\nUsage:  berth rm [OPTIONS] CONTAINER [CONTAINER...]\n\nRemove containers\n");
  assert.equal((await berth(['network', 'create'])).stderr.split('\n')[0], '"berth network create" requires exactly 1 argument.');
  assert.equal((await berth(['ps', 'extra'])).stderr.split('\n')[0], '"berth ps" accepts no arguments.');
  assert.equal((await berth(['port', 'a', 'b', 'c'])).stderr.split('\n')[0], '"berth port" requires at least 1 and at most 2 arguments.');
  const needsValue = await berth(['logs', '--tail']);
  assert.deepEqual([needsValue.code, needsValue.stderr], [125, "flag needs an argument: --tail\nSee 'berth logs --help'.\n"]);
  // A group without its subcommand prints its usage, as docker's.
  const group = await berth(['network']);
  assert.equal(group.code, 0);
  assert.match(group.stdout, /^Usage: berth network COMMAND\n[^]*\nCommands:\n {2}ls +List networks\n {2}create +Create a network\n/);
  assert.doesNotMatch(group.stdout, /help \[command\]/);
});

/** Parses `berth run ARGS` with the real table, the action replaced by a capture. */
async function parseRun(args: string[]): Promise<{ code: number; image?: string; cmd?: string[]; flags?: Parameters<typeof runOptions>[2] }> {
  const program = (await programFor('run'))!;
  const out: { image?: string; cmd?: string[]; flags?: Parameters<typeof runOptions>[2] } = {};
  program.commands[0]!.action((image: string, cmd: string[], flags: Parameters<typeof runOptions>[2]) => {
    Object.assign(out, { image, cmd, flags });
    return 0;
  });
  const write = process.stderr.write;
  process.stderr.write = () => true; // the usage errors are asserted through the code here
  try {
    return { code: await run(program, ['run', ...args]), ...out };
  } finally {
    process.stderr.write = write;
  }
}

test('run: combined short booleans, attached values, lists, flags stop at the image', async () => {
  const p = await parseRun(['-dit', '--rm', '-m512m', '-e', 'A=1', '--env=B=2', '--name=web', '-p', '80:80', '-p80:81', 'img', '-e', 'not-a-flag', '--rm']);
  assert.equal(p.code, 0);
  const o = runOptions(p.image!, p.cmd!, p.flags!);
  assert.equal(o.detach && o.interactive && o.tty && o.autoRemove, true);
  assert.equal(o.limits.memoryBytes, 512 * 1024 * 1024);
  assert.deepEqual(o.env, ['A=1', 'B=2']);
  assert.deepEqual(o.publish, ['80:80', '80:81']);
  assert.equal(o.name, 'web');
  assert.equal(o.image, 'img');
  assert.deepEqual(o.cmd, ['-e', 'not-a-flag', '--rm']);
  // pflag's booleans: --rm=false, -d=true; -h is the hostname
  const b = await parseRun(['--rm=false', '-d=true', '--read-only=true', '-h', 'box', 'img', '--rm=false']);
  const ob = runOptions(b.image!, b.cmd!, b.flags!);
  assert.deepEqual([ob.autoRemove, ob.detach, ob.readOnly, ob.hostname, ob.cmd], [false, true, true, 'box', ['--rm=false']]);
  // pflag's -m=64m (commander alone would take "=64m")
  const eq = await parseRun(['-m=64m', '-e=A=1', 'img']);
  assert.deepEqual([eq.flags!.memory, eq.flags!.env], ['64m', ['A=1']]);
  // `--` ends the flags; the image may follow
  const dd = await parseRun(['-d', '--', 'img', 'x']);
  assert.deepEqual([dd.image, dd.cmd], ['img', ['x']]);
  for (const bad of [['--nope', 'img'], ['-m'], [], ['--rm=maybe', 'img'], ['-q', 'img']]) assert.equal((await parseRun(bad)).code, 125, bad.join(' '));
});

test('exec: flags stop at the container; the command keeps its own flags', async () => {
  const program = (await programFor('exec'))!;
  let seen: unknown[] = [];
  program.commands[0]!.action((...args: unknown[]) => {
    seen = args.slice(0, 3);
    return 0;
  });
  assert.equal(await run(program, ['exec', '-it', '-e', 'A=1', '-uroot', 'box', 'ls', '-la', '-e']), 0);
  assert.deepEqual(seen, ['box', ['ls', '-la', '-e'], { interactive: true, tty: true, env: ['A=1'], user: 'root' }]);
});

test('info: counts of containers (running, stopped), images, volumes, networks; the store paths; registries and mirrors of the config', async () => {
  const { writeFile, mkdir } = await import('node:fs/promises');
  const { layerTar, busyboxLayer } = await import('../runtime/test-images.js');
  const dir = join(root, 'info');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'rootfs.tar'), await layerTar(busyboxLayer()));
  await writeFile(env.BERTH_CONFIG, JSON.stringify({ 'insecure-registries': ['10.1.2.3:5000', '192.168.0.0/16'], 'registry-mirrors': ['https://mirror.example'], 'registry-mirror-map': { 'ghcr.io': ['http://10.0.0.5:5000'] } }));
  const ok = async (args: string[]) => {
    const r = await berth(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const empty = JSON.parse(await ok(['info', '--format', '{{json .}}'])) as Record<string, number>;
  await ok(['import', join(dir, 'rootfs.tar'), 'infobox:1']);
  await ok(['run', '-d', '--name', 'info-up', 'infobox:1', 'sleep', '300']);
  await ok(['run', '--name', 'info-done', 'infobox:1', 'true']);
  await ok(['volume', 'create', 'info-vol']);
  try {
    const counts = await ok(['info', '-f', '{{.Containers}} {{.ContainersRunning}} {{.ContainersStopped}} {{.ContainersPaused}} {{.Images}} {{.Volumes}}']);
    assert.equal(counts, '2 1 1 0 1 1\n');
    const text = await ok(['info']);
    for (const line of [
      ' Containers: 2\n  Running: 1\n  Paused: 0\n  Stopped: 1\n Images: 1\n Volumes: 1\n',
      ` Networks: ${empty.Networks}\n`,
      ' Storage Driver: overlay\n',
      ` Berth Root Dir: ${env.BERTH_ROOT}\n  Images: ${join(env.BERTH_ROOT, 'images')}\n  Blobs: ${join(env.BERTH_ROOT, 'blobs')}\n  Layers: ${join(env.BERTH_ROOT, 'layers')}\n  Containers: ${join(env.BERTH_ROOT, 'containers')}\n  Volumes: ${join(env.BERTH_ROOT, 'volumes')}\n`,
      ` Config File: ${env.BERTH_CONFIG}\n`,
      ' Insecure Registries:\n  10.1.2.3:5000\n  192.168.0.0/16\n',
      ' Registry Mirrors:\n  https://mirror.example\n  http://10.0.0.5:5000 (ghcr.io)\n',
      ` Cgroup Version: ${existsSync('/sys/fs/cgroup/cgroup.controllers') ? 2 : 1}\n`,
      ` Kernel Version: ${release()}\n`,
      ` CPUs: ${availableParallelism()}\n`,
    ]) {
      assert.ok(text.includes(line), `${JSON.stringify(line)} in\n${text}`);
    }
    assert.match(text, /^Client:\n Version: {4}\d+\.\d+\.\d+\n[^]*\nServer:\n Containers: 2\n/);
    assert.match(text, / Total Memory: \d+(\.\d+)?GiB\n/);
    assert.equal(await ok(['info', '--format', '{{json .RegistryConfig.InsecureRegistryCIDRs}} {{index .RegistryConfig.Mirrors 0}} {{.Driver}}']), '["10.1.2.3:5000","192.168.0.0/16"] https://mirror.example overlay\n');
    assert.equal(await ok(['system', 'info', '-f', '{{.Images}}']), '1\n');
    const bad = await berth(['info', '-f', '{{.Containers']);
    assert.equal(bad.code, 64);
    assert.match(bad.stderr, /^template parsing error: /);
  } finally {
    await ok(['rm', '-f', 'info-up', 'info-done']);
    await writeFile(env.BERTH_CONFIG, '{}');
  }
});

test('version: the client section; the registry on $BERTH_HOST as the server section when `berth serve` answers there', async () => {
  const { readFileSync } = await import('node:fs');
  const { spawn } = await import('node:child_process');
  const { freePort } = await import('../client/testing/peers.js');
  const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  const port = await freePort();
  const alone = await new Promise<{ code: number; stdout: string }>((resolve) =>
    execFile(process.execPath, [BERTH, 'version'], { env: { ...env, BERTH_HOST: `127.0.0.1:${port}` } }, (err, stdout) => resolve({ code: err ? 1 : 0, stdout })),
  );
  assert.equal(alone.code, 0);
  assert.equal(alone.stdout, `Client:\n Version:          ${version}\n Node.js version:  ${process.version}\n OS/Arch:          linux/${process.arch === 'x64' ? 'amd64' : process.arch}\n Context:          default\n`);

  const server = spawn(process.execPath, [BERTH, 'serve', '--listen', `127.0.0.1:${port}`, '--data', join(root, 'registry'), '--log-level', 'silent'], { env, stdio: 'ignore' });
  try {
    for (let i = 0; ; i++) {
      const up = await fetch(`http://127.0.0.1:${port}/v2/`).then(() => true, () => false);
      if (up) break;
      assert.ok(i < 100, 'berth serve did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    const withServer = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
        execFile(process.execPath, [BERTH, 'version', ...args], { env: { ...env, BERTH_HOST: `127.0.0.1:${port}` } }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })),
      );
    const text = await withServer([]);
    assert.equal(text.code, 0, text.stderr);
    assert.equal(text.stdout, `${alone.stdout}\nServer:\n Registry:\n  Version:         ${version}\n  API version:     registry/2.0\n  Address:         127.0.0.1:${port}\n`);
    assert.equal((await withServer(['--format', '{{.Server.Version}} {{.Server.ApiVersion}} {{.Client.Version}}'])).stdout, `${version} registry/2.0 ${version}\n`);
    const json = JSON.parse((await withServer(['-f', 'json'])).stdout) as { Client: { Version: string }; Server: { Address: string } };
    assert.deepEqual([json.Client.Version, json.Server.Address], [version, `127.0.0.1:${port}`]);
    const bad = await withServer(['-f', '{{.Nope}}']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /can't evaluate field Nope in type system\.versionInfo/);
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
});
