// The service fixtures themselves: a test Ceph answers S3 (signed PUT/GET of an object, radosgw
// stopped and back), a test PostgreSQL answers SQL over TCP with its password and survives a
// restart, a test haproxy spreads the requests of one keep-alive connection over its backends, and
// a test process that dies leaves none of them running.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Agent, createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { cephMissing, startCeph } from './ceph.js';
import { haproxyMissing, startHaproxy } from './haproxy.js';
import { postgresMissing, startPostgres } from './postgres.js';
import { s3Request } from './s3-request.js';

const MiB = 1 << 20;

test('Ceph: radosgw stores and returns an object; stopped, it refuses connections; started again, it serves the same object', { skip: cephMissing() ?? false, timeout: 120_000 }, async (t) => {
  const t0 = Date.now();
  const ceph = await startCeph();
  try {
    t.diagnostic(`Ceph started in ${Date.now() - t0} ms, ${(ceph.memoryBytes() / MiB).toFixed(0)} MiB (PSS of mon+osd+radosgw)`);
    assert.match(ceph.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
    await ceph.createBucket('berth-blobs');
    const bytes = randomBytes(3 * MiB + 17);
    const put = await s3Request(ceph, 'PUT', '/berth-blobs/blobs/sha256/ab/abcdef', { body: bytes, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(put.status, 200, put.body.toString());
    const get = await s3Request(ceph, 'GET', '/berth-blobs/blobs/sha256/ab/abcdef');
    assert.equal(get.status, 200);
    assert.ok(get.body.equals(bytes), 'the bytes read back are the bytes written');
    // A wrong secret is refused: the endpoint really checks signatures.
    const forged = await s3Request({ ...ceph, secretAccessKey: 'wrong' }, 'GET', '/berth-blobs/blobs/sha256/ab/abcdef');
    assert.equal(forged.status, 403);

    await ceph.stopRadosgw();
    await assert.rejects(s3Request(ceph, 'GET', '/berth-blobs/blobs/sha256/ab/abcdef'), /ECONNREFUSED/);
    const t1 = Date.now();
    await ceph.startRadosgw();
    t.diagnostic(`radosgw restarted in ${Date.now() - t1} ms`);
    const again = await s3Request(ceph, 'GET', '/berth-blobs/blobs/sha256/ab/abcdef');
    assert.equal(again.status, 200);
    assert.ok(again.body.equals(bytes));
  } finally {
    await ceph.stop();
  }
  assert.equal(existsSync(ceph.dir), false, 'stop() removes the folder');
});

test('PostgreSQL: SELECT 1 over TCP with the URL password; a new database; still there after a restart', { skip: postgresMissing() ?? false, timeout: 60_000 }, async (t) => {
  const t0 = Date.now();
  const pg = await startPostgres();
  try {
    t.diagnostic(`PostgreSQL started in ${Date.now() - t0} ms, ${(pg.memoryBytes() / MiB).toFixed(0)} MiB (PSS of postmaster and its processes)`);
    assert.match(pg.url, /^postgres:\/\/berth:[^@]+@127\.0\.0\.1:\d+\/berth$/);
    // psql over TCP with the URL as given: password authentication, as the registry will connect.
    assert.equal(await psqlUrl(pg.url, 'SELECT 1'), '1');
    await assert.rejects(psqlUrl(pg.url.replace(/:[^:@]+@/, ':wrong@'), 'SELECT 1'), /password authentication failed/);
    const dbUrl = await pg.createDatabase('registry_meta');
    assert.match(dbUrl, /\/registry_meta$/);
    await psqlUrl(dbUrl, 'CREATE TABLE t (x int); INSERT INTO t VALUES (42)');
    const t1 = Date.now();
    await pg.restart();
    t.diagnostic(`PostgreSQL restarted in ${Date.now() - t1} ms`);
    assert.equal(await psqlUrl(dbUrl, 'SELECT x FROM t'), '42');
  } finally {
    await pg.stop();
  }
  assert.equal(existsSync(pg.dir), false, 'stop() removes the folder');
});

test('haproxy: the requests of ONE keep-alive client connection alternate between the backends', { skip: haproxyMissing() ?? false, timeout: 30_000 }, async () => {
  const seen: IncomingHttpHeaders[] = [];
  const backends = await Promise.all(
    ['b0', 'b1'].map((name) =>
      listen(
        createServer((req, res) => {
          seen.push(req.headers);
          req.resume();
          req.on('end', () => res.end(name));
        }),
      ),
    ),
  );
  const proxy = await startHaproxy({ backends: backends.map((b) => b.url) });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const landed: string[] = [];
    const clientPorts = new Set<number>();
    for (let i = 0; i < 10; i++) {
      const r = await get(`${proxy.url}/v2/`, agent);
      landed.push(r.body);
      clientPorts.add(r.localPort);
    }
    assert.equal(clientPorts.size, 1, 'all requests went over one client connection');
    assert.deepEqual(landed, ['b0', 'b1', 'b0', 'b1', 'b0', 'b1', 'b0', 'b1', 'b0', 'b1']);
    assert.equal(seen[0]!['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen[0]!['x-forwarded-proto'], 'http');
  } finally {
    agent.destroy();
    await proxy.stop();
    for (const b of backends) await b.close();
  }
  assert.equal(existsSync(proxy.dir), false, 'stop() removes the folder');
});

test('a test process that exits without stop(), or is killed, leaves no service process running', { skip: haproxyMissing() ?? false, timeout: 30_000 }, async () => {
  const backend = await listen(createServer((_req, res) => res.end('ok')));
  try {
    for (const ending of ['process.exit(1)', "process.kill(process.pid, 'SIGKILL')"]) {
      const script = `
        import { startHaproxy } from ${JSON.stringify(new URL('./haproxy.js', import.meta.url).href)};
        const p = await startHaproxy({ backends: [${JSON.stringify(backend.url)}] });
        const { readFileSync } = await import('node:fs');
        const pid = readFileSync('/proc/self/task/' + process.pid + '/children', 'utf8').trim();
        process.stdout.write(JSON.stringify({ pid: Number(pid), dir: p.dir }) + '\\n', () => { ${ending}; });`;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      await new Promise((r) => child.once('close', r));
      const { pid, dir } = JSON.parse(out) as { pid: number; dir: string };
      assert.ok(pid > 0, `the child reported haproxy's pid (${out})`);
      const end = Date.now() + 5000;
      while (existsSync(`/proc/${pid}`) && !isZombie(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
      assert.ok(!existsSync(`/proc/${pid}`) || isZombie(pid), `haproxy (pid ${pid}) is gone after ${ending}`);
      // On exit, the folder goes too; SIGKILL gives no chance to remove it (the daemon dies anyway).
      if (ending.startsWith('process.exit')) assert.equal(existsSync(dir), false, 'the folder is removed at exit');
      else await rm(dir, { recursive: true, force: true });
    }
  } finally {
    await backend.close();
  }
});

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

async function listen(server: Server): Promise<{ url: string; close: () => Promise<void> }> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

function get(url: string, agent: Agent): Promise<{ body: string; localPort: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ body, localPort: req.socket?.localPort ?? 0 }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** psql with a connection URL (password included), as a client of the server would connect. */
function psqlUrl(url: string, sql: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('/usr/bin/psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', url, '-c', sql], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`psql: ${err.trim()}`))));
  });
}
