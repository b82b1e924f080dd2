// A throwaway single-node Ceph with radosgw as a real S3 endpoint for tests and benchmarks (Debian
// 12 packages ceph-mon, ceph-osd, radosgw, ceph-common; Ceph 16 "Pacific"): one monitor, one
// memstore OSD (data in memory, capped by `memstoreBytes`), no manager, radosgw on a loopback
// port. Everything lives in a mkdtemp folder under /tmp; every port is picked at run time (the
// monitor's too: it is whatever the monmap says, so clusters started in parallel do not collide;
// the OSD takes free ports of Ceph's 6800-7300 range by itself). Facts from
// /work/shared/recipes/ceph-single-node.sh, with its two traps:
//   - cephx stays on: with `auth ... = none` the OSD gets a zero fsid and dies with "wrong fsid";
//   - `ceph-osd --mkfs` needs `--no-mon-config` (it would ask a monitor for its config otherwise).
// Keys are generated into the monitor's keyring before its mkfs (client.admin, client.rgw.a), so
// the only `ceph` (python, slow) call at start is `osd new`. The monitor batches map updates for
// `paxos propose interval` (1 s by default); radosgw's start creates its pools one map update
// after another, so 0.01 s brings the start from ~12 s to ~2-7 s. docs/testing-services.md.
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, releaseDir, removeAtExit, spawnDaemon, stopDaemon, treeMemoryBytes, waitReady, type Daemon } from './processes.js';
import { s3Request, type S3Credentials } from './s3-request.js';

const run = promisify(execFile);

const BIN = {
  mon: '/usr/bin/ceph-mon',
  osd: '/usr/bin/ceph-osd',
  rgw: '/usr/bin/radosgw',
  rgwAdmin: '/usr/bin/radosgw-admin',
  ceph: '/usr/bin/ceph',
  authtool: '/usr/bin/ceph-authtool',
  monmaptool: '/usr/bin/monmaptool',
};

/** Why a test Ceph cannot be started here (a skip reason), or undefined. */
export function cephMissing(): string | undefined {
  const absent = Object.values(BIN).filter((p) => !existsSync(p));
  if (absent.length) return `${absent.join(', ')} not installed (apt-get install ceph-mon ceph-osd radosgw ceph-common; .ci/run does)`;
  return undefined;
}

export interface CephOptions {
  /** Capacity of the memstore OSD (memory it may grow to), bytes. 1 GiB by default. */
  memstoreBytes?: number;
  /** More `[global]` settings (name → value), after the fixture's own; for experiments and benchmarks. */
  config?: Record<string, string>;
  /** Deadline for the whole start, ms. 120 s by default. */
  startTimeoutMs?: number;
}

export interface TestCeph extends S3Credentials {
  /** http://127.0.0.1:PORT, path-style S3. */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The temp folder holding the cluster (config, logs, sockets, monitor store). */
  dir: string;
  /** Creates a bucket (PUT Bucket); rejects on any status but 200. */
  createBucket(name: string): Promise<void>;
  /** Stops radosgw alone (SIGKILL: the endpoint vanishes mid-request); the cluster stays up. */
  stopRadosgw(): Promise<void>;
  /** Starts radosgw again on the same port and waits until it answers. */
  startRadosgw(): Promise<void>;
  /** Memory of the cluster's processes (sum of PSS), bytes. */
  memoryBytes(): number;
  /** Stops every process and removes the folder. */
  stop(): Promise<void>;
}

const REGION = 'us-east-1';

async function tool(bin: string, args: string[]): Promise<string> {
  try {
    return (await run(bin, args, { env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' }, maxBuffer: 16 << 20, timeout: 60_000 })).stdout;
  } catch (e) {
    const err = e as Error & { stderr?: string; stdout?: string };
    throw new Error(`${bin} ${args.join(' ')} failed: ${(err.stderr || err.stdout || err.message).trim()}`);
  }
}

/** radosgw's frontend answers on `/` (anonymous ListBuckets) with its request id header. */
function radosgwAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.headers['x-amz-request-id'] !== undefined);
    });
    req.once('error', () => resolve(false));
    req.once('timeout', () => req.destroy());
    req.end();
  });
}

/**
 * The monitor (messenger v1) greets every connection with the banner `ceph v027`; a port that
 * merely accepts connections may belong to another process that took it first.
 */
function monitorAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let got = '';
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(2000, () => done(false));
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.length >= 6) done(got.startsWith('ceph v'));
    });
    s.once('error', () => done(false));
    s.once('end', () => done(false));
  });
}

/** Tails of the cluster's log files, for start failures. */
function logTails(dir: string): string {
  try {
    return readdirSync(join(dir, 'log'))
      .map((f) => `--- ${f}\n${readFileSync(join(dir, 'log', f), 'utf8').slice(-3000)}`)
      .join('\n');
  } catch {
    return '';
  }
}

export async function startCeph(opts: CephOptions = {}): Promise<TestCeph> {
  const reason = cephMissing();
  if (reason) throw new Error(reason);
  // The ports are free when picked, but another process may bind one before the monitor or
  // radosgw does: such a start is retried from scratch with new ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startCephOnce(opts);
    } catch (e) {
      if (attempt >= 3 || !/Address already in use/.test((e as Error).message)) throw e;
    }
  }
}

