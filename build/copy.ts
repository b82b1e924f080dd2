// COPY and ADD as docker runs them, producing one layer. A step is planned first (sources
// resolved, the digest of everything it reads computed: file contents, modes, owners, link
// targets, never mtimes), so the cache can be asked before anything is written; on a miss the
// layer is written by a second walk that hashes what it reads again and refuses to finish if
// the inputs changed in between. Memory stays flat: both walks stream, one folder listing at a time.
//
// Semantics followed (Dockerfile reference "COPY"/"ADD", BuildKit's dockerfile2llb):
// - sources: paths in the context (cleaned; `..` out of it refused), wildcards with Go's
//   filepath.Match per component, `.dockerignore`d paths invisible; a folder's content is copied,
//   not the folder; a named symlink is followed, symlinks inside a copied folder are kept.
// - `--from=STAGE|IMAGE`: the same from that filesystem (owners kept unless --chown).
// - destination: relative to WORKDIR; a folder when it ends with `/` (or is `.`), when it already
//   is one in the stage, or when several files are copied; symlinks in it resolve inside the stage.
// - `--chown` (names from the stage's /etc/passwd, /etc/group), `--chmod` (octal or symbolic),
//   `--exclude` (dockerignore patterns against paths below each source).
// - ADD: a local tar (plain, gzip, bzip2, xz, zstd) is extracted into the destination; a URL is
//   downloaded (mode 0600, `--checksum` verified); git sources are refused.
// - `COPY <<EOF`: here-documents become files named by their delimiter, mode 0644.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { open, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { LocalImageStore } from '../client/store/image-store.js';
import type { BuildContext } from './context.js';
import type { ContextSource, CopyPlan, CopyStep } from './copy-contract.js';
import { archiveKind, decompressStream, type ArchiveKind } from './archive-kind.js';
import { parseChmod, resolveChown, type ModeChange, type Owner } from './copy-flags.js';
import { isHeredocMarker } from './dockerfile.js';
import { IgnoreRules } from './dockerignore.js';
import { sourceDateEpoch, writeLayer, type BuiltLayer, type LayerEntry } from './layer-writer.js';
import { LayeredTree, splitPath, type TreeNode } from './layered-tree.js';
import { hasMeta, pathMatch } from './path-match.js';
import { processWord, processWords, type Vars } from './shell-words.js';

/** A source as the Dockerfile gives it (variables expanded): a path, a URL, or a here-document. */
export type CopySource = string | { heredoc: string; content: string };

/** A COPY or ADD with its words expanded and its filesystems opened (what planCopy makes of a CopyStep). */
export interface CopyRequest {
  instruction: 'COPY' | 'ADD';
  sources: CopySource[];
  dest: string;
  /** The stage's WORKDIR ('/' when unset). */
  workdir?: string;
  /** The stage's filesystem so far: where the destination is resolved and --chown names are looked up. */
  rootfs: LayeredTree;
  /** `--from`: the filesystem of that stage or image, and how messages name it. */
  from?: { tree: LayeredTree; name: string };
  /** The build context (its folder and .dockerignore rules). */
  context?: { tree: LayeredTree; ignore: IgnoreRules };
  chown?: string;
  chmod?: string;
  exclude?: string[];
  /** ADD --checksum=sha256:… for a URL source. */
  checksum?: string;
  /** Temp folder for ADD's downloads. */
  tmpDir: string;
}

export interface CopyRequestPlan {
  /** sha256 over what the step reads (contents, modes, owners, link targets) and where it puts it. */
  readonly inputDigest: string;
  /** docker's history text after the instruction: `file:<hex> in /dest`, `dir:…`, `multi:…`. */
  readonly summary: string;
  /** The layer's entries, content streams hashed as read; `check()` after the last one compares with inputDigest. */
  entries(): { entries: AsyncIterable<LayerEntry>; check(): void };
  /** Writes the layer into the store; undefined when the step copies nothing. */
  writeLayer(store: LocalImageStore): Promise<BuiltLayer | undefined>;
  /** Removes downloads. */
  close(): Promise<void>;
}

export class CopyError extends Error {}

type Match =
  | { kind: 'tree'; tree: LayeredTree; node: TreeNode; name: string; context: boolean; archive?: ArchiveKind }
  | { kind: 'heredoc'; name: string; content: Buffer }
  | { kind: 'download'; name: string; path: string; size: number; mtime: Date };

