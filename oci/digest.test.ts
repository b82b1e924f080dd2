// digestOf's two hashes: a process that has not loaded node:crypto hashes small inputs with
// @noble/hashes (start-up, docs/performance.md); both must give node:crypto's digest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';

const DIGEST_MODULE = fileURLToPath(new URL('./digest.js', import.meta.url));

/** digestOf of each input (base64 or a string) in a fresh process, and whether it loaded node:crypto by then. */
function digestsInFreshProcess(inputs: Array<{ b64?: string; text?: string }>): { digests: string[]; loadedCrypto: boolean } {
  // An ES module: \`node -e\` in CommonJS mode loads node:crypto itself (for its globals).
  const script = `
    const { digestOf } = await import(${JSON.stringify(DIGEST_MODULE)});
    const { readFileSync } = await import('node:fs');
    const inputs = JSON.parse(readFileSync(0, 'utf8'));
    const digests = inputs.map((i) => digestOf(i.text ?? Buffer.from(i.b64, 'base64')));
    process.stdout.write(JSON.stringify({ digests, loadedCrypto: process.moduleLoadList.includes('NativeModule crypto') }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { input: JSON.stringify(inputs), encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { digests: string[]; loadedCrypto: boolean };
}

const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

test('small inputs are hashed without node:crypto and give its digests (block boundaries, strings with non-ASCII, up to 16 KiB)', () => {
  const edges = [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 16383, 16384].map((n) => Buffer.alloc(n, n & 0xff));
  const random = fc.sample(fc.uint8Array({ minLength: 0, maxLength: 16 << 10 }), 150).map((a) => Buffer.from(a));
  const texts = fc.sample(fc.string({ unit: 'grapheme', maxLength: 300 }), 50);
  const inputs = [...edges, ...random].map((b) => ({ b64: b.toString('base64') }));
  const out = digestsInFreshProcess([...inputs, ...texts.map((text) => ({ text }))]);
  assert.equal(out.loadedCrypto, false, 'no input of at most 16 KiB loaded node:crypto');
  assert.deepEqual(out.digests, [...edges, ...random].map(sha256).concat(texts.map(sha256)));
});

test('a larger input loads node:crypto, and from then on every input is hashed by it', () => {
  const big = Buffer.alloc((16 << 10) + 1, 3);
  const small = Buffer.from('{"schemaVersion":2}');
  const out = digestsInFreshProcess([{ b64: big.toString('base64') }, { b64: small.toString('base64') }]);
  assert.equal(out.loadedCrypto, true);
  assert.deepEqual(out.digests, [sha256(big), sha256(small)]);
});