async function startCephOnce(opts: CephOptions): Promise<TestCeph> {
  const deadline = Date.now() + (opts.startTimeoutMs ?? 120_000);
  // Under /tmp whatever TMPDIR says: admin socket paths must stay short (108 bytes).
  const dir = await mkdtemp('/tmp/berth-ceph-');
  removeAtExit(dir);
  const daemons: Daemon[] = [];
  let rgw: Daemon | undefined;
  const stopAll = async () => {
    if (rgw) await stopDaemon(rgw, 5000, 'SIGKILL');
    for (const d of daemons.reverse()) await stopDaemon(d, 5000);
    await rm(dir, { recursive: true, force: true });
    releaseDir(dir);
  };
  try {
    for (const sub of ['mon', 'osd0', 'run', 'log', 'rgw']) await mkdir(join(dir, sub));
    const [monPort, rgwPort] = [await freePort(), await freePort()];
    const fsid = randomUUID();
    const conf = join(dir, 'ceph.conf');
    await writeFile(
      conf,
      `[global]
fsid = ${fsid}
mon host = v1:127.0.0.1:${monPort}
mon initial members = a
ms bind msgr2 = false
ms bind retry count = 1
public addr = 127.0.0.1
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 1
osd crush chooseleaf type = 0
paxos propose interval = 0.01
paxos min wait = 0.001
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
log file = ${dir}/log/$name.log
pid file = ${dir}/run/$name.pid
crash dir = ${dir}/crash
keyring = ${dir}/keyring
${Object.entries(opts.config ?? {})
  .map(([k, v]) => `${k} = ${v}\n`)
  .join('')}[mon.a]
mon data = ${dir}/mon
keyring = ${dir}/mon.keyring
[osd]
osd objectstore = memstore
memstore device bytes = ${opts.memstoreBytes ?? 1 << 30}
osd data = ${dir}/osd$id
keyring = ${dir}/osd$id/keyring
osd max object name len = 256
osd max object namespace len = 64
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw data = ${dir}/rgw
keyring = ${dir}/rgw.keyring
`,
    );
    const c = ['-c', conf];
    const monKeyring = join(dir, 'mon.keyring');
    await tool(BIN.authtool, ['--create-keyring', monKeyring, '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *']);
    await tool(BIN.authtool, ['--create-keyring', join(dir, 'keyring'), '--gen-key', '-n', 'client.admin', '--cap', 'mon', 'allow *', '--cap', 'osd', 'allow *', '--cap', 'mgr', 'allow *']);
    await tool(BIN.authtool, ['--create-keyring', join(dir, 'rgw.keyring'), '--gen-key', '-n', 'client.rgw.a', '--cap', 'mon', 'allow rw', '--cap', 'osd', 'allow rwx']);
    // Imported before the monitor's mkfs: the monitor starts knowing these clients.
    await tool(BIN.authtool, [monKeyring, '--import-keyring', join(dir, 'keyring')]);
    await tool(BIN.authtool, [monKeyring, '--import-keyring', join(dir, 'rgw.keyring')]);
    await tool(BIN.monmaptool, ['--create', '--fsid', fsid, '--addv', 'a', `[v1:127.0.0.1:${monPort}]`, join(dir, 'monmap')]);
    const osdUuid = randomUUID();
    await Promise.all([
      tool(BIN.mon, [...c, '-i', 'a', '--mkfs', '--monmap', join(dir, 'monmap'), '--keyring', monKeyring]),
      tool(BIN.osd, [...c, '-i', '0', '--mkfs', '--mkkey', '--no-mon-config', '--osd-uuid', osdUuid]),
    ]);
    const mon = spawnDaemon('ceph-mon', BIN.mon, [...c, '-i', 'a', '-f']);
    daemons.push(mon);
    await waitReady(mon, () => monitorAnswers(monPort), Math.max(1000, deadline - Date.now()), () => logTails(dir));
    const osdKey = /key = (\S+)/.exec(await readFile(join(dir, 'osd0', 'keyring'), 'utf8'))?.[1];
    if (!osdKey) throw new Error('ceph-osd --mkfs wrote no key');
    await writeFile(join(dir, 'osd0-secret.json'), JSON.stringify({ cephx_secret: osdKey }));
    // Registers osd.0 in the OSD map and its key with the default OSD caps, in one call.
    await tool(BIN.ceph, [...c, '--connect-timeout', '30', 'osd', 'new', osdUuid, '0', '-i', join(dir, 'osd0-secret.json')]);
    daemons.push(spawnDaemon('ceph-osd', BIN.osd, [...c, '-i', '0', '-f']));
    // radosgw waits for the OSD by itself (it creates its pools at start).
    const startRgw = async (timeoutMs: number) => {
      const d = spawnDaemon('radosgw', BIN.rgw, [...c, '-n', 'client.rgw.a', '-f']);
      rgw = d;
      await waitReady(d, () => radosgwAnswers(rgwPort), timeoutMs, () => logTails(dir));
    };
    await startRgw(Math.max(1000, deadline - Date.now()));
    const accessKeyId = `BERTH${randomBytes(8).toString('hex').toUpperCase()}`;
    const secretAccessKey = randomBytes(24).toString('base64url');
    await tool(BIN.rgwAdmin, [...c, 'user', 'create', '--uid=berth-test', '--display-name=berth test', `--access-key=${accessKeyId}`, `--secret-key=${secretAccessKey}`]);
    const creds: S3Credentials = { endpoint: `http://127.0.0.1:${rgwPort}`, region: REGION, accessKeyId, secretAccessKey };
    return {
      ...creds,
      dir,
      async createBucket(name) {
        const r = await s3Request(creds, 'PUT', `/${name}`);
        if (r.status !== 200) throw new Error(`PUT bucket ${name}: ${r.status} ${r.body.toString()}`);
      },
      async stopRadosgw() {
        if (rgw) await stopDaemon(rgw, 5000, 'SIGKILL');
        rgw = undefined;
      },
      async startRadosgw() {
        if (rgw?.running()) return;
        await startRgw(60_000);
      },
      memoryBytes: () => treeMemoryBytes([...daemons, ...(rgw ? [rgw] : [])].map((d) => d.child.pid ?? 0)),
      stop: stopAll,
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
