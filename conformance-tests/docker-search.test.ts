// `docker search HOST/TERM` (Debian docker.io's CLI and a private dockerd, configured as users
// configure it) against `berth serve` processes: the engine probes /v1/_ping and asks /v1/search;
// with --auth htpasswd and an ACL it finds, after `docker login`, only what the user may pull.
// `berth search` is run beside it and must list the same names.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BERTH_BIN, startBerthProcess, type BerthProcess } from './fixtures/berth-process.js';
import { dockerMissing, startDockerd, type DockerDaemon } from './fixtures/peer-daemon.js';

const run = promisify(execFile);
const skip = dockerMissing();
const NAMES = ['team/busybox', 'team/app', 'other/busybox', 'lib/busy-box', 'secret/busybox'];
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

/** One tiny image (a config and a manifest without layers) pushed over the API. */
async function pushTiny(url: string, repo: string, authorization?: string): Promise<void> {
  const headers: Record<string, string> = authorization ? { authorization } : {};
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: {} }));
  const blob = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${sha256(config)}`, { method: 'POST', body: new Uint8Array(config), headers: { ...headers, 'content-type': 'application/octet-stream' } });
  assert.equal(blob.status, 201, `${repo}: ${await blob.text()}`);
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length }, layers: [] });
  const put = await fetch(`${url}/v2/${repo}/manifests/v1`, { method: 'PUT', body: manifest, headers: { ...headers, 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(put.status, 201, `${repo}: ${await put.text()}`);
}

/** The NAME column of docker's (or berth's) search table. */
const namesOf = (table: string) => table.trimEnd().split('\n').slice(1).map((l) => l.split(/\s+/)[0]);

describe('docker search against berth serve', { skip: skip ?? false, timeout: 240_000 }, () => {
  let work: string;
  let open: BerthProcess;
  let guarded: BerthProcess;
  let dockerd: DockerDaemon;
  const host = (b: BerthProcess) => new URL(b.url).host;

  const berth = async (...args: string[]) => {
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work, XDG_CONFIG_HOME: join(work, 'config'), BERTH_AUTH_CONFIG: join(work, 'auth.json'), DOCKER_CONFIG: join(work, 'berth-docker'), BERTH_ROOT: join(work, 'root') };
    return (await run(process.execPath, [BERTH_BIN, ...args], { env })).stdout;
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-docker-search-'));
    await run('htpasswd', ['-B', '-c', '-b', join(work, 'users'), 'alice', 'alice-pw']);
    await run('htpasswd', ['-B', '-b', join(work, 'users'), 'admin', 'admin-pw']);
    await writeFile(join(work, 'acl.json'), JSON.stringify({ access: [{ account: 'admin', name: '*', actions: ['*'] }, { account: 'alice', name: 'team/*', actions: ['pull'] }, { account: 'alice', name: 'lib/*', actions: ['pull'] }] }));
    open = await startBerthProcess(join(work, 'open'));
    guarded = await startBerthProcess(join(work, 'guarded'), ['--auth', 'htpasswd', '--htpasswd', join(work, 'users'), '--acl', join(work, 'acl.json')]);
    for (const n of NAMES) {
      await pushTiny(open.url, n);
      await pushTiny(guarded.url, n, basic('admin', 'admin-pw'));
    }
    dockerd = await startDockerd({ insecureRegistries: [host(open), host(guarded)] });
  });

  after(async () => {
    await dockerd?.stop();
    for (const b of [open, guarded]) {
      if (b && b.child.exitCode === null) {
        b.child.kill('SIGTERM');
        await b.exited;
      }
    }
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('docker search HOST/busy lists the repositories containing the term, as berth search does', async () => {
    const { stdout } = await dockerd.docker('search', `${host(open)}/busy`);
    assert.match(stdout.split('\n')[0]!, /^NAME\s+DESCRIPTION\s+STARS\s+OFFICIAL\s+AUTOMATED\s*$/);
    assert.deepEqual(namesOf(stdout), ['lib/busy-box', 'other/busybox', 'secret/busybox', 'team/busybox']);
    assert.deepEqual(namesOf(await berth('search', `${host(open)}/busy`)), namesOf(stdout));
    assert.deepEqual(namesOf((await dockerd.docker('search', '--limit', '2', `${host(open)}/busy`)).stdout), ['lib/busy-box', 'other/busybox']);
    assert.deepEqual(namesOf((await dockerd.docker('search', `${host(open)}/nothing-like-this`)).stdout), []);
  });

  it('--auth htpasswd with an ACL: refused before docker login; after it, only what the user may pull', async () => {
    await assert.rejects(dockerd.docker('search', `${host(guarded)}/busy`), /Unexpected status code 401/, 'docker reports the 401 as it reads it');
    await dockerd.docker('login', '-u', 'alice', '-p', 'alice-pw', host(guarded));
    const { stdout } = await dockerd.docker('search', `${host(guarded)}/busy`);
    assert.deepEqual(namesOf(stdout), ['lib/busy-box', 'team/busybox']);
    await berth('login', '-u', 'alice', '-p', 'alice-pw', host(guarded));
    assert.deepEqual(namesOf(await berth('search', `${host(guarded)}/busy`)), namesOf(stdout));
    // admin may pull everything: the same search finds secret/busybox too.
    await dockerd.docker('login', '-u', 'admin', '-p', 'admin-pw', host(guarded));
    assert.deepEqual(namesOf((await dockerd.docker('search', `${host(guarded)}/busy`)).stdout), ['lib/busy-box', 'other/busybox', 'secret/busybox', 'team/busybox']);
  });
});
