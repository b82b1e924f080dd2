// A container's writable layer (overlay upper dir) read as changes against its image: what
// `diff` lists and `commit` packs. Mount points berth creates itself (/dev, /proc, /sys,
// /etc/hostname, bind targets) are not changes, as docker keeps them in its init layer.
import { readdir } from 'node:fs/promises';
import { lstatSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
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
  // Metadata calls are synchronous: one quick syscall each, where a thread-pool round trip per
  // call dominated the walk of a layer of many small files (berth build packs RUN's changes here).
  const inLower = (rel: string): boolean => {
    for (const lower of config.helper.lower) {
      const st = lstatSync(join(lower, rel), { throwIfNoEntry: false });
      if (st) return !isWhiteout(st);
    }
    return false;
  };
  /** `lowerMayHave`: false below a folder new in the upper dir, whose content no lower layer has. */
  async function* walk(rel: string, lowerMayHave: boolean): AsyncGenerator<Change> {
    const entries = (await readdir(join(upper, rel))).sort();
    for (const name of entries) {
      const path = `${rel}/${name}`;
      const hostPath = join(upper, path);
      const stat = lstatSync(hostPath);
      if (isWhiteout(stat)) {
        yield { path, kind: 'D', hostPath, stat };
        continue;
      }
      const existed = lowerMayHave && inLower(path);
      if (mountPoints.has(path) && !existed) continue;
      yield { path, kind: existed ? 'C' : 'A', hostPath, stat };
      if (stat.isDirectory()) yield* walk(path, existed);
    }
  }
  yield* walk('', true);
}

/** One change as a layer tar entry (`berth build` packs RUN's changes from these). */
export interface ChangeEntry {
  /** Path inside the container without the leading '/'. */
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'whiteout' | 'opaque';
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
  size: number;
  linkname?: string;
  /** Where the content is on the host (the upper dir). */
  hostPath: string;
  /** A directory also in the image, with the same mode and owner: changed only by what is under it (or by mount points). */
  sameAsLower?: boolean;
  /** A file whose content is not in the upper dir (overlay metacopy): read it here instead. */
  dataPath?: string;
  /** file: its inode and link count in the upper dir (hard links made in the container). */
  ino?: number;
  nlink?: number;
}

/**
 * The container's changes as layer entries, parents before children: deletions as whiteouts,
 * an overlay-opaque directory followed by its opaque marker (image-spec/layer.md "Whiteouts").
 * Sockets, FIFOs and devices made inside a container are not carried into images.
 */
export async function* changeEntries(config: ContainerConfig): AsyncGenerator<ChangeEntry> {
  const [{ readlink }, { getXattr }] = await Promise.all([import('node:fs/promises'), import('../native/index.js')]);
  for await (const c of containerChanges(config)) {
    const st = c.stat;
    const common = { path: c.path.slice(1), uid: st.uid, gid: st.gid, mode: st.mode & 0o7777, mtime: st.mtime, size: 0, hostPath: c.hostPath };
    if (c.kind === 'D') yield { ...common, type: 'whiteout' };
    else if (st.isDirectory()) {
      const lower = c.kind === 'C' ? await lowerStat(config, c.path) : undefined;
      const same = lower !== undefined && lower.isDirectory() && lower.mode === st.mode && lower.uid === st.uid && lower.gid === st.gid;
      yield { ...common, type: 'directory', ...(same ? { sameAsLower: true } : {}) };
      if (getXattr(c.hostPath, 'trusted.overlay.opaque')?.toString() === 'y') yield { ...common, type: 'opaque' };
    } else if (st.isSymbolicLink()) yield { ...common, type: 'symlink', linkname: await readlink(c.hostPath) };
    else if (st.isFile()) {
      // overlayfs's metacopy (a chown/chmod copies up metadata only): the upper file holds no
      // data, which is still in a lower layer, at the path its redirect names or at its own.
      if (getXattr(c.hostPath, 'trusted.overlay.metacopy') !== undefined) {
        const redirect = getXattr(c.hostPath, 'trusted.overlay.redirect')?.toString();
        const from = redirect === undefined ? c.path : redirect.startsWith('/') ? redirect : join(dirname(c.path), redirect);
        const data = config.helper.lower.map((l) => join(l, from)).find((p) => lstatSync(p, { throwIfNoEntry: false })?.isFile());
        if (!data) throw new Error(`${c.path}: overlay metacopy without its data in a lower layer`);
        yield { ...common, type: 'file', size: st.size, dataPath: data };
      } else yield { ...common, type: 'file', size: st.size, ino: st.ino, nlink: st.nlink };
    }
  }
}

async function lowerStat(config: ContainerConfig, path: string): Promise<Stats | undefined> {
  for (const lower of config.helper.lower) {
    const st = lstatSync(join(lower, path), { throwIfNoEntry: false });
    if (st) return st;
  }
  return undefined;
}
