// COPY/ADD `--chown` and `--chmod`. Owner names are looked up in the stage's own /etc/passwd and
// /etc/group (not the host's), as BuildKit does: `user` alone takes the user's primary group, a
// numeric uid alone takes the same number as gid (Dockerfile reference, COPY --chown).
import { readFile } from 'node:fs/promises';
import type { LayeredTree } from './layered-tree.js';

export interface Owner {
  uid: number;
  gid: number;
}

export class ChownError extends Error {
  constructor(detail: string) {
    super(`unable to convert uid/gid chown string to host mapping: ${detail}`);
  }
}

async function readInTree(tree: LayeredTree, path: string): Promise<string | undefined> {
  const { node } = await tree.resolve(path).catch(() => ({ node: undefined }));
  if (!node?.stat.isFile()) return undefined;
  return readFile(node.hostPath, 'utf8');
}

/** Fields of the line of a passwd/group file whose first field is `name`. */
function lookup(text: string | undefined, name: string): string[] | undefined {
  for (const line of (text ?? '').split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 3) return f;
  }
  return undefined;
}

const NUMERIC = /^\d+$/;

/** Resolves `--chown=user[:group]` against the stage filesystem `rootfs`. */
export async function resolveChown(spec: string, rootfs: LayeredTree): Promise<Owner> {
  const [user = '', group, ...extra] = spec.split(':');
  if (user === '' || extra.length > 0 || group === '') throw new ChownError(`invalid chown string: ${spec}`);
  let uid: number;
  let gid: number;
  if (NUMERIC.test(user)) {
    uid = Number(user);
    gid = uid;
  } else {
    const f = lookup(await readInTree(rootfs, '/etc/passwd'), user);
    if (!f || !NUMERIC.test(f[2] ?? '') || !NUMERIC.test(f[3] ?? '')) throw new ChownError(`can't find uid for user ${user}: no such user: ${user}`);
    uid = Number(f[2]);
    gid = Number(f[3]);
  }
  if (group !== undefined) {
    if (NUMERIC.test(group)) gid = Number(group);
    else {
      const f = lookup(await readInTree(rootfs, '/etc/group'), group);
      if (!f || !NUMERIC.test(f[2] ?? '')) throw new ChownError(`can't find gid for group ${group}: no such group: ${group}`);
      gid = Number(f[2]);
    }
  }
  return { uid, gid };
}

/** A `--chmod` value as a function of an entry's current mode: octal, or symbolic (`u+x,go-w`, `a=rX`). */
export type ModeChange = (mode: number, isDir: boolean) => number;

export function parseChmod(spec: string): ModeChange {
  if (/^[0-7]{1,4}$/.test(spec)) {
    const m = parseInt(spec, 8);
    return () => m;
  }
  const clauses = spec.split(',').map((c) => {
    const m = /^([ugoa]*)([-+=])([rwxXst]*)$/.exec(c);
    if (!m) throw new Error(`invalid chmod value ${JSON.stringify(spec)}: expected an octal mode or a symbolic one such as u+x,go-w`);
    return { who: m[1] || 'a', op: m[2]!, perms: m[3]! };
  });
  return (mode, isDir) => {
    let out = mode & 0o7777;
    for (const { who, op, perms } of clauses) {
      let mask = 0;
      const users = who.includes('a') ? 'ugo' : who;
      for (const u of users) {
        const shift = u === 'u' ? 6 : u === 'g' ? 3 : 0;
        for (const p of perms) {
          if (p === 'r') mask |= 4 << shift;
          else if (p === 'w') mask |= 2 << shift;
          else if (p === 'x' || (p === 'X' && (isDir || (mode & 0o111) !== 0))) mask |= 1 << shift;
          else if (p === 's' && u !== 'o') mask |= u === 'u' ? 0o4000 : 0o2000;
          else if (p === 't' && u === 'o') mask |= 0o1000;
        }
      }
      if (op === '+') out |= mask;
      else if (op === '-') out &= ~mask;
      else {
        let clear = 0;
        for (const u of users) clear |= u === 'u' ? 0o4700 : u === 'g' ? 0o2070 : 0o1007;
        out = (out & ~clear) | mask;
      }
    }
    return out;
  };
}
