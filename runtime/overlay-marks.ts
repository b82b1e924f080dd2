// How an unpacked layer directory (runtime/layer-unpack.ts) marks deletions for overlayfs:
// a whiteout is a character device 0:0, an opaque directory carries trusted.overlay.opaque=y
// (kernel Documentation/filesystems/overlayfs.rst "whiteouts and opaque directories"). Readers of
// layer directories outside a mount (berth build's COPY --from) interpret the same marks.
import type { Stats } from 'node:fs';
import { getXattr } from '../native/index.js';

export function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

export function isOpaqueDir(path: string): boolean {
  return getXattr(path, 'trusted.overlay.opaque')?.toString() === 'y';
}
