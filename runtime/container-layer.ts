// A container's writable layer (overlay upper dir) read as changes against its image: what
// `diff` lists and `commit` packs. Mount points berth creates itself (/dev, /proc, /sys,
// /etc/hostname, bind targets) are not changes, as docker keeps them in its init layer.
import { lstat, readdir } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import type { ContainerConfig } from './container-store.js';

export interface Change {
  /** Absolute path inside the container, e.g. /etc/passwd. */
  path: string;
  kind: 'A' | 'C' | 'D';
  /** The entry in the upper dir (for D: the whiteout device). */
  hostPath: string;
  stat: Stats;
}

const isWhiteout = (st: Stats) => st.isCharacterDevice() && st.rdev === 0;

export async function* containerChanges(config: ContainerConfig): AsyncGenerator<Change> {
  const upper = config.helper.upper;
  const mountPoints = new Set(['/dev', '/proc', '/sys', ...config.helper.files.map((f) => f.target), ...config.helper.mounts.map((m) => m.target)]);
  const inLower = async (rel: string): Promise<boolean> => {
    for (const lower of config.helper.lower) {
      const st = await lstat(join(lower, rel)).catch(() => undefined);
      if (st) return !isWhiteout(st);
    }
    return false;
  };
  async function* walk(rel: string): AsyncGenerator<Change> {
    const entries = (await readdir(join(upper, rel))).sort();
    for (const name of entries) {
      const path = `${rel}/${name}`;
      const hostPath = join(upper, path);
      const stat = await lstat(hostPath);
      if (isWhiteout(stat)) {
        yield { path, kind: 'D', hostPath, stat };
        continue;
      }
      const existed = await inLower(path);
      if (mountPoints.has(path) && !existed) continue;
      yield { path, kind: existed ? 'C' : 'A', hostPath, stat };
      if (stat.isDirectory()) yield* walk(path);
    }
  }
  yield* walk('');
}
