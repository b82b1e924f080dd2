// Typed wrapper over native/: where the berth-helper executable lives, and the addon's few calls.
// The addon is loaded lazily: `berth run` of an already-unpacked image never needs it.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

// dist/native/index.js → native/build/Release (node-gyp output, beside the sources).
const RELEASE_DIR = fileURLToPath(new URL('../../native/build/Release/', import.meta.url));

/** The single-threaded helper that creates (`run`) and enters (`exec`) containers; see helper.cc. */
export const helperPath: string = process.env.BERTH_HELPER ?? `${RELEASE_DIR}berth-helper`;

interface Addon {
  makeWhiteout(path: string): void;
  setXattr(path: string, name: string, value: Buffer): void;
  getXattr(path: string, name: string): Buffer | undefined;
}

let addon: Addon | undefined;
function load(): Addon {
  addon ??= createRequire(import.meta.url)(`${RELEASE_DIR}berth_native.node`) as Addon;
  return addon;
}

/** Creates an overlayfs whiteout (character device 0:0) at `path`. */
export function makeWhiteout(path: string): void {
  load().makeWhiteout(path);
}

/** lsetxattr(2); errors carry errno, syscall and path. */
export function setXattr(path: string, name: string, value: Buffer | string): void {
  load().setXattr(path, name, typeof value === 'string' ? Buffer.from(value) : value);
}

/** lgetxattr(2); undefined when the attribute is absent. */
export function getXattr(path: string, name: string): Buffer | undefined {
  return load().getXattr(path, name);
}
