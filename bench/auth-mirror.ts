// Benchmarks of issue 5: what authentication costs per request, and what mirror mode costs and
// saves. Everything runs on loopback and stops by itself.
//   node dist/bench/auth-mirror.js            (BENCH_MIRROR_MB=300 BENCH_REQUESTS=3000 by default)
// Prints requests/s for manifest GETs unauthenticated, with Basic (htpasswd) and with a Bearer
// token, token issues/s, and cold/warm pull throughput through a Berth mirror and through the
// reference registry in proxy mode, and the upstream downloads 16 concurrent cold clients cause.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool, request } from 'undici';
import { startTestRegistry, type TestRegistry } from '../server/testing.js';
import { CountingProxy } from '../server/testing-upstream.js';
import { DEFAULT_AUTH } from '../server/auth/config.js';
import { hashPassword } from '../server/auth/htpasswd.js';

const MB = Number(process.env.BENCH_MIRROR_MB ?? 300);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 3000);
const CONCURRENCY = 16;

async function rate(url: string, path: string, headers: Record<string, string>, n = REQUESTS): Promise<number> {
  const pool = new Pool(url, { connections: CONCURRENCY });
  let next = 0;
  const worker = async () => {
    while (next++ < n) {
      const r = await pool.request({ method: 'GET', path, headers });
      await r.body.dump();
      if (r.statusCode !== 200) throw new Error(`${path}: HTTP ${r.statusCode}`);
    }
  };
  await worker(); // warm-up request outside the clock
  next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  await pool.close();
  return n / s;
}

async function pushBlob(url: string, name: string, body: Buffer | string, digest: string, headers: Record<string, string> = {}): Promise<void> {
  const r = await request(`${url}/v2/${name}/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', ...headers },
    body: typeof body === 'string' ? createReadStream(body) : body,
  });
  await r.body.dump();
  if (r.statusCode !== 201) throw new Error(`push blob: HTTP ${r.statusCode}`);
}

async function pushSmallImage(url: string, name: string, headers: Record<string, string> = {}): Promise<void> {
  const config = Buffer.from('{}');
  const cd = `sha256:${createHash('sha256').update(config).digest('hex')}`;
  await pushBlob(url, name, config, cd, headers);
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cd, size: 2 }, layers: [] });
  const r = await request(`${url}/v2/${name}/manifests/v1`, { method: 'PUT', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json', ...headers }, body: manifest });
  await r.body.dump();
  if (r.statusCode !== 201) throw new Error(`push manifest: HTTP ${r.statusCode}`);
}

async function timedGet(url: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await request(url);
  let n = 0;
  for await (const c of r.body) n += (c as Buffer).length;
  if (r.statusCode !== 200) throw new Error(`${url}: HTTP ${r.statusCode}`);
  return n / (Number(process.hrtime.bigint() - t0) / 1e9) / 2 ** 20;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

async function referenceProxy(dir: string, upstream: string): Promise<{ url: string; stop(): void }> {
  const port = await freePort();
  const cfg = join(dir, 'ref-proxy.yml');
  await writeFile(cfg, ['version: 0.1', 'log: {level: error}', `storage: {filesystem: {rootdirectory: ${join(dir, 'ref-data')}}}`, `http: {addr: 127.0.0.1:${port}}`, `proxy: {remoteurl: ${upstream}}`].join('\n'));
  const child = spawn('/usr/bin/docker-registry', ['serve', cfg], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  await waitUp(url);
  return { url, stop: () => void child.kill() };
}

async function waitUp(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await request(`${url}/v2/`).then((r) => (r.body.dump(), r.statusCode === 200), () => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not come up`);
}

