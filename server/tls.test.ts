// HTTPS: --tls-self-signed makes a usable localhost certificate; a replaced certificate is picked up
// without a restart; skopeo talks to the registry verifying the certificate.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import { request } from 'node:https';
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startTestRegistry, type TestRegistry } from './testing.js';
import { ensureSelfSigned } from './tls.js';
import { buildTestImage, hostOf, skopeoCopy } from './test-images.js';

let reg: TestRegistry;
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-tls-'));
  reg = await startTestRegistry({ tls: { cert: '', key: '', selfSigned: true } });
});

after(async () => {
  await reg?.destroy();
  await rm(dir, { recursive: true, force: true });
});

function servedFingerprint(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: reg.port, rejectUnauthorized: false }, () => {
      const fp = s.getPeerX509Certificate()!.fingerprint256;
      s.end();
      resolve(fp);
    });
    s.on('error', reject);
  });
}

function get(path: string, ca?: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: reg.port, path, ...(ca ? { ca } : {}) }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

test('the self-signed certificate covers 127.0.0.1 and verifies against itself, and only against itself', async () => {
  assert.match(reg.url, /^https:\/\//);
  const ca = await readFile(join(reg.dataDir, 'tls', 'self-signed.crt'));
  assert.ok(new X509Certificate(ca).checkIP('127.0.0.1'));
  assert.equal(await get('/v2/', ca), 200);
  await assert.rejects(get('/v2/'), /self-signed|self signed/);
});

test('skopeo pushes over verified HTTPS with the certificate in its cert dir', async () => {
  const certDir = join(dir, 'certs');
  await import('node:fs/promises').then((fs) => fs.mkdir(certDir));
  await copyFile(join(reg.dataDir, 'tls', 'self-signed.crt'), join(certDir, 'ca.crt'));
  const img = await buildTestImage({ randomBytes: 1024 });
  await skopeoCopy(img.ref, `docker://${hostOf(reg.url)}/tls/app:v1`, { destCertDir: certDir });
  await assert.rejects(skopeoCopy(img.ref, `docker://${hostOf(reg.url)}/tls/app:v2`, { destCertDir: join(dir, 'empty') }));
});

test('a replaced certificate is served without a restart', async () => {
  const before = await servedFingerprint();
  const next = { cert: join(dir, 'new.crt'), key: join(dir, 'new.key') };
  await ensureSelfSigned(next.cert, next.key, pino({ level: 'silent' }));
  const want = new X509Certificate(await readFile(next.cert)).fingerprint256;
  assert.notEqual(want, before);
  // Replaced the way certificate tools do it: new files renamed over the old ones.
  await rename(next.key, join(reg.dataDir, 'tls', 'self-signed.key'));
  await rename(next.cert, join(reg.dataDir, 'tls', 'self-signed.crt'));
  let served = before;
  for (let i = 0; i < 100 && served !== want; i++) {
    await new Promise((r) => setTimeout(r, 100));
    served = await servedFingerprint();
  }
  assert.equal(served, want);
});