/** Where a match lands: a folder it goes into (its content, or itself by name) or an exact file path. */
interface Target {
  match: Match;
  /** Real path (symlinks of the stage resolved), relative to the image root. */
  path: string;
  /** `into`: path is a folder (folder content / archive content / file by name); `as`: path is the file. */
  how: 'into' | 'as';
}

const URL_RE = /^https?:\/\//i;
/** Files up to this size are read with one synchronous call (many small files: no thread-pool round trips). */
const SMALL_FILE = 1 << 20;
const GIT_RE = /^(git@|git:\/\/|ssh:\/\/)|\.git(#.*)?$/;

/** Plans a COPY or ADD: resolves its sources and destination, computes its input digest. */
export async function planCopyRequest(req: CopyRequest): Promise<CopyRequestPlan> {
  const what = req.instruction;
  const downloads: string[] = [];
  try {
    const owner = req.chown ? await resolveChown(req.chown, req.rootfs) : undefined;
    const chmod = req.chmod ? parseChmod(req.chmod) : undefined;
    const exclude = req.exclude && req.exclude.length > 0 ? new IgnoreRules(req.exclude) : undefined;
    if (req.from && what === 'ADD') throw new CopyError('ADD does not support --from; use COPY --from');
    if (req.checksum && (what !== 'ADD' || !req.sources.every((s) => typeof s === 'string' && URL_RE.test(s)))) {
      throw new CopyError(`${what} --checksum is only supported for ADD of an HTTP(S) URL`);
    }
    const matches: Match[] = [];
    for (const s of req.sources) matches.push(...(await resolveSource(req, s, downloads)));
    // A wildcard may match nothing as long as the instruction copies something (docker's builder).
    if (matches.length === 0) throw new CopyError(`${what} failed: no source files were specified`);
    const args = req.sources.length;
    const destText = req.dest === '' ? '.' : req.dest;
    let destAbs = destText.startsWith('/') ? destText : posix.join(req.workdir || '/', destText);
    const slash = destText.endsWith('/') || destText === '.' || destText.endsWith('/.');
    if (args > 1 && !slash) throw new CopyError(`When using ${what} with more than one source file, the destination must be a directory and end with a /`);
    destAbs = posix.normalize(destAbs);
    const resolved = await req.rootfs.resolve(destAbs, true);
    const destIsDir = slash || matches.length > 1 || resolved.node?.stat.isDirectory() === true;
    if (resolved.node && !resolved.node.stat.isDirectory() && (destIsDir || matches.some(isFolderLike))) {
      throw new CopyError(`${what} failed: cannot copy to non-directory: ${destAbs}`);
    }
    const targets: Target[] = matches.map((m) => (destIsDir || isFolderLike(m) ? { match: m, path: resolved.rel, how: 'into' } : { match: m, path: resolved.rel, how: 'as' }));
    const walk: WalkOptions = { rootfs: req.rootfs, owner, chmod, exclude, ignore: req.context?.ignore, created: new Date() };
    const inputDigest = await digestOf(targets, walk);
    const entries = () => {
      const digest = createHash('sha256');
      return {
        entries: layerEntries(targets, walk, digest),
        check() {
          if (`sha256:${digest.digest('hex')}` !== inputDigest) throw new CopyError(`${what} failed: the files it copies changed while the build read them; run the build again`);
        },
      };
    };
    const kinds = new Set(matches.map((m) => (m.kind === 'tree' && m.node.stat.isDirectory() ? 'dir' : 'file')));
    const kind = matches.length > 1 ? 'multi' : [...kinds][0] ?? 'file';
    return {
      inputDigest,
      summary: `${kind}:${inputDigest.slice(7)} in ${destIsDir && !destAbs.endsWith('/') ? `${destAbs}/` : destAbs} `,
      entries,
      async writeLayer(store) {
        const { entries: list, check } = entries();
        const layer = await writeLayer(store, list);
        check();
        return layer;
      },
      async close() {
        for (const d of downloads) await rm(d, { force: true });
      },
    };
  } catch (e) {
    for (const d of downloads) await rm(d, { force: true });
    throw e;
  }
}

function isFolderLike(m: Match): boolean {
  return m.kind === 'tree' && (m.node.stat.isDirectory() || m.archive !== undefined);
}

async function resolveSource(req: CopyRequest, s: CopySource, downloads: string[]): Promise<Match[]> {
  const what = req.instruction;
  if (typeof s !== 'string') return [{ kind: 'heredoc', name: s.heredoc, content: Buffer.from(s.content) }];
  if (what === 'ADD' && URL_RE.test(s)) return [await download(req, s, downloads)];
  if (what === 'ADD' && GIT_RE.test(s)) throw new CopyError(`ADD failed: git sources (${s}) are not supported by berth build; clone in a RUN step or in the context`);
  if (URL_RE.test(s)) throw new CopyError(`COPY failed: source can't be a URL for COPY: ${s}`);
  let tree: LayeredTree;
  let path: string;
  let notFound: (p: string) => string;
  const context = !req.from;
  if (req.from) {
    tree = req.from.tree;
    path = posix.normalize(`/${s}`);
    const name = req.from.name;
    notFound = () => `${what} failed: file not found in ${name}: stat ${s}: file does not exist`;
  } else {
    tree = req.context?.tree ?? new LayeredTree([], false);
    const clean = posix.normalize(s.replace(/^\/+/, '') || '.');
    if (clean === '..' || clean.startsWith('../')) throw new CopyError(`${what} failed: forbidden path outside the build context: ${s}`);
    path = clean;
    notFound = (p) => `${what} failed: file not found in build context or excluded by .dockerignore: stat ${p}: file does not exist`;
  }
  const ignore = context ? req.context?.ignore : undefined;
  // An excluded folder with `!` exceptions below it still holds what they re-include.
  const visible = (node: TreeNode) => !ignore || !ignore.excludes(node.rel) || (node.stat.isDirectory() && ignore.mayIncludeBelow(node.rel));
  const asMatch = async (node: TreeNode, name: string): Promise<Match> => {
    const m: Match = { kind: 'tree', tree, node, name, context };
    if (what === 'ADD' && node.stat.isFile()) {
      const kind = await sniffFile(node.hostPath);
      if (kind !== 'none') m.archive = kind;
    }
    return m;
  };
  if (!hasMeta(path)) {
    const { node } = await tree.resolve(path, true);
    if (!node || !visible(node)) throw new CopyError(notFound(s.replace(/^\/+/, '') || '.'));
    return [await asMatch(node, posix.basename(path))];
  }
  const found: Match[] = [];
  for await (const { node, name } of globTree(tree, splitPath(path))) {
    if (visible(node)) found.push(await asMatch(node, name));
  }
  return found; // none is an error only when no source matched anything (planCopyRequest)
}

/** Matches path components (wildcards per component, Go's filepath.Match) from the root; sorted. */
async function* globTree(tree: LayeredTree, parts: string[]): AsyncGenerator<{ node: TreeNode; name: string }> {
  const root = tree.root();
  if (!root) return;
  async function* step(dir: TreeNode, i: number): AsyncGenerator<{ node: TreeNode; name: string }> {
    const part = parts[i]!;
    const last = i === parts.length - 1;
    const names = hasMeta(part) ? (await tree.list(dir)).filter((n) => pathMatch(part, n)) : [part];
    for (const name of names) {
      let node = await tree.child(dir, name);
      if (node?.stat.isSymbolicLink()) node = (await tree.resolve(node.rel, true)).node;
      if (!node) continue;
      if (last) yield { node, name };
      else if (node.stat.isDirectory()) yield* step(node, i + 1);
    }
  }
  if (parts.length === 0) yield { node: root, name: '.' };
  else yield* step(root, 0);
}

async function sniffFile(path: string): Promise<ArchiveKind> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await fh.read(head, 0, 512, 0);
    return archiveKind(head.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

/** ADD <url>: downloads into the temp folder (checked against --checksum), named as docker names it. */
async function download(req: CopyRequest, url: string, downloads: string[]): Promise<Match> {
  let name: string;
  try {
    name = decodeURIComponent(posix.basename(new URL(url).pathname));
  } catch {
    throw new CopyError(`ADD failed: invalid URL ${url}`);
  }
  const path = join(req.tmpDir, `berth-add-${randomBytes(8).toString('hex')}`);
  downloads.push(path);
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow' });
  } catch (e) {
    throw new CopyError(`ADD failed: GET ${url}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`);
  }
  if (!res.ok || !res.body) throw new CopyError(`ADD failed: GET ${url}: ${res.status} ${res.statusText}`);
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(
    res.body as unknown as AsyncIterable<Uint8Array>,
    new Transform({
      transform(c: Buffer, _e, cb) {
        hash.update(c);
        size += c.length;
        cb(null, c);
      },
    }),
    createWriteStream(path, { mode: 0o600 }),
  );
  const got = `sha256:${hash.digest('hex')}`;
  if (req.checksum && req.checksum !== got) throw new CopyError(`ADD failed: checksum mismatch for ${url}: expected ${req.checksum}, got ${got}`);
  const modified = res.headers.get('last-modified');
  const mtime = modified && !Number.isNaN(Date.parse(modified)) ? new Date(modified) : new Date(0);
  return { kind: 'download', name, path, size, mtime };
}

interface WalkOptions {
  rootfs: LayeredTree;
  owner: Owner | undefined;
  chmod: ModeChange | undefined;
  exclude: IgnoreRules | undefined;
  ignore: IgnoreRules | undefined;
  /** mtime of folders the step creates. */
  created: Date;
}

/** A layer entry as the walk makes it. */
interface Item {
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'link';
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
  size?: number;
  linkname?: string;
}

/** One entry of the layer, with how to get its content and what the input digest records for it. */
interface Out {
  entry: Item;
  /** For files: the host file, or the bytes. */
  body?: string | Buffer;
  /** For an archive being extracted: its entry's stream. */
  stream?: Readable;
  /** false for folders the destination path passes through (they belong to the stage, not the inputs). */
  input: boolean;
  /** A record of the input digest only, not a layer entry (an archive ADD extracts). */
  virtual?: boolean;
  /** Its content hash when already known. */
  hash?: string;
}

/** The input digest: the walk's records, files hashed by content. */
async function digestOf(targets: Target[], w: WalkOptions): Promise<string> {
  const digest = createHash('sha256');
  for await (const o of walkTargets(targets, w, false)) {
    if (!o.input) continue;
    let content = o.hash ?? '';
    if (o.entry.type === 'file' && o.hash === undefined) {
      const h = createHash('sha256');
      if (Buffer.isBuffer(o.body)) h.update(o.body);
      else if (o.body !== undefined && (o.entry.size ?? 0) <= SMALL_FILE) h.update(readFileSync(o.body));
      else if (o.body !== undefined) for await (const c of createReadStream(o.body)) h.update(c as Buffer);
      content = h.digest('hex');
    }
    digest.update(record(o.entry, content));
  }
  return `sha256:${digest.digest('hex')}`;
}

function record(e: Item, content: string): string {
  return `${e.name}\0${e.type}\0${e.mode.toString(8)}\0${e.uid}:${e.gid}\0${e.linkname ?? ''}\0${content}\n`;
}

/**
 * The walk's entries as the layer writer takes them; content streams are hashed as the writer
 * reads them, and each entry's record goes into `digest` once the writer asks for the next one.
 */
async function* layerEntries(targets: Target[], w: WalkOptions, digest: ReturnType<typeof createHash>): AsyncGenerator<LayerEntry> {
  // SOURCE_DATE_EPOCH fixes every mtime (not only clamps it): mtimes are no input of the step's
  // cache key, so they must not make the layer differ either.
  const epoch = sourceDateEpoch();
  for await (const o of walkTargets(targets, w, true)) {
    const e = o.entry;
    if (o.virtual) {
      digest.update(record(e, o.hash ?? ''));
      continue;
    }
    const common = { path: e.name, mode: e.mode, uid: e.uid, gid: e.gid, mtime: epoch ?? e.mtime };
    if (e.type !== 'file') {
      yield { ...common, type: e.type, ...(e.linkname !== undefined ? { linkname: e.linkname } : {}) };
      if (o.input) digest.update(record(e, ''));
      continue;
    }
    const h = createHash('sha256');
    let opened = false;
    const open = (): Readable => {
      opened = true;
      const body = !o.stream && typeof o.body === 'string' && (e.size ?? 0) <= SMALL_FILE ? readFileSync(o.body) : o.body;
      const src = o.stream ?? (Buffer.isBuffer(body) ? Readable.from([body]) : createReadStream(body!));
      const tap = new Transform({
        transform(c: Buffer, _e, cb) {
          h.update(c);
          cb(null, c);
        },
      });
      src.on('error', (err: Error) => tap.destroy(err));
      return src.pipe(tap);
    };
    yield { ...common, type: 'file', size: e.size ?? 0, open };
    if (!opened) o.stream?.resume(); // an empty file: the writer reads nothing
    if (o.input) digest.update(record(e, h.digest('hex')));
  }
}

/**
 * The entries of the layer, in order: each target's destination folders (as the stage has them,
 * or created 0755), then what it copies. `extract`: archives are read entry by entry (write);
 * otherwise an archive is one input, its file (digest).
 */
async function* walkTargets(targets: Target[], w: WalkOptions, extract: boolean): AsyncGenerator<Out> {
  const emitted = new Set<string>();
  const createdOwner = w.owner ?? { uid: 0, gid: 0 };
  /** Folders from the image root down to `dir` (inclusive) not yet in the layer. */
  async function* parents(dir: string): AsyncGenerator<Out> {
    const parts = splitPath(dir);
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      if (emitted.has(p)) continue;
      emitted.add(p);
      const { node } = await w.rootfs.resolve(p, false).catch(() => ({ node: undefined }));
      if (node?.stat.isDirectory()) {
        const st = node.stat;
        yield { entry: { name: p, type: 'directory', mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime }, input: false };
      } else {
        yield { entry: { name: p, type: 'directory', mode: 0o755, ...createdOwner, mtime: w.created }, input: false };
      }
    }
  }
  const mode = (m: number, dir: boolean) => (w.chmod ? w.chmod(m & 0o7777, dir) : m & 0o7777);
  for (const t of targets) {
    const m = t.match;
    if (m.kind === 'heredoc') {
      const name = t.how === 'into' ? join(t.path, m.name) : t.path;
      yield* parents(posix.dirname(name));
      yield { entry: { name: clean(name), type: 'file', mode: mode(0o644, false), ...createdOwner, mtime: w.created, size: m.content.length }, body: m.content, input: true };
      continue;
    }
    if (m.kind === 'download') {
      const name = t.how === 'into' ? join(t.path, m.name) : t.path;
      if (t.how === 'into' && m.name === '') throw new CopyError('ADD failed: cannot determine a file name from the URL; give the destination a file name');
      yield* parents(posix.dirname(name));
      yield { entry: { name: clean(name), type: 'file', mode: mode(0o600, false), ...createdOwner, mtime: m.mtime, size: m.size }, body: m.path, input: true };
      continue;
    }
    const { node, tree } = m;
    const ownerOf = (st: { uid: number; gid: number }) => w.owner ?? (m.context ? { uid: 0, gid: 0 } : { uid: st.uid, gid: st.gid });
    if (m.archive) {
      yield* parents(t.path);
      if (!extract) {
        yield { entry: archiveRecord(clean(t.path), node.stat), body: node.hostPath, virtual: true, input: true };
      } else yield* archiveEntries(m.archive, node, t.path, w, emitted, parents);
      continue;
    }
    if (!node.stat.isDirectory()) {
      const name = t.how === 'into' ? join(t.path, m.name) : t.path;
      yield* parents(posix.dirname(name));
      yield await leaf(node, clean(name), mode, ownerOf);
      continue;
    }
    // A folder: its content goes into the destination.
    yield* parents(t.path);
    const ignore = m.context ? w.ignore : undefined;
    yield* folder(tree, node, '', clean(t.path), { ignore, exclude: w.exclude, mode, ownerOf, emitted }, []);
  }
}