async function berthMirror(dir: string, upstream: string): Promise<{ url: string; stop(): void }> {
  const port = await freePort();
  const berth = new URL('../bin/berth.js', import.meta.url).pathname;
  const child = spawn(process.execPath, [berth, 'serve', '--listen', `127.0.0.1:${port}`, '--data', join(dir, 'berth-mirror'), '--log-level', 'silent', '--proxy-remote-url', upstream], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  await waitUp(url);
  return { url, stop: () => void child.kill() };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-am-'));
  const regs: TestRegistry[] = [];
  const stops: Array<() => unknown> = [];
  try {
    // ---- authentication cost ------------------------------------------------------------------
    const users = join(dir, 'users');
    await writeFile(users, `bench:${await hashPassword('bench-pw')}\n`);
    const basic = { authorization: `Basic ${Buffer.from('bench:bench-pw').toString('base64')}` };
    const open = await startTestRegistry();
    const ht = await startTestRegistry({ auth: { ...DEFAULT_AUTH, mode: 'htpasswd', htpasswd: users } });
    const tok = await startTestRegistry({ auth: { ...DEFAULT_AUTH, mode: 'token', htpasswd: users } });
    regs.push(open, ht, tok);
    await pushSmallImage(open.url, 'bench/app');
    await pushSmallImage(ht.url, 'bench/app', basic);
    const scope = 'repository:bench/app:pull,push';
    const tr = await request(`${tok.url}/token?service=berth&scope=${scope}`, { headers: basic });
    const token = ((await tr.body.json()) as { token: string }).token;
    await pushSmallImage(tok.url, 'bench/app', { authorization: `Bearer ${token}` });
    const path = '/v2/bench/app/manifests/v1';
    // The machine is shared: rounds interleave the variants and the best of each is kept.
    let none = 0;
    let withBasic = 0;
    let withToken = 0;
    let issues = 0;
    for (let round = 0; round < 3; round++) {
      none = Math.max(none, await rate(open.url, path, {}));
      withBasic = Math.max(withBasic, await rate(ht.url, path, basic));
      withToken = Math.max(withToken, await rate(tok.url, path, { authorization: `Bearer ${token}` }));
      issues = Math.max(issues, await rate(tok.url, `/token?service=berth&scope=${scope}`, basic));
    }
    console.log(`manifest GET, ${CONCURRENCY} connections, ${REQUESTS} requests, best of 3 rounds:`);
    console.log(`  no auth          ${none.toFixed(0)} req/s`);
    console.log(`  htpasswd (Basic) ${withBasic.toFixed(0)} req/s  (${((withBasic / none) * 100).toFixed(0)}% of no auth)`);
    console.log(`  token (Bearer)   ${withToken.toFixed(0)} req/s  (${((withToken / none) * 100).toFixed(0)}% of no auth)`);
    console.log(`  token issue      ${issues.toFixed(0)} tokens/s`);

    // ---- mirror: cold vs warm, Berth and the reference registry ----------------------------------
    const file = join(dir, 'big.bin');
    const hash = createHash('sha256');
    await new Promise<void>((resolve, reject) => {
      const out = createWriteStream(file);
      out.on('error', reject);
      let left = MB;
      const write = () => {
        while (left > 0) {
          const chunk = randomBytes(1 << 20);
          hash.update(chunk);
          left--;
          if (!out.write(chunk)) return void out.once('drain', write);
        }
        out.end(resolve);
      };
      write();
    });
    const digest = `sha256:${hash.digest('hex')}`;
    await pushBlob(open.url, 'bench/big', file, digest);
    await rm(file);
    const counting = await new CountingProxy(open.url).start();
    stops.push(() => counting.stop());
    // The mirror runs in its own process, as the reference registry does: in this one it would share
    // a thread with the upstream, the counting proxy and the client.
    const mirror = await berthMirror(dir, counting.url);
    stops.push(mirror.stop);
    const ref = await referenceProxy(dir, counting.url);
    stops.push(ref.stop);
    const blobPath = `/v2/bench/big/blobs/${digest}`;
    const direct = await timedGet(open.url + blobPath);
    const coldBerth = await timedGet(mirror.url + blobPath);
    const warmBerth = await timedGet(mirror.url + blobPath);
    const coldRef = await timedGet(ref.url + blobPath);
    const warmRef = await timedGet(ref.url + blobPath);
    console.log(`\n${MB} MB blob pull (MiB/s):`);
    console.log(`  upstream direct           ${direct.toFixed(0)}`);
    console.log(`  Berth mirror      cold ${coldBerth.toFixed(0)}  warm ${warmBerth.toFixed(0)}`);
    console.log(`  reference proxy   cold ${coldRef.toFixed(0)}  warm ${warmRef.toFixed(0)}`);

    // ---- 16 concurrent cold clients ---------------------------------------------------------------
    const small = randomBytes(32 << 20);
    const sd = `sha256:${createHash('sha256').update(small).digest('hex')}`;
    await pushBlob(open.url, 'bench/burst', small, sd);
    const burst = `/v2/bench/burst/blobs/${sd}`;
    const many = (base: string) => Promise.all(Array.from({ length: 16 }, () => request(base + burst).then((r) => r.body.arrayBuffer())));
    await many(mirror.url);
    const berthFetches = counting.count(burst);
    await many(ref.url);
    const refFetches = counting.count(burst) - berthFetches;
    console.log(`\n16 concurrent clients, one uncached 32 MiB blob: upstream downloads: Berth ${berthFetches}, reference proxy ${refFetches}`);
  } finally {
    for (const s of stops) await s();
    for (const r of regs) await r.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
