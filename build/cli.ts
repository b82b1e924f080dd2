// `berth build [OPTIONS] CONTEXT`: docker build's flags, the image into the local store, tagged;
// pushed with --push. Output: docker's classic lines (plain), a live view on a terminal (tty),
// or only the image ID (-q). Exit 1 on a failed build (docker's), 125 on a usage error.
import { writeFile } from 'node:fs/promises';
import { bool, list, parseFlags, str, type FlagSpec } from '../runtime/cli-flags.js';
import { UsageError } from '../runtime/process-spec.js';
import type { Platform } from '../oci/manifest.js';
import { familiarReference, parseReference, type ImageReference } from '../oci/reference.js';
import { DockerfileError } from './dockerfile.js';
import { BuildError, shortId } from './builder.js';
import { Interrupted, RunFailed } from './run-step.js';
import { plainProgress, quietProgress, ttyProgress, type BuildProgress } from './progress.js';
import type { ContextSource } from './copy-contract.js';

const FLAGS: FlagSpec[] = [
  { name: 'tag', short: 't', kind: 'list' },
  { name: 'file', short: 'f', kind: 'string' },
  { name: 'build-arg', kind: 'list' },
  { name: 'target', kind: 'string' },
  { name: 'no-cache', kind: 'bool' },
  { name: 'pull', kind: 'bool' },
  { name: 'platform', kind: 'string' },
  { name: 'label', kind: 'list' },
  { name: 'network', kind: 'string' },
  { name: 'progress', kind: 'string' },
  { name: 'quiet', short: 'q', kind: 'bool' },
  { name: 'iidfile', kind: 'string' },
  { name: 'push', kind: 'bool' },
  { name: 'format', kind: 'string' },
  { name: 'help', kind: 'bool' },
];

const USAGE = `Usage: berth build [OPTIONS] PATH | -

Build an image from a Dockerfile (daemonless: RUN steps run in berth's own runtime)

Options:
  -t, --tag list          Name and optionally a tag (NAME[:TAG]); repeatable
  -f, --file string       Name of the Dockerfile (default: PATH/Dockerfile; - for stdin)
      --build-arg list    Set build-time variables (K=V, or K from this environment)
      --target string     Build the stage of this name (and only what it needs)
      --no-cache          Do not use the step cache
      --pull              Pull base images even when stored
      --platform string   os/arch[/variant] of the base images and of the image built
      --label list        Set metadata for the image (K=V)
      --network string    Network of RUN steps: bridge (default), host or none
      --progress string   auto (default: tty on a terminal), plain or tty
  -q, --quiet             Print only the image ID
      --iidfile string    Write the image ID to the file
      --push              Push the tags once built
      --format string     docker (default) or oci: the manifest and config media types
`;

/** build/context.ts's context (folder, tar on stdin, or a Dockerfile alone), as this verb uses it. */
interface OpenedContext extends ContextSource {
  readonly dockerfile: { text: string; name: string };
  close(): Promise<void>;
}

interface Parsed {
  contextArg: string;
  file?: string;
  tags: ImageReference[];
  buildArgs: Map<string, string>;
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

async function parseArgs(argv: string[]): Promise<Parsed | 'help'> {
  const p = parseFlags(argv, FLAGS, false);
  if (bool(p, 'help')) return 'help';
  if (p.operands.length !== 1) throw new UsageError(`"berth build" requires exactly 1 argument.`);
  const tags = list(p, 'tag').map((t) => {
    try {
      return parseReference(t);
    } catch {
      throw new UsageError(`invalid argument "${t}" for "-t, --tag" flag: invalid reference format`);
    }
  });
  if (tags.some((t) => t.digest !== undefined)) throw new UsageError('-t takes NAME[:TAG], not a digest');
  const buildArgs = new Map<string, string>();
  for (const a of list(p, 'build-arg')) {
    const eq = a.indexOf('=');
    if (eq === 0) throw new UsageError(`invalid build argument: ${a}`);
    if (eq < 0) {
      // docker: a name alone takes its value from this environment, and is skipped when unset.
      if (process.env[a] !== undefined) buildArgs.set(a, process.env[a]!);
    } else buildArgs.set(a.slice(0, eq), a.slice(eq + 1));
  }
  const labels: Record<string, string> = {};
  for (const l of list(p, 'label')) {
    const eq = l.indexOf('=');
    labels[eq < 0 ? l : l.slice(0, eq)] = eq < 0 ? '' : l.slice(eq + 1);
  }
  const network = str(p, 'network') ?? 'bridge';
  if (network !== 'none' && network !== 'host' && network !== 'bridge' && network !== 'default') throw new UsageError(`--network: ${network} is not supported for builds (none, host or bridge)`);
  const progress = str(p, 'progress') ?? 'auto';
  if (progress !== 'auto' && progress !== 'plain' && progress !== 'tty') throw new UsageError(`--progress: ${progress} is not one of auto, plain, tty`);
  const format = (str(p, 'format') ?? process.env.BUILDAH_FORMAT ?? 'docker').toLowerCase();
  if (format !== 'docker' && format !== 'oci') throw new UsageError(`--format: ${format} is not one of docker, oci`);
  const platformFlag = str(p, 'platform') ?? process.env.DOCKER_DEFAULT_PLATFORM;
  let platform: Platform | undefined;
  if (platformFlag) {
    const { parsePlatform } = await import('../client/platform.js');
    try {
      platform = parsePlatform(platformFlag);
    } catch (err) {
      throw new UsageError((err as Error).message, false);
    }
  }
  const file = str(p, 'file');
  const target = str(p, 'target');
  const iidfile = str(p, 'iidfile');
  return {
    contextArg: p.operands[0]!,
    ...(file !== undefined ? { file } : {}),
    tags,
    buildArgs,
    ...(target !== undefined ? { target } : {}),
    noCache: bool(p, 'no-cache'),
    pull: bool(p, 'pull'),
    ...(platform ? { platform } : {}),
    labels,
    network: network === 'default' ? 'bridge' : network,
    progress,
    quiet: bool(p, 'quiet'),
    ...(iidfile !== undefined ? { iidfile } : {}),
    push: bool(p, 'push'),
    format,
  };
}

function chooseProgress(o: Parsed): BuildProgress {
  if (o.quiet) return quietProgress(process.stderr);
  if (o.progress === 'tty' || (o.progress === 'auto' && process.stdout.isTTY)) return ttyProgress(process.stdout);
  return plainProgress(process.stdout);
}

export async function main(argv: string[]): Promise<number> {
  let o: Parsed | 'help';
  try {
    o = await parseArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`berth: ${err.message}\n${err.helpHint ? "See 'berth build --help'.\n" : ''}`);
      return 125;
    }
    throw err;
  }
  if (o === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  let context: OpenedContext | undefined;
  const progress = chooseProgress(o);
  try {
    // build/context.ts: a folder, a tar on stdin, or a Dockerfile alone; .dockerignore applied.
    const contextModule = './context.js';
    const { openBuildContext } = (await import(contextModule)) as { openBuildContext(arg: string, opts: { file?: string }): Promise<OpenedContext> };
    context = await openBuildContext(o.contextArg, o.file !== undefined ? { file: o.file } : {});
    const [{ build }, { LocalImageStore }] = await Promise.all([import('./builder.js'), import('../client/store/image-store.js')]);
    const store = await LocalImageStore.open();
    const result = await build({
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
        const code = await push.main([...(o.quiet ? ['-q'] : []), familiarReference({ ...t, tag: t.tag ?? 'latest' })]);
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
    await context?.close().catch(() => undefined);
  }
}
