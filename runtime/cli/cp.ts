// berth cp and berth export, with docker's semantics (docker cp's "SRC_PATH/DEST_PATH" rules).
// The container side always runs chrooted in the container (container-fs.ts); the host side
// writes a tar from the container without following any symlink it contains.
import { closeSync, constants, createReadStream, createWriteStream, fsyncSync, linkSync, lstatSync, mkdirSync, openSync, type Stats } from 'node:fs';
import { chmod, lstat, readdir, readlink, rename, rm, stat, symlink, utimes } from 'node:fs/promises';
import { basename, dirname, join, posix } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { inRootfs, statInContainer } from '../container-fs.js';
import { ContainerStore, type ContainerConfig, type ContainerState } from '../container-store.js';
import { safeComponents } from '../layer-unpack.js';
import { RuntimeLayout } from '../runtime-layout.js';

const store = new ContainerStore(new RuntimeLayout());

class CopyError extends Error {}

/** `NAME:PATH` → container and path; a local path (`./a:b` or `/x:y`) is not a container (docker's rule). */
function splitContainerPath(arg: string): { container?: string; path: string } {
  const i = arg.indexOf(':');
  if (i <= 0 || arg.startsWith('.') || arg.startsWith('/')) return { path: arg };
  return { container: arg.slice(0, i), path: arg.slice(i + 1) };
}

/** The path's last component, trailing slashes and a final `/.` ignored. */
function lastName(p: string): string {
  return posix.basename(p.replace(/\/\.$/, '').replace(/\/+$/, '')) || '/';
}

async function finishTar(cmd: ReturnType<typeof inRootfs>, what: string): Promise<void> {
  const { code, stderr } = await cmd.done;
  if (code !== 0) {
    if (/No such file|can't stat|can't change directory/i.test(stderr)) throw new CopyError(`Could not find the file ${what} in container`);
    throw new CopyError(stderr || `tar in the container exited with ${code}`);
  }
}

// ---- container → host ----------------------------------------------------------------------

/** mkdir -p of `parts` below `base`, refusing to go through a symlink or non-directory. */
function ensureParents(base: string, parts: string[]): string {
  let dir = base;
  for (const p of parts) {
    dir = join(dir, p);
    const st = lstatOrUndefined(dir);
    if (!st) mkdirSync(dir, { mode: 0o755 });
    else if (!st.isDirectory()) throw new CopyError(`refusing to write below ${dir}: not a directory`);
  }
  return dir;
}

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

