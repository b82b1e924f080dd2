// `berth build [OPTIONS] CONTEXT`: docker build's flags, the image into the local store, tagged;
// pushed with --push. Output: docker's classic lines (plain), a live view on a terminal (tty),
// or only the image ID (-q). Exit 1 on a failed build (docker's), 125 on a usage error (its flags
// are declared in bin/commands.ts).
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { UsageError } from '../runtime/process-spec.js';
import type { Platform } from '../oci/manifest.js';
import { familiarReference, parseReference, type ImageReference } from '../oci/reference.js';
import { DockerfileError } from './dockerfile.js';
import { BuildError, shortId } from './builder.js';
import { Interrupted, RunFailed } from './run-step.js';
import { plainProgress, quietProgress, ttyProgress, type BuildProgress } from './progress.js';
import type { BuildContext } from './context.js';

/** `berth build`'s flags as commander gives them (bin/commands.ts declares them). */
export interface BuildFlags {
  tag: string[];
  file?: string;
  buildArg: string[];
  secret?: string[];
  target?: string;
  /** false with --no-cache */
  cache?: boolean;
  pull?: boolean;
  platform?: string;
  label: string[];
  network?: string;
  progress?: string;
  quiet?: boolean;
  iidfile?: string;
  push?: boolean;
  format?: string;
}


interface Parsed {
  contextArg: string;
  file?: string;
  tags: ImageReference[];
  buildArgs: Map<string, string>;
  /** id → a file (src=), or the value of an environment variable (env=). */
  secrets: Map<string, { file: string } | { value: string }>;
  target?: string;
  noCache: boolean;
  pull: boolean;
  platform?: Platform;
  labels: Record<string, string>;
  network: 'none' | 'host' | 'bridge';
  progress: 'auto' | 'plain' | 'tty';
  quiet: boolean;
  iidfile?: string;
  push: boolean;
  format: 'docker' | 'oci';
}

async function parseArgs(contextArg: string, p: BuildFlags): Promise<Parsed> {
  const tags = p.tag.map((t) => {
    try {
      return parseReference(t);
    } catch {
      throw new UsageError(`invalid argument "${t}" for "-t, --tag" flag: invalid reference format`);
    }
  });
  if (tags.some((t) => t.digest !== undefined)) throw new UsageError('-t takes NAME[:TAG], not a digest');
  const buildArgs = new Map<string, string>();
  for (const a of p.buildArg) {
    const eq = a.indexOf('=');
    if (eq === 0) throw new UsageError(`invalid build argument: ${a}`);
    if (eq < 0) {
      // docker: a name alone takes its value from this environment, and is skipped when unset.
      if (process.env[a] !== undefined) buildArgs.set(a, process.env[a]!);
    } else buildArgs.set(a.slice(0, eq), a.slice(eq + 1));
  }
  const secrets = new Map<string, { file: string } | { value: string }>();
  for (const spec of p.secret ?? []) {
    // buildx's forms: id=ID,src=FILE | id=ID,env=VAR | id=ID (the variable ID) [,type=file|env]
    const kv = new Map(spec.split(',').map((part) => [part.slice(0, part.indexOf('=') < 0 ? part.length : part.indexOf('=')), part.indexOf('=') < 0 ? '' : part.slice(part.indexOf('=') + 1)]));
    const id = kv.get('id');
    if (!id) throw new UsageError(`invalid secret ${JSON.stringify(spec)}: id=ID,src=FILE or id=ID,env=VAR`);
    const src = kv.get('src') ?? kv.get('source');
    const env = kv.get('env') ?? (src === undefined ? id : undefined);
    if (src !== undefined && kv.get('type') !== 'env') secrets.set(id, { file: src });
    else if (env !== undefined && process.env[env] !== undefined) secrets.set(id, { value: process.env[env]! });
    else throw new UsageError(`secret ${id}: ${src !== undefined ? `no file ${src}` : `no environment variable ${env}`}`);
  }
  const labels: Record<string, string> = {};
  for (const l of p.label) {
    const eq = l.indexOf('=');
    labels[eq < 0 ? l : l.slice(0, eq)] = eq < 0 ? '' : l.slice(eq + 1);
  }
  const network = p.network ?? 'bridge';
  if (network !== 'none' && network !== 'host' && network !== 'bridge' && network !== 'default') throw new UsageError(`--network: ${network} is not supported for builds (none, host or bridge)`);
  const progress = p.progress ?? 'auto';
  if (progress !== 'auto' && progress !== 'plain' && progress !== 'tty') throw new UsageError(`--progress: ${progress} is not one of auto, plain, tty`);
  const format = (p.format ?? process.env.BUILDAH_FORMAT ?? 'docker').toLowerCase();
  if (format !== 'docker' && format !== 'oci') throw new UsageError(`--format: ${format} is not one of docker, oci`);
  const platformFlag = p.platform ?? process.env.DOCKER_DEFAULT_PLATFORM;
  let platform: Platform | undefined;
  if (platformFlag) {
    const { parsePlatform } = await import('../client/platform.js');
    try {
      platform = parsePlatform(platformFlag);
    } catch (err) {
      throw new UsageError((err as Error).message, false);
    }
  }
  const { file, target, iidfile } = p;
  return {
    contextArg,
    ...(file !== undefined ? { file } : {}),
    tags,
    buildArgs,
    secrets,
    ...(target !== undefined ? { target } : {}),
    noCache: p.cache === false,
    pull: Boolean(p.pull),
    ...(platform ? { platform } : {}),
    labels,
    network: network === 'default' ? 'bridge' : network,
    progress,
    quiet: Boolean(p.quiet),
    ...(iidfile !== undefined ? { iidfile } : {}),
    push: Boolean(p.push),
    format,
  };
}

