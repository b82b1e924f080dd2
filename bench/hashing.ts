// SHA-256 / SHA-512 throughput of node:crypto (OpenSSL, SHA-NI where the CPU has it) against
// @noble/hashes (pure JS) and hash-wasm (whose state can be saved: the running digest of S3 upload
// sessions, storage/running-hash.ts) over the same large buffer fed in 1 MiB chunks, as the blob
// path feeds its hash. Decides which implementation oci/digest.ts and the upload sessions use
// (see docs/performance.md and docs/scale-out.md).
//
//   npm run build && node dist/bench/hashing.js [--mib 256] [--chunk-kib 1024]
import { createHash, randomFillSync } from 'node:crypto';
import { sha256 as nobleSha256, sha512 as nobleSha512 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { createSHA256, createSHA512 } from 'hash-wasm';

interface Incremental {
  update(b: Uint8Array): unknown;
  digest(): Uint8Array | string;
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
}

const totalMiB = arg('mib', 256);
const chunkBytes = arg('chunk-kib', 1024) * 1024;
// One chunk reused: the figure is hashing speed, not memory bandwidth of a 256 MiB buffer.
const chunk = randomFillSync(Buffer.alloc(chunkBytes));
const rounds = Math.ceil((totalMiB * 1024 * 1024) / chunkBytes);

function run(make: () => Incremental): { mbps: number; hex: string } {
  const h = make();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) h.update(chunk);
  const out = h.digest();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return { mbps: (rounds * chunkBytes) / 1e6 / s, hex: typeof out === 'string' ? out : bytesToHex(out) };
}

const wasm256 = await createSHA256();
const wasm512 = await createSHA512();
const wasm = (h: typeof wasm256) => (): Incremental => {
  h.init();
  return { update: (b: Uint8Array) => h.update(b), digest: () => h.digest('hex') };
};

const cases = [
  { alg: 'sha256', node: () => { const h = createHash('sha256'); return { update: (b: Uint8Array) => h.update(b), digest: () => h.digest('hex') }; }, noble: () => nobleSha256.create(), wasm: wasm(wasm256) },
  { alg: 'sha512', node: () => { const h = createHash('sha512'); return { update: (b: Uint8Array) => h.update(b), digest: () => h.digest('hex') }; }, noble: () => nobleSha512.create(), wasm: wasm(wasm512) },
];

console.log(`hashing ${rounds * chunkBytes / 2 ** 20} MiB in ${chunkBytes / 1024} KiB chunks (node ${process.version}, ${process.arch})`);
console.log('algorithm  node:crypto MB/s  @noble/hashes MB/s  hash-wasm MB/s  node/noble  node/wasm');
for (const c of cases) {
  // Warm-up: JIT compilation and OpenSSL initialisation are not part of the figure.
  run(c.node);
  c.noble().update(chunk);
  run(c.wasm);
  const n = run(c.node);
  const b = run(c.noble);
  const w = run(c.wasm);
  if (n.hex !== b.hex || n.hex !== w.hex) throw new Error(`${c.alg}: implementations disagree (${n.hex}, ${b.hex}, ${w.hex})`);
  console.log(`${c.alg.padEnd(9)}  ${n.mbps.toFixed(0).padStart(16)}  ${b.mbps.toFixed(0).padStart(18)}  ${w.mbps.toFixed(0).padStart(14)}  ${(n.mbps / b.mbps).toFixed(1).padStart(9)}×  ${(n.mbps / w.mbps).toFixed(1).padStart(8)}×`);
}
// What a session record carries and what saving it costs per acknowledged append.
wasm256.init();
wasm256.update(chunk);
const t0 = process.hrtime.bigint();
let state = wasm256.save();
for (let i = 0; i < 10_000; i++) state = wasm256.save();
const saveUs = Number(process.hrtime.bigint() - t0) / 1e3 / 10_001;
console.log(`hash-wasm sha256 state: ${state.length} bytes, save ${saveUs.toFixed(2)} µs`);
