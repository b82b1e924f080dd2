// For tests: a throwaway single-node Ceph (one monitor, one memstore OSD, no manager) with radosgw
// as a real S3 endpoint on a loopback port. A minimal starter written from
// /work/shared/recipes/ceph-single-node.sh, meant to give way to the project's shared starter
// (storage/testing/ceph.ts, same names) once that lands. The recipe's traps: cephx stays on (with
// `auth = none` the OSD gets a zero fsid and dies with "wrong fsid"), and `ceph-osd --mkfs` needs
// `--no-mon-config`. Unlike the recipe, the monitor and radosgw ports are picked at run time, so
// this cluster does not collide with another one on 6789.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BINARIES = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph', 'ceph-authtool', 'monmaptool'].map((b) => `/usr/bin/${b}`);

/** Why a test Ceph cannot start here (a skip reason), or undefined. */
export function cephMissing(): string | undefined {
  const absent = BINARIES.filter((p) => !existsSync(p));
  return absent.length ? `${absent.join(', ')} not installed (apt-get install ceph-mon ceph-osd radosgw ceph-common)` : undefined;
}

export interface TestCeph {
  /** http://127.0.0.1:PORT, path-style S3. */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

async function tool(bin: string, args: string[]): Promise<string> {
  try {
    return (await run(bin, args, { maxBuffer: 16 << 20, timeout: 60_000 })).stdout;
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`${bin} ${args.join(' ')}: ${(err.stderr || err.message).trim()}`);
  }
}