function chooseProgress(o: Parsed): BuildProgress {
  if (o.quiet) return quietProgress(process.stderr);
  if (o.progress === 'tty' || (o.progress === 'auto' && process.stdout.isTTY)) return ttyProgress(process.stdout);
  return plainProgress(process.stdout);
}

export async function main(contextArg: string, flags: BuildFlags): Promise<number> {
  // A UsageError (exit 125, docker's hint) is the command line's to print.
  const o = await parseArgs(contextArg, flags);
  // A reader that goes away (`berth build . | head`) must not stop the build halfway, with a
  // step's container left behind: the rest of the output is dropped, the build goes on.
  process.stdout.on('error', () => undefined);
  let context: BuildContext | undefined;
  let secretDir: string | undefined;
  const progress = chooseProgress(o);
  try {
    // build/context.ts: a folder, a tar on stdin, or a Dockerfile alone; .dockerignore applied.
    const { openBuildContext } = await import('./context.js');
    context = await openBuildContext(o.contextArg, o.file !== undefined ? { file: o.file } : {});
    const [{ build }, { LocalImageStore }] = await Promise.all([import('./builder.js'), import('../client/store/image-store.js')]);
    const store = await LocalImageStore.open();
    // An env= secret is a file only while the build runs (0600, in a private temp folder).
    const secretFiles = new Map<string, string>();
    for (const [id, s] of o.secrets) {
      if ('file' in s) secretFiles.set(id, resolve(s.file));
      else {
        secretDir ??= await mkdtemp(join(tmpdir(), 'berth-secrets-'));
        const path = join(secretDir, createHash('sha256').update(id).digest('hex'));
        await writeFile(path, s.value, { mode: 0o600 });
        secretFiles.set(id, path);
      }
    }
    const result = await build({
      secrets: secretFiles,
      dockerfile: context.dockerfile.text,
      dockerfileName: context.dockerfile.name,
      context,
      tags: o.tags,
      buildArgs: o.buildArgs,
      ...(o.target !== undefined ? { target: o.target } : {}),
      noCache: o.noCache,
      pull: o.pull,
      ...(o.platform ? { platform: o.platform } : {}),
      labels: o.labels,
      network: o.network,
      format: o.format,
      progress,
      warn: (line) => void process.stderr.write(`${line}\n`),
      store,
    });
    progress.end();
    if (o.quiet) process.stdout.write(`${result.imageId}\n`);
    else {
      process.stdout.write(`Successfully built ${shortId(result.imageId)}\n`);
      for (const t of o.tags) process.stdout.write(`Successfully tagged ${familiarReference({ ...t, tag: t.tag ?? 'latest' })}\n`);
    }
    if (o.iidfile !== undefined) await writeFile(o.iidfile, result.imageId);
    if (o.push) {
      const push = await import('../client/cli/push.js');
      for (const t of o.tags) {
        const code = await push.pushImage(familiarReference({ ...t, tag: t.tag ?? 'latest' }), { quiet: o.quiet });
        if (code !== 0) return code;
      }
    }
    return 0;
  } catch (err) {
    progress.failed();
    progress.end();
    if (err instanceof Interrupted) {
      process.stderr.write(`berth: ${err.message}\n`);
      return 128 + (err.signal === 'SIGINT' ? 2 : err.signal === 'SIGTERM' ? 15 : 1);
    }
    if (err instanceof RunFailed || err instanceof DockerfileError || err instanceof BuildError) {
      process.stderr.write(`${err instanceof DockerfileError ? '' : 'berth: '}${err.message}\n`);
      return 1;
    }
    const e = err as Error & { name?: string };
    process.stderr.write(`berth: ${e.message}\n`);
    return 1;
  } finally {
    if (secretDir) await rm(secretDir, { recursive: true, force: true });
    await context?.close().catch(() => undefined);
  }
}