async function copyOut(config: ContainerConfig, state: ContainerState, src: string, dest: string): Promise<void> {
  const contents = src.endsWith('/.');
  const clean = posix.normalize(src.replace(/\/\.$/, '/')).replace(/(.)\/+$/, '$1');
  const args = contents || clean === '/' ? ['-C', clean, '.'] : ['-C', posix.dirname(clean), posix.basename(clean)];
  const cmd = inRootfs(config, state, ['tar', '-c', '--numeric-owner', '-f', '-', ...args]);
  const out = cmd.child.stdout as Readable;
  if (dest === '-') {
    await pipeline(out, process.stdout, { end: false });
    return finishTar(cmd, src);
  }
  const strip = contents || clean === '/' ? 0 : 1;
  const extract = tar.extract();
  const extracting = (async () => {
    let base: string | undefined;
    const dirTimes: { path: string; mtime: Date }[] = [];
    for await (const entry of extract) {
      const h = entry.header;
      // `-C dir name` entries start with `name`; `-C dir .` entries with `./`, which safeComponents drops
      const rest = safeComponents(h.name).slice(strip);
      if (base === undefined) {
        const isDir = h.type === 'directory';
        const destStat = await stat(dest).catch(() => undefined);
        if (!isDir && src.endsWith('/')) throw new CopyError(`${src}: not a directory`);
        if (contents || (isDir && !destStat)) {
          if (destStat && !destStat.isDirectory()) throw new CopyError(`cannot copy a directory to a file: ${dest}`);
          base = contents && destStat ? dest : dest.replace(/\/+$/, '') || '/';
        } else if (destStat?.isDirectory()) base = join(dest, lastName(clean));
        else if (isDir) throw new CopyError(`cannot copy a directory to a file: ${dest}`);
        else if (dest.endsWith('/')) throw new CopyError(`destination directory ${dest} does not exist`);
        else base = dest;
      }
      const target = rest.length ? join(ensureParents(base, rest.slice(0, -1)), rest[rest.length - 1]!) : base;
      const existing = lstatOrUndefined(target);
      const mode = (h.mode ?? 0o644) & 0o1777; // no setuid/setgid files on the host
      if (h.type === 'directory') {
        if (existing && !existing.isDirectory()) await rm(target, { recursive: true });
        if (!existing?.isDirectory()) mkdirSync(target, { mode: 0o700 });
        await chmod(target, mode);
        if (h.mtime) dirTimes.push({ path: target, mtime: h.mtime });
      } else {
        if (existing) await rm(target, { recursive: true });
        if (h.type === 'file' || h.type === 'contiguous-file') {
          // O_EXCL|O_NOFOLLOW: never writes through a link, even one racing in
          const fd = openSync(target, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
          await pipeline(entry, createWriteStream('', { fd }));
          await chmod(target, mode);
          if (h.mtime) await utimes(target, h.mtime, h.mtime);
          continue;
        } else if (h.type === 'symlink') {
          await symlink(h.linkname ?? '', target);
        } else if (h.type === 'link') {
          const linkRest = safeComponents(h.linkname ?? '').slice(strip);
          const from = join(ensureParents(base, linkRest.slice(0, -1)), linkRest[linkRest.length - 1] ?? '');
          linkSync(from, target); // link(2) does not follow a symlink at `from`
        }
        // devices, FIFOs and sockets are not copied out
      }
      entry.resume();
    }
    for (const d of dirTimes.reverse()) await utimes(d.path, d.mtime, d.mtime);
    if (base === undefined) throw new CopyError(`Could not find the file ${src} in container`);
  })();
  await Promise.all([pipeline(out, extract).catch(() => undefined), extracting.catch(async (err) => {
    cmd.child.kill();
    throw err;
  })]);
  await finishTar(cmd, src);
}

// ---- host → container ----------------------------------------------------------------------

/** Streams the host tree at `src` into `pack` as entries named `top/…` (`.` for contents only). */
async function packHost(pack: tar.Pack, src: string, top: string, contents: boolean): Promise<void> {
  const add = (header: Parameters<tar.Pack['entry']>[0], body?: Readable) =>
    new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      if (body) pipeline(body, pack.entry(header, done)).catch(reject);
      else pack.entry(header, done);
    });
  async function walk(hostPath: string, name: string, st: Stats): Promise<void> {
    // docker cp into a container: owned by root, permissions and times kept
    const common = { uid: 0, gid: 0, mode: st.mode & 0o7777, mtime: st.mtime };
    if (st.isDirectory()) {
      if (name !== '.') await add({ name: `${name}/`, type: 'directory', ...common });
      for (const e of (await readdir(hostPath)).sort()) await walk(join(hostPath, e), name === '.' ? e : `${name}/${e}`, await lstat(join(hostPath, e)));
    } else if (st.isSymbolicLink()) {
      await add({ name, type: 'symlink', linkname: await readlink(hostPath), ...common });
    } else if (st.isFile()) {
      await add({ name, type: 'file', size: st.size, ...common }, createReadStream(hostPath));
    }
  }
  const st = contents || src.endsWith('/') ? await stat(src) : await lstat(src);
  await walk(src, contents ? '.' : top, st);
}