/** A loopback port free when asked (nothing listens on it afterwards). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function httpAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', timeout: 2000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.once('error', () => resolve(false));
    req.once('timeout', () => req.destroy());
    req.end();
  });
}

async function until(what: string, check: () => Promise<boolean>, deadline: number, daemons: ChildProcess[]): Promise<void> {
  while (!(await check())) {
    const dead = daemons.find((d) => d.exitCode !== null || d.signalCode !== null);
    if (dead) throw new Error(`${dead.spawnfile} exited (${dead.exitCode ?? dead.signalCode}) while waiting for ${what}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function startCeph(opts: { memstoreBytes?: number } = {}): Promise<TestCeph> {
  const reason = cephMissing();
  if (reason) throw new Error(reason);
  const deadline = Date.now() + 120_000;
  // Under /tmp: admin socket paths must stay short (108 bytes).
  const dir = await mkdtemp('/tmp/berth-ceph-');
  const daemons: ChildProcess[] = [];
  const killAll = (): void => {
    for (const d of daemons) if (d.exitCode === null && d.signalCode === null) d.kill('SIGKILL');
  };
  process.once('exit', killAll);
  const stop = async (): Promise<void> => {
    await Promise.all(
      daemons.map((d) => (d.exitCode !== null || d.signalCode !== null ? undefined : new Promise<void>((r) => (d.once('exit', () => r()), d.kill('SIGKILL'))))),
    );
    process.removeListener('exit', killAll);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const sub of ['mon', 'osd0', 'run', 'log', 'rgw']) await mkdir(join(dir, sub));
    const monPort = await freePort();
    const rgwPort = await freePort();
    const fsid = randomUUID();
    const conf = join(dir, 'ceph.conf');
    await writeFile(
      conf,
      `[global]
fsid = ${fsid}
mon host = v1:127.0.0.1:${monPort}
mon initial members = a
ms bind msgr2 = false
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
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
log file = ${dir}/log/$name.log
pid file = ${dir}/run/$name.pid
keyring = ${dir}/keyring
[mon.a]
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
    await tool('/usr/bin/ceph-authtool', ['--create-keyring', monKeyring, '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *']);
    await tool('/usr/bin/ceph-authtool', ['--create-keyring', join(dir, 'keyring'), '--gen-key', '-n', 'client.admin', '--cap', 'mon', 'allow *', '--cap', 'osd', 'allow *', '--cap', 'mgr', 'allow *']);
    await tool('/usr/bin/ceph-authtool', [monKeyring, '--import-keyring', join(dir, 'keyring')]);
    await tool('/usr/bin/monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v1:127.0.0.1:${monPort}]`, join(dir, 'monmap')]);
    await tool('/usr/bin/ceph-mon', [...c, '-i', 'a', '--mkfs', '--monmap', join(dir, 'monmap'), '--keyring', monKeyring]);
    const daemon = (bin: string, args: string[]): void => {
      daemons.push(spawn(`/usr/bin/${bin}`, [...c, ...args, '-f'], { stdio: 'ignore' }));
    };
    daemon('ceph-mon', ['-i', 'a']);
    const osdUuid = randomUUID();
    await tool('/usr/bin/ceph-osd', [...c, '-i', '0', '--mkfs', '--mkkey', '--no-mon-config', '--osd-uuid', osdUuid]);
    await tool('/usr/bin/ceph', [...c, '--connect-timeout', '60', 'osd', 'new', (await readFile(join(dir, 'osd0', 'fsid'), 'utf8')).trim(), '0']);
    await tool('/usr/bin/ceph', [...c, 'auth', 'add', 'osd.0', 'osd', 'allow *', 'mon', 'allow profile osd', 'mgr', 'allow profile osd', '-i', join(dir, 'osd0', 'keyring')]);
    daemon('ceph-osd', ['-i', '0']);
    await tool('/usr/bin/ceph', [...c, 'auth', 'get-or-create', 'client.rgw.a', 'mon', 'allow rw', 'osd', 'allow rwx', '-o', join(dir, 'rgw.keyring')]);
    // radosgw waits for the OSD by itself (it creates its pools at start).
    daemon('radosgw', ['-n', 'client.rgw.a']);
    await until('radosgw', () => httpAnswers(rgwPort), deadline, daemons);
    const accessKeyId = `BERTH${randomBytes(8).toString('hex').toUpperCase()}`;
    const secretAccessKey = randomBytes(24).toString('base64url');
    await tool('/usr/bin/radosgw-admin', [...c, 'user', 'create', '--uid=berth-test', '--display-name=berth test', `--access-key=${accessKeyId}`, `--secret-key=${secretAccessKey}`]);
    const ceph: TestCeph = {
      endpoint: `http://127.0.0.1:${rgwPort}`,
      region: 'us-east-1',
      accessKeyId,
      secretAccessKey,
      async createBucket(name) {
        const r = await signedEmptyPut(ceph, `/${name}`);
        if (r.status !== 200) throw new Error(`PUT bucket ${name}: HTTP ${r.status} ${r.body}`);
      },
      stop,
    };
    return ceph;
  } catch (e) {
    await stop();
    throw e;
  }
}

/** A SigV4-signed PUT with an empty body (bucket creation), without the SDK: only storage/drivers/s3.ts loads it. */
function signedEmptyPut(s3: Omit<TestCeph, 'createBucket' | 'stop'>, path: string): Promise<{ status: number; body: string }> {
  const url = new URL(path, s3.endpoint);
  const amzDate = new Date().toISOString().replace(/[-:]|\.\d{3}/g, '');
  const day = amzDate.slice(0, 8);
  const payloadHash = createHash('sha256').update('').digest('hex');
  const headers: Record<string, string> = { host: url.host, 'x-amz-content-sha256': payloadHash, 'x-amz-date': amzDate };
  const signed = Object.keys(headers).sort();
  const canonical = ['PUT', url.pathname, '', ...signed.map((h) => `${h}:${headers[h]}`), '', signed.join(';'), payloadHash].join('\n');
  const scope = `${day}/${s3.region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
  let key: Buffer = createHmac('sha256', `AWS4${s3.secretAccessKey}`).update(day).digest();
  for (const part of [s3.region, 's3', 'aws4_request']) key = createHmac('sha256', key).update(part).digest();
  const signature = createHmac('sha256', key).update(toSign).digest('hex');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${s3.accessKeyId}/${scope}, SignedHeaders=${signed.join(';')}, Signature=${signature}`;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'PUT', headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('error', reject);
    req.end();
  });
}
