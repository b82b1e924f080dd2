// The build context of `berth build CONTEXT`: a folder read in place (nothing is copied or
// sent: COPY and ADD read what they name, when they run), or `-`: stdin holding a tar (plain,
// gzip, bzip2, xz or zstd, as docker accepts) unpacked into a temp folder, or a Dockerfile alone
// (docker's `docker build - < Dockerfile`: an empty context).
import { chmodSync, constants, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, symlinkSync, utimesSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { IgnoreRules } from './dockerignore.js';
import { LayeredTree } from './layered-tree.js';
import { archiveKind, decompressStream } from './archive-kind.js';

export class ContextError extends Error {}

export interface BuildContext {
  /** The context folder; undefined when only a Dockerfile came on stdin. */
  readonly dir: string | undefined;
  /** The context as a tree COPY and ADD read from (empty when `dir` is undefined). */
  readonly tree: LayeredTree;
  readonly ignore: IgnoreRules;
  /** The Dockerfile's text and the name errors give it (`Dockerfile`, `-f` as given). */
  readonly dockerfile: { text: string; name: string };
  /** Removes what the context unpacked (a tar from stdin). */
  close(): Promise<void>;
}

export interface ContextOptions {
  /** `-f`: a path (relative to the cwd for a folder context, inside the tar for a tar on stdin) or `-`. */
  file?: string;
  /** Where `-` reads from (default process.stdin). */
  stdin?: Readable;
  /** Parent of the temp folder a tar context is unpacked into (default the OS temp folder). */
  tmpDir?: string;
}

/** Opens CONTEXT (a folder or `-`) as docker build does. */
export async function openBuildContext(arg: string, opts: ContextOptions = {}): Promise<BuildContext> {
  const stdin = opts.stdin ?? process.stdin;
  if (arg === '-') {
    if (opts.file === '-') throw new ContextError('invalid argument: can\'t use stdin for both build context and dockerfile');
    const { head, stream } = await peek(stdin, 512);
    const kind = archiveKind(head);
    if (kind === 'none') {
      // A Dockerfile alone: docker ignores -f here.
      const text = await readAllText(stream);
      return contextOf(undefined, IgnoreRules.none(), { text, name: 'Dockerfile' }, async () => undefined);
    }
    const dir = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'berth-context-'));
    try {
      await extractContextTar(decompressStream(kind, stream), dir);
      const name = opts.file ?? 'Dockerfile';
      const path = await findDockerfile(dir, name, true);
      const text = await readFile(path, 'utf8');
      return contextOf(dir, await IgnoreRules.load(dir, path), { text, name }, () => rm(dir, { recursive: true, force: true }));
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  }
  const dir = resolve(arg);
  const st = await stat(dir).catch(() => undefined);
  if (!st) throw new ContextError(`unable to prepare context: path "${arg}" not found`);
  if (!st.isDirectory()) throw new ContextError(`unable to prepare context: context must be a directory: ${dir}`);
  if (opts.file === '-') {
    const text = await readAllText(stdin);
    return contextOf(dir, await IgnoreRules.load(dir), { text, name: 'Dockerfile' }, async () => undefined);
  }
  const path = opts.file ? resolve(opts.file) : await findDockerfile(dir, 'Dockerfile', false);
  const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new ContextError(`unable to prepare context: unable to evaluate symlinks in Dockerfile path: ${e.code === 'ENOENT' ? `lstat ${path}: no such file or directory` : e.message}`);
  });
  return contextOf(dir, await IgnoreRules.load(dir, path), { text, name: opts.file ?? 'Dockerfile' }, async () => undefined);
}

function contextOf(dir: string | undefined, ignore: IgnoreRules, dockerfile: { text: string; name: string }, close: () => Promise<void>): BuildContext {
  return { dir, tree: new LayeredTree(dir ? [dir] : [], false), ignore, dockerfile, close };
}