function clean(p: string): string {
  return splitPath(posix.normalize(p)).join('/');
}

type OwnerOf = (st: { uid: number; gid: number }) => Owner;

async function leaf(node: TreeNode, name: string, mode: (m: number, d: boolean) => number, ownerOf: OwnerOf): Promise<Out> {
  const st = node.stat;
  const base = { name, uid: ownerOf(st).uid, gid: ownerOf(st).gid, mtime: st.mtime };
  if (st.isSymbolicLink()) return { entry: { ...base, type: 'symlink', mode: 0o777, linkname: await readlink(node.hostPath) }, input: true };
  return { entry: { ...base, type: 'file', mode: mode(st.mode, false), size: st.size }, body: node.hostPath, input: true };
}

interface FolderOptions {
  ignore: IgnoreRules | undefined;
  exclude: IgnoreRules | undefined;
  mode: (m: number, d: boolean) => number;
  ownerOf: OwnerOf;
  emitted: Set<string>;
}

/**
 * The content of folder `dir` (sorted, depth first) under `dest`. A folder excluded by
 * .dockerignore but holding a `!` exception is entered; it is written only if something below
 * it is (`pending`), as docker's walk leaves it out of the context otherwise.
 */
async function* folder(tree: LayeredTree, dir: TreeNode, srcRel: string, dest: string, o: FolderOptions, pending: Out[]): AsyncGenerator<Out> {
  for (const name of await tree.list(dir)) {
    const node = await tree.child(dir, name);
    if (!node) continue;
    const rel = srcRel === '' ? name : `${srcRel}/${name}`;
    const out = dest === '' ? rel : `${dest}/${rel}`;
    const isDir = node.stat.isDirectory();
    const excluded = (o.ignore?.excludes(node.rel) ?? false) || (o.exclude?.excludes(rel) ?? false);
    if (excluded) {
      const open = isDir && ((o.ignore?.excludes(node.rel) ?? false) ? o.ignore!.mayIncludeBelow(node.rel) : true) && !(o.exclude?.excludes(rel) && !o.exclude.mayIncludeBelow(rel));
      if (open) yield* folder(tree, node, rel, dest, o, [...pending, dirOut(node, out, o)]);
      continue;
    }
    if (!isDir && !node.stat.isFile() && !node.stat.isSymbolicLink()) continue; // sockets, FIFOs, devices
    for (const p of pending.splice(0)) {
      o.emitted.add(p.entry.name);
      yield p;
    }
    if (isDir) {
      o.emitted.add(out);
      yield dirOut(node, out, o);
      yield* folder(tree, node, rel, dest, o, []);
    } else yield await leaf(node, out, o.mode, o.ownerOf);
  }
}

