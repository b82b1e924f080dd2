// Random hex for ids and temp file names, read straight from the kernel's CSPRNG: node:crypto
// costs ~7 ms to load, a noticeable part of `berth run`'s start-up, which needs a container id.
import { closeSync, openSync, readSync } from 'node:fs';

export function randomHex(bytes: number): string {
  const buf = Buffer.allocUnsafe(bytes);
  const fd = openSync('/dev/urandom', 'r');
  try {
    for (let n = 0; n < bytes; ) n += readSync(fd, buf, n, bytes - n, null);
  } finally {
    closeSync(fd);
  }
  return buf.toString('hex');
}

/** A uniform integer in [min, max), by rejection sampling over 32 random bits. */
export function randomInt(min: number, max: number): number {
  const range = max - min;
  const limit = Math.floor(0x1_0000_0000 / range) * range;
  for (;;) {
    const x = parseInt(randomHex(4), 16);
    if (x < limit) return min + (x % range);
  }
}
