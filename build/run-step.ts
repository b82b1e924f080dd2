// RUN: the command runs in a container of berth's own runtime (runtime/create-container.ts,
// lifecycle.ts: overlay of the image's layers so far, namespaces, cgroups, the chosen network),
// and the changes of its writable layer (runtime/container-layer.ts) become the step's layer.
// The container is removed whatever happens: a failed RUN leaves no half layer behind.
import { access, cp, lstat, mkdir, mkdtemp, rename, rm, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import type { LocalImageStore } from '../client/store/image-store.js';
import type { Image, ImageConfig } from '../oci/image.js';
import type { ResolvedImage } from '../runtime/image-source.js';
import type { ChangeEntry } from '../runtime/container-layer.js';
import type { ContainerConfig } from '../runtime/container-store.js';
import type { RuntimeLayout } from '../runtime/runtime-layout.js';
import { writeLayer, type BuiltLayer } from './layer-writer.js';

export interface RunStepOptions {
  /** The image so far (layers in the store, config as built up to this step). */
  image: Image;
  config: ImageConfig;
  imageId: string;
  /** argv of the process (shell form already wrapped in the stage's SHELL). */
  args: string[];
  /** ARG values visible to the command (ENV of the image wins over them). */
  argEnv: string[];
  network: 'none' | 'host' | 'bridge';
  /** Host dirs to mount: cache mounts (rw, persistent) and bind mounts (ro unless rw). */
  mounts: { source: string; target: string; readonly: boolean }[];
  /** Where the command's output goes as it runs. */
  output: Writable;
  store: LocalImageStore;
}

export class RunFailed extends Error {
  constructor(
    readonly command: string,
    readonly code: number,
  ) {
    super(`The command '${command}' returned a non-zero code: ${code}`);
  }
}

/** Runs the step; returns its layer (undefined when it changed nothing). */
export async function runStep(o: RunStepOptions, onStart: (containerId: string) => void): Promise<BuiltLayer | undefined> {
  const [{ createContainer }, { ContainerStore }, { RuntimeLayout }, { startContainer, awaitExit }, { resolveConfinement }, { changeEntries }, { createReadStream, readFileSync }] = await Promise.all([
    import('../runtime/create-container.js'),
    import('../runtime/container-store.js'),
    import('../runtime/runtime-layout.js'),
    import('../runtime/lifecycle.js'),
    import('../runtime/confinement.js'),
    import('../runtime/container-layer.js'),
    import('node:fs'),
  ]);
  const layout = new RuntimeLayout(o.store.root);
  const containers = new ContainerStore(layout);
  const resolved: ResolvedImage = { id: o.imageId, image: o.image, config: o.config };
  const run = o.config.config ?? {};
  // The ARGs first: the image's ENV of the same name wins (docker's precedence).
  const envNames = new Set((run.Env ?? []).map((e) => e.slice(0, e.indexOf('='))));
  const config = await createContainer(layout, containers, {
    image: o.imageId,
    resolvedImage: { ...resolved, config: { ...o.config, config: { ...run, Entrypoint: null, Cmd: null } } },
    cmd: o.args,
    entrypoint: '',
    env: o.argEnv.filter((e) => !envNames.has(e.slice(0, e.indexOf('=')))),
    ...(run.WorkingDir ? { workdir: run.WorkingDir } : {}),
    user: run.User ?? '',
    autoRemove: false,
    detach: false,
    interactive: false,
    tty: false,
    volumes: o.mounts.map((m) => `${m.source}:${m.target}${m.readonly ? ':ro' : ''}`),
    publish: [],
    readOnly: false,
    init: false,
    network: o.network,
    limits: {},
    security: resolveConfinement({ privileged: false, capAdd: [], capDrop: [], securityOpt: [] }),
  });
  onStart(config.Id);
  // Ctrl-C or a stop of the build ends the step's container with it, then the build fails.
  let interrupted: NodeJS.Signals | undefined;
  let kill: (() => void) | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupted ??= sig;
    kill?.();
  };
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  try {
    let copied: Promise<unknown> = Promise.resolve();
    const started = await startContainer(containers, config, ['ignore', 'pipe', 'pipe'], (l) => {
      kill = () => l.kill('SIGKILL');
      if (interrupted) kill();
      const pipeOut = (s: NodeJS.ReadableStream) =>
        new Promise<void>((resolve) => {
          s.on('data', (d: Buffer) => o.output.write(d));
          s.on('end', resolve);
          s.on('error', () => resolve());
        });
      copied = Promise.all([pipeOut(l.stdout!), pipeOut(l.stderr!)]);
    });
    const code = await awaitExit(containers, config, started);
    await copied;
    if (interrupted) throw new Interrupted(interrupted);
    if (code !== 0) throw new RunFailed(o.args.join(' '), code);
    const mountParents = parentsOf(o.mounts.map((m) => m.target));
    let metacopy = false; // an upper dir with data-less files is no layer on its own
    const layer = await writeLayer(
      o.store,
      (async function* () {
        // A directory of the image that only got mount points (/etc for /etc/hosts) or nothing
        // under it is no change: held back until something under it is one.
        // So are the folders made only to hold a mount target (/run/secrets for a secret).
        const held: ChangeEntry[] = [];
        const linked = new Map<number, string>();
        for await (const e of changeEntries(config)) {
          while (held.length > 0 && !e.path.startsWith(`${held[held.length - 1]!.path}/`)) held.pop();
          if (e.type === 'directory' && (e.sameAsLower || mountParents.has(e.path))) {
            held.push(e);
            continue;
          }
          for (const h of held.splice(0)) yield h;
          // A second name of a file made in the container: a hard link entry, as docker writes it.
          if (e.type === 'file' && e.ino !== undefined && (e.nlink ?? 1) > 1) {
            const first = linked.get(e.ino);
            if (first !== undefined) {
              yield { path: e.path, type: 'link', linkname: first, uid: e.uid, gid: e.gid, mode: e.mode, mtime: e.mtime };
              continue;
            }
            linked.set(e.ino, e.path);
          }
          if (e.type === 'file' && e.size > 0) {
            // Small files whole (one read, no stream each), larger ones streamed.
            const from = e.dataPath ?? e.hostPath;
            if (e.dataPath) metacopy = true;
            yield { ...e, ...(e.size <= SMALL_FILE ? { data: readFileSync(from) } : { open: () => createReadStream(from) }) };
          } else yield e;
        }
      })(),
      { unpack: false },
    );
    if (layer && !metacopy) await adoptUpper(layout, config, layer.digest).catch(() => undefined); // the next step then unpacks it from the tar
    return layer;
  } finally {
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
    await containers.remove(config.Id);
  }
}