/** `name` in `dir`; the default name falls back to `dockerfile` as docker's does. */
async function findDockerfile(dir: string, name: string, inTar: boolean): Promise<string> {
  if (isAbsolute(name) && !inTar) return name;
  const rel = name.replace(/^\/+/, '');
  const path = join(dir, rel);
  if (!rel.split('/').includes('..') && (await stat(path).catch(() => undefined))?.isFile()) return path;
  if (name === 'Dockerfile' && (await stat(join(dir, 'dockerfile')).catch(() => undefined))?.isFile()) return join(dir, 'dockerfile');
  if (inTar) throw new ContextError(`Cannot locate specified Dockerfile: ${name}`);
  throw new ContextError(`unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${path}: no such file or directory`);
}

/** The first `n` bytes of a stream (fewer at its end) and a stream of all of it. */
export async function peek(source: Readable, n: number): Promise<{ head: Buffer; stream: Readable }> {
  const chunks: Buffer[] = [];
  let have = 0;
  const it = source[Symbol.asyncIterator]();
  let ended = false;
  while (have < n) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    const c = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as string);
    chunks.push(c);
    have += c.length;
  }
  const head = Buffer.concat(chunks);
  const stream = Readable.from(
    (async function* () {
      if (head.length > 0) yield head;
      if (ended) return;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value as Buffer;
      }
    })(),
    { objectMode: false },
  );
  return { head: head.subarray(0, n), stream };
}

async function readAllText(s: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Unpacks a context tar into `dest`. Entries naming `..`, or a path through a symlink the tar
 * made, are refused: a context from stdin must not write outside its folder. Devices are skipped.
 */
export async function extractContextTar(source: Readable, dest: string): Promise<void> {
  const extract = tar.extract();
  const dirTimes: { path: string; mtime: Date }[] = [];
  const consume = (async () => {
    for await (const entry of extract) {
      const h = entry.header;
      try {
        const parts = h.name.split('/').filter((p) => p !== '' && p !== '.');
        if (parts.includes('..')) throw new ContextError(`refusing context tar entry ${JSON.stringify(h.name)}: path outside the context`);
        if (parts.length === 0) continue;
        let dir = dest;
        for (const p of parts.slice(0, -1)) {
          dir = join(dir, p);
          const st = lstatSync(dir, { throwIfNoEntry: false });
          if (!st) mkdirSync(dir, { mode: 0o755 });
          else if (!st.isDirectory()) throw new ContextError(`refusing context tar entry ${JSON.stringify(h.name)}: below a non-directory`);
        }
        const path = join(dir, parts[parts.length - 1]!);
        const existing = lstatSync(path, { throwIfNoEntry: false });
        if (existing && !(existing.isDirectory() && h.type === 'directory')) await rm(path, { recursive: true, force: true });
        const mtime = h.mtime ?? new Date(0);
        if (h.type === 'file' || h.type === 'contiguous-file') {
          const fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
          await pipeline(entry, fh.createWriteStream());
        } else if (h.type === 'directory') {
          if (!existing) mkdirSync(path, { mode: 0o700 });
          dirTimes.push({ path, mtime });
        } else if (h.type === 'symlink') {
          symlinkSync(h.linkname ?? '', path);
        } else if (h.type === 'link') {
          const target = (h.linkname ?? '').split('/').filter((p) => p !== '' && p !== '.');
          if (target.length === 0 || target.includes('..')) throw new ContextError(`refusing context tar hard link ${JSON.stringify(h.name)}`);
          const tp = join(dest, ...target);
          const tst = lstatSync(tp, { throwIfNoEntry: false });
          if (!tst?.isFile()) throw new ContextError(`refusing context tar hard link ${JSON.stringify(h.name)}: target ${JSON.stringify(h.linkname)} is not a file of the tar`);
          linkSync(tp, path);
          continue;
        } else continue;
        lchownSync(path, h.uid ?? 0, h.gid ?? 0);
        if (h.type === 'symlink') lutimesSync(path, mtime, mtime);
        else {
          chmodSync(path, (h.mode ?? 0o644) & 0o7777);
          if (h.type !== 'directory') utimesSync(path, mtime, mtime);
        }
      } finally {
        entry.resume();
      }
    }
  })();
  const settled = await Promise.allSettled([consume, pipeline(source, extract)]);
  for (const r of settled) if (r.status === 'rejected') throw r.reason;
  for (const d of dirTimes.reverse()) utimesSync(d.path, d.mtime, d.mtime);
}
