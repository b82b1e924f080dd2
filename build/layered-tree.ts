// A read-only view of a filesystem made of unpacked layer directories (topmost first), as
// overlayfs would show them but read from the host without a mount: a whiteout hides what lower
// layers hold under its name, an opaque directory hides the lower layers' content of that
// directory (runtime/overlay-marks.ts). The build context is the same view over one directory
// with no marks. Paths are resolved as docker's FollowSymlinkInScope does: a symlink's target,
// absolute or with `..`, never leaves the view's root.
import { lstatSync, type Dirent, type Stats } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isOpaqueDir, isWhiteout } from '../runtime/overlay-marks.js';
import { readlink } from 'node:fs/promises';

export interface TreeNode {
  /** Clean path inside the tree, without leading slash ('' for the root). */
  rel: string;
  /** Where the entry's bytes are on the host. */
  hostPath: string;
  stat: Stats;
  /** For a directory: its host directories, topmost first, that make up its content. */
  dirs?: string[];
}

export class TreeError extends Error {
  constructor(message: string, readonly code: 'ENOENT' | 'ENOTDIR' | 'ELOOP') {
    super(message);
  }
}

const MAX_LINKS = 255; // Linux's MAXSYMLINKS is 40; docker's FollowSymlinkInScope allows 255

export class LayeredTree {
  /**
   * `layers`: host directories, topmost first. `marks`: whether whiteouts and opaque directories
   * are interpreted (layer directories) or taken as plain entries (a build context).
   */
  constructor(readonly layers: readonly string[], readonly marks = true) {}

  root(): TreeNode | undefined {
    if (this.layers.length === 0) return undefined;
    return { rel: '', hostPath: this.layers[0]!, stat: ROOT_STAT, dirs: [...this.layers] };
  }

  /** The entry `name` of directory `dir`, not following a symlink; undefined when absent. */
  async child(dir: TreeNode, name: string): Promise<TreeNode | undefined> {
    const dirs = dir.dirs ?? [];
    const rel = dir.rel === '' ? name : `${dir.rel}/${name}`;
    for (let i = 0; i < dirs.length; i++) {
      const hostPath = join(dirs[i]!, name);
      // Synchronous: one quick syscall per entry; a thread-pool round trip each would cost more
      // than the call over a context of many small files.
      const st = lstatSync(hostPath, { throwIfNoEntry: false });
      if (!st) continue;
      if (this.marks && isWhiteout(st)) return undefined;
      const node: TreeNode = { rel, hostPath, stat: st };
      if (st.isDirectory()) node.dirs = await this.lowerDirs(hostPath, dirs.slice(i + 1), name);
      return node;
    }
    return undefined;
  }

  /** The host directories making up a directory: `top`, then lower ones until one hides the rest. */
  private async lowerDirs(top: string, below: string[], name: string): Promise<string[]> {
    const out = [top];
    if (!this.marks || below.length === 0 || isOpaqueDir(top)) return out;
    for (const d of below) {
      const p = join(d, name);
      const st = lstatSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      if (!st.isDirectory()) break; // a whiteout or a file there: nothing lower shows through
      out.push(p);
      if (isOpaqueDir(p)) break;
    }
    return out;
  }

  /**
   * The entries of a directory, sorted by name (byte order, as Go's filepath.Walk), whiteouts
   * and the names they hide left out. Directory-sized memory: one listing per layer at a time.
   */
  async list(dir: TreeNode): Promise<string[]> {
    const dirs = dir.dirs ?? [];
    if (dirs.length === 1 && !this.marks) return sortNames(await readdir(dirs[0]!));
    const seen = new Set<string>();
    const hidden = new Set<string>();
    for (const d of dirs) {
      const entries: Dirent[] = await readdir(d, { withFileTypes: true });
      for (const e of entries) {
        if (seen.has(e.name) || hidden.has(e.name)) continue;
        if (this.marks && e.isCharacterDevice()) {
          const st = lstatSync(join(d, e.name));
          if (isWhiteout(st)) {
            hidden.add(e.name);
            continue;
          }
        }
        seen.add(e.name);
      }
    }
    return sortNames([...seen]);
  }

  /**
   * Resolves `path` (relative to the root; `/` and `..` never leave it) following symlinks in
   * scope; the last component is followed only when `followLast`. Returns the node and its clean
   * resolved path, or `missing` with the resolved path the caller would create (the first absent
   * component and the rest taken literally, as FollowSymlinkInScope leaves them).
   */
  async resolve(path: string, followLast = true): Promise<{ node?: TreeNode; rel: string }> {
    const root = this.root();
    let todo = splitPath(path);
    let stack: TreeNode[] = [];
    let links = 0;
    if (!root) return { rel: todo.join('/') };
    while (todo.length > 0) {
      const name = todo.shift()!;
      if (name === '..') {
        stack.pop();
        continue;
      }
      const cur = stack[stack.length - 1] ?? root;
      if (!cur.stat.isDirectory()) throw new TreeError(`not a directory: /${cur.rel}`, 'ENOTDIR');
      const next = await this.child(cur, name);
      if (!next) {
        return { rel: normalizeRest([...splitPath(cur.rel), name, ...todo]).join('/') };
      }
      if (next.stat.isSymbolicLink() && (todo.length > 0 || followLast)) {
        if (++links > MAX_LINKS) throw new TreeError(`too many levels of symbolic links: /${next.rel}`, 'ELOOP');
        const target = await readlink(next.hostPath);
        if (target.startsWith('/')) stack = [];
        todo = [...splitPath(target), ...todo];
        continue;
      }
      stack.push(next);
    }
    const node = stack[stack.length - 1] ?? root;
    return { node, rel: node.rel };
  }
}

const ROOT_STAT = {
  isDirectory: () => true,
  isFile: () => false,
  isSymbolicLink: () => false,
  mode: 0o40755,
  uid: 0,
  gid: 0,
  size: 0,
  mtime: new Date(0),
} as unknown as Stats;

/** Path components with `.` and empty ones dropped (`..` kept for the resolver). */
export function splitPath(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/** Removes `..` from a list of components that will be created (no symlink can intervene). */
function normalizeRest(parts: string[]): string[] {
  const out: string[] = [];
  for (const p of parts) {
    if (p === '..') out.pop();
    else out.push(p);
  }
  return out;
}

/**
 * Byte order of the UTF-8 names (Go's sort.Strings). UTF-16 code unit order is the same unless
 * a name holds a surrogate pair, so the slower comparison runs only then.
 */
export function sortNames(names: string[]): string[] {
  if (!names.some((n) => /[\uD800-\uDFFF]/.test(n))) return names.sort();
  return names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}