async function copyIn(config: ContainerConfig, state: ContainerState, src: string, dest: string): Promise<void> {
  if (config.helper.readonly && state.Status === 'running') throw new CopyError('container rootfs is marked read-only');
  const destKind = await statInContainer(config, state, dest);
  let dir: string;
  let top = '.';
  let contents = false;
  let srcStat: Stats | undefined;
  if (src === '-') {
    if (destKind !== 'dir') throw new CopyError(`destination "${dest}" must be a directory`);
    dir = dest;
  } else {
    srcStat = await stat(src.replace(/\/\.$/, '/')).catch(() => undefined);
    if (!srcStat) throw new CopyError(`could not find the file ${src} on the host`);
    const srcIsDir = (src.endsWith('/') || src.endsWith('/.') ? srcStat : await lstat(src)).isDirectory();
    contents = srcIsDir && src.endsWith('/.');
    if (!srcIsDir && src.endsWith('/')) throw new CopyError(`${src}: not a directory`);
    if (destKind === 'dir') {
      dir = dest;
      top = contents ? '.' : lastName(src);
    } else if (destKind === 'file') {
      if (srcIsDir) throw new CopyError(`cannot copy a directory to a file: ${dest}`);
      dir = posix.dirname(dest);
      top = posix.basename(dest);
    } else {
      if (!srcIsDir && dest.endsWith('/')) throw new CopyError(`destination directory ${dest} does not exist`);
      contents = false; // a missing DEST is created with SRC's contents under DEST's name
      dir = posix.dirname(dest.replace(/\/+$/, ''));
      top = posix.basename(dest.replace(/\/+$/, ''));
    }
  }
  const cmd = inRootfs(config, state, ['tar', '-x', '--numeric-owner', '-f', '-', '-C', dir], { stdin: 'pipe' });
  const stdin = cmd.child.stdin as Writable;
  stdin.on('error', () => undefined); // tar failing early closes it; its stderr says why
  if (src === '-') {
    await pipeline(process.stdin, stdin).catch(() => undefined);
  } else {
    const pack = tar.pack();
    const piping = pipeline(pack, stdin).catch(() => undefined);
    await packHost(pack, src.replace(/\/\.$/, ''), top, contents);
    pack.finalize();
    await piping;
  }
  await finishTar(cmd, dest);
}

// ---- export --------------------------------------------------------------------------------

async function exportContainer(config: ContainerConfig, state: ContainerState, output: string | undefined): Promise<void> {
  const cmd = inRootfs(config, state, ['tar', '-c', '--numeric-owner', '-f', '-', '-C', '/', '.'], { oneFilesystem: true });
  const out = cmd.child.stdout as Readable;
  if (!output) {
    await pipeline(out, process.stdout, { end: false });
    return finishTar(cmd, '/');
  }
  // temp file beside the target, fsync'd, then renamed: no half-written archive under its name
  const tmp = join(dirname(output), `.${basename(output)}.${process.pid}.tmp`);
  try {
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o644);
    await pipeline(out, createWriteStream('', { fd, autoClose: false }));
    fsyncSync(fd);
    closeSync(fd);
    await finishTar(cmd, '/');
    await rename(tmp, output);
  } finally {
    await rm(tmp, { force: true });
  }
}

async function container(ref: string): Promise<{ config: ContainerConfig; state: ContainerState }> {
  const id = await store.lookup(ref);
  return { config: await store.config(id), state: await store.state(id) };
}

export async function cp(source: string, destination: string): Promise<number> {
  const operands = [source, destination];
  const [from, to] = operands.map(splitContainerPath) as [ReturnType<typeof splitContainerPath>, ReturnType<typeof splitContainerPath>];
  if (Boolean(from.container) === Boolean(to.container)) {
    process.stderr.write('berth: copying between containers or between host paths is not supported: exactly one of SRC and DEST must be CONTAINER:PATH\n');
    return 125;
  }
  try {
    if (from.container) {
      const c = await container(from.container);
      await copyOut(c.config, c.state, posix.isAbsolute(from.path) ? from.path : `/${from.path}`, to.path);
    } else {
      const c = await container(to.container!);
      await copyIn(c.config, c.state, from.path, posix.isAbsolute(to.path) ? to.path : `/${to.path}`);
    }
    return 0;
  } catch (err) {
    process.stderr.write(`Error response from daemon: ${(err as Error).message}\n`);
    return 1;
  }
}

export async function exportVerb(ref: string, o: { output?: string }): Promise<number> {
  const output = o.output;
  if (!output && process.stdout.isTTY) {
    process.stderr.write('berth: cowardly refusing to save to a terminal. Use the -o flag or redirect\n');
    return 1;
  }
  try {
    const c = await container(ref);
    await exportContainer(c.config, c.state, output);
    return 0;
  } catch (err) {
    process.stderr.write(`Error response from daemon: ${(err as Error).message}\n`);
    return 1;
  }
}