/** Files up to this size are read whole into the layer (runtime/layer-unpack.ts's threshold). */
const SMALL_FILE = 1 << 20;

const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** The build was stopped by a signal while a RUN ran. */
export class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`build stopped by ${signal}: the running step's container was removed, no image written`);
  }
}

/** A rw bind mount's source, copied so the command's writes are thrown away (BuildKit's rw binds). */
export async function scratchCopy(source: string, tmpRoot: string): Promise<{ dir: string; release(): Promise<void> }> {
  await mkdir(tmpRoot, { recursive: true });
  const dir = await mkdtemp(join(tmpRoot, 'bind-'));
  await cp(source, join(dir, 'data'), { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  return { dir: join(dir, 'data'), release: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * The step's upper dir becomes the unpacked copy of the layer just written from it (what
 * runtime/layer-cache.ts would unpack from the tar, overlay whiteouts and opaque marks included),
 * so the next step mounts it at once (containers/storage's overlay driver does the same). The
 * mount points berth made that are not in the image (/dev, /proc, /sys, /etc/hosts…, mount
 * targets) are removed first; a folder of the image copied up only for them stays, as it is no
 * change. Skipped when the layer is already unpacked (the same content built before).
 */
async function adoptUpper(layout: RuntimeLayout, config: ContainerConfig, digest: string): Promise<void> {
  const dir = layout.layerDir(digest);
  if (await access(dir).then(() => true, () => false)) return;
  const h = config.helper;
  const inLower = async (path: string) => {
    for (const lower of h.lower) if (await lstat(join(lower, path)).catch(() => undefined)) return true;
    return false;
  };
  for (const point of ['/dev', '/proc', '/sys', ...h.files.map((f) => f.target), ...h.mounts.map((m) => m.target)]) {
    if (!(await inLower(point))) await rm(join(h.upper, point), { recursive: true, force: true });
  }
  // Folders made only for a mount target, left empty: not in the layer, so not in its copy.
  const parents = [...parentsOf(h.mounts.map((m) => m.target))].sort((a, b) => b.length - a.length);
  for (const p of parents) if (!(await inLower(`/${p}`))) await rmdir(join(h.upper, p)).catch(() => undefined);
  await mkdir(dirname(dir), { recursive: true });
  await rename(h.upper, dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err; // unpacked meanwhile by another build
  });
}

/** The folders above mount targets, as layer paths (`/run/secrets/x` → run, run/secrets). */
function parentsOf(targets: string[]): Set<string> {
  const out = new Set<string>();
  for (const t of targets) {
    const parts = t.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) out.add(parts.slice(0, i).join('/'));
  }
  return out;
}