function dirOut(node: TreeNode, name: string, o: FolderOptions): Out {
  const st = node.stat;
  const owner = o.ownerOf(st);
  return { entry: { name, type: 'directory', mode: o.mode(st.mode, true), uid: owner.uid, gid: owner.gid, mtime: st.mtime }, input: true };
}

/**
 * An archive's entries under `dest` (ADD's auto-extraction): `..` refused, devices skipped, owners
 * kept from the archive unless --chown. Ends with the record of the archive file itself (not
 * written): the input digest covers the archive's bytes, hashed here as they are read.
 */
async function* archiveEntries(kind: ArchiveKind, node: TreeNode, dest: string, w: WalkOptions, emitted: Set<string>, parents: (d: string) => AsyncGenerator<Out>): AsyncGenerator<Out> {
  const hash = createHash('sha256');
  const raw = createReadStream(node.hostPath);
  const tap = new Transform({
    transform(c: Buffer, _e, cb) {
      hash.update(c);
      cb(null, c);
    },
  });
  raw.on('error', (e) => tap.destroy(e));
  const extract = tar.extract();
  const piping = pipeline(decompressStream(kind, raw.pipe(tap)), extract);
  piping.catch(() => undefined); // awaited below; a failure also ends the iteration
  const base = clean(dest);
  const mode = (m: number, d: boolean) => (w.chmod ? w.chmod(m & 0o7777, d) : m & 0o7777);
  try {
    for await (const e of extract) {
      const h = e.header;
      const parts = splitPath(h.name);
      if (parts.includes('..')) throw new CopyError(`ADD failed: archive ${node.rel} has an entry outside its destination: ${h.name}`);
      const name = [base, ...parts].filter((p) => p !== '').join('/');
      if (parts.length === 0 || !['file', 'contiguous-file', 'directory', 'symlink', 'link'].includes(h.type ?? 'file')) {
        e.resume();
        continue;
      }
      yield* parents(posix.dirname(name));
      const owner = w.owner ?? { uid: h.uid ?? 0, gid: h.gid ?? 0 };
      const common = { name, ...owner, mtime: h.mtime ?? new Date(0) };
      if (h.type === 'directory') {
        emitted.add(name);
        e.resume();
        yield { entry: { ...common, type: 'directory', mode: mode(h.mode ?? 0o755, true) }, input: false };
      } else if (h.type === 'symlink') {
        e.resume();
        yield { entry: { ...common, type: 'symlink', mode: 0o777, linkname: h.linkname ?? '' }, input: false };
      } else if (h.type === 'link') {
        const target = splitPath(h.linkname ?? '');
        if (target.includes('..') || target.length === 0) throw new CopyError(`ADD failed: archive ${node.rel} has a hard link outside its destination: ${h.name}`);
        e.resume();
        yield { entry: { ...common, type: 'link', mode: mode(h.mode ?? 0o644, false), linkname: [base, ...target].filter((p) => p !== '').join('/') }, input: false };
      } else {
        yield { entry: { ...common, type: 'file', mode: mode(h.mode ?? 0o644, false), size: h.size ?? 0 }, stream: e as unknown as Readable, input: false };
      }
    }
    await piping;
  } finally {
    raw.destroy();
  }
  const st = node.stat;
  yield { entry: archiveRecord(base, st), virtual: true, hash: hash.digest('hex'), input: true };
}

