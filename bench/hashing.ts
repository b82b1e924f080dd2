// SHA-256 / SHA-512 throughput of node:crypto (OpenSSL, SHA-NI where the CPU has it) against
// @noble/hashes (pure JS) over the same large buffer fed in 1 MiB chunks, as the blob path feeds
// its hash. Decides which implementation oci/digest.ts uses (see docs/performance.md).
//
//   npm run build && node dist/bench/hashing.js [--mib 256] [--chunk-kib 1024]
import { createHash, randomFillSync } from 'node:crypto';
import { sha256 as nobleSha256, sha512 as nobleSha512 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';

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

const cases = [
  { alg: 'sha256', node: () => { const h = createHash('sha256'); return { update: (b: Uint8Array) => h.update(b), digest: () => h.digest('hex') }; }, noble: () => nobleSha256.create() },
  { alg: 'sha512', node: () => { const h = createHash('sha512'); return { update: (b: Uint8Array) => h.update(b), digest: () => h.digest('hex') }; }, noble: () => nobleSha512.create() },
];

console.log(`hashing ${rounds * chunkBytes / 2 ** 20} MiB in ${chunkBytes / 1024} KiB chunks (node ${process.version}, ${process.arch})`);
console.log('algorithm  node:crypto MB/s  @noble/hashes MB/s  node/noble');
for (const c of cases) {
  // Warm-up: JIT compilation and OpenSSL initialisation are not part of the figure.
  run(c.node);
  c.noble().update(chunk);
  const n = run(c.node);
  const b = run(c.noble);
  if (n.hex !== b.hex) throw new Error(`${c.alg}: implementations disagree (${n.hex} vs ${b.hex})`);
  console.log(`${c.alg.padEnd(9)}  ${n.mbps.toFixed(0).padStart(16)}  ${b.mbps.toFixed(0).padStart(18)}  ${(n.mbps / b.mbps).toFixed(1).padStart(9)}×`);
}