function archiveRecord(base: string, st: { mode: number; uid: number; gid: number; mtime: Date; size: number }): Item {
  return { name: `${base}\0archive`, type: 'file', mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime, size: st.size };
}

/**
 * The builder's entry point (copy-contract.ts): expands the instruction's words and flags with
 * the stage's variables, opens the filesystems it reads, and plans it.
 */
export async function planCopy(step: CopyStep): Promise<CopyPlan> {
  const ins = step.instruction;
  const what = ins.keyword === 'ADD' ? 'ADD' : 'COPY';
  const { vars, escape } = step;
  const flag = (name: string): string | undefined => {
    const f = ins.flags.find((x) => x.name === name);
    return f ? processWord(f.value, vars, escape) : undefined;
  };
  if (ins.flags.some((f) => f.name === 'parents')) throw new CopyError(`${what} --parents is not supported by berth build`);
  const words = ins.json ? ins.json.map((w) => processWord(w, vars, escape)) : processWords(ins.args, vars, escape);
  const dest = words.pop() ?? '';
  const sources: CopySource[] = [];
  let next = 0;
  for (const w of words) {
    const doc = !ins.json && isHeredocMarker(w) ? ins.heredocs[next++] : undefined;
    sources.push(doc ? { heredoc: doc.name, content: doc.expand ? expandHeredoc(doc.content, vars) : doc.content } : w);
  }
  const fromRef = flag('from');
  const from = fromRef !== undefined ? { tree: new LayeredTree(await (await step.from(fromRef)).layers()), name: fromRef } : undefined;
  const ctx = step.context as ContextSource & Partial<Pick<BuildContext, 'ignore'>>;
  const ignore = ctx.ignore ?? (await IgnoreRules.load(ctx.dir ?? undefined));
  const req: CopyRequest = {
    instruction: what,
    sources,
    dest,
    workdir: step.workdir,
    rootfs: new LayeredTree(await step.rootfs.layers()),
    context: { tree: new LayeredTree(ctx.dir ? [ctx.dir] : [], false), ignore },
    tmpDir: tmpdir(),
    ...(from ? { from } : {}),
  };
  const chown = flag('chown');
  const chmod = flag('chmod');
  const checksum = flag('checksum');
  const exclude = ins.flags.filter((f) => f.name === 'exclude').map((f) => processWord(f.value, vars, escape));
  if (chown !== undefined) req.chown = chown;
  if (chmod !== undefined) req.chmod = chmod;
  if (checksum !== undefined) req.checksum = checksum;
  if (exclude.length > 0) req.exclude = exclude;
  const plan = await planCopyRequest(req);
  const key = createHash('sha256')
    .update(JSON.stringify({ what, sources: sources.map((s) => (typeof s === 'string' ? s : { heredoc: s.heredoc })), dest, workdir: step.workdir, from: fromRef, chown, chmod, checksum, exclude, inputs: plan.inputDigest }))
    .digest('hex');
  return {
    cacheInput: `sha256:${key}`,
    build: () => plan.writeLayer(step.store),
    release: () => plan.close(),
  };
}

/**
 * Variables in a here-document's body (an unquoted delimiter): `$NAME`, `${NAME}` and the
 * `${NAME:-x}`, `${NAME-x}`, `${NAME:+x}`, `${NAME+x}` forms; quotes are kept, as BuildKit
 * expands heredocs without quote processing; `\$` is a literal `$`.
 */
export function expandHeredoc(text: string, vars: Vars): string {
  return text.replace(/\\\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (m, braced: string | undefined, op: string | undefined, word: string | undefined, bare: string | undefined) => {
    if (m === '\\$') return '$';
    const name = braced ?? bare!;
    const value = vars.get(name);
    if (!op) return value ?? '';
    const set = op.startsWith(':') ? value !== undefined && value !== '' : value !== undefined;
    return op.endsWith('-') ? (set ? value! : word ?? '') : set ? word ?? '' : '';
  });
}
