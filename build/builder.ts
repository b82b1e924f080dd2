// The builder: stages in order (only those the target needs), each instruction a step keyed in
// the step cache (cache.ts), RUN in berth's runtime (run-step.ts), COPY/ADD through build/copy.ts
// (copy-contract.ts), the others as changes of the image config with docker's history entries.
// The image is written to the local store at the end (StoreSink: blobs before the record, tags
// last), so a failed build leaves no image and no tag.
import { createHash } from 'node:crypto';
import { join, posix } from 'node:path';
import type { LocalImageStore } from '../client/store/image-store.js';
import type { Image, ImageConfig, ImageRunConfig, Layer } from '../oci/image.js';
import type { ImageManifest, Platform } from '../oci/manifest.js';
import { MediaType } from '../oci/media-types.js';
import type { ImageReference } from '../oci/reference.js';
import { digestOf } from '../oci/digest.js';
import { StepCache, stepKey, type HistoryEntry, type StepRecord } from './cache.js';
import type { ContextSource, CopyStep, PlanCopy } from './copy-contract.js';
import { DockerfileError, parseDockerfile, parseInstructionText, type Instruction } from './dockerfile.js';
import type { BuiltLayer } from './layer-writer.js';
import { sourceDateEpoch } from './layer-writer.js';
import type { BuildProgress } from './progress.js';
import { rootfsView, type MountedRootfs, type RootfsView } from './rootfs-view.js';
import { RunFailed, runStep, scratchCopy } from './run-step.js';
import { ExpansionError, processWord, processWords, type Vars } from './shell-words.js';
import { argDeclarations, findStage, planStages, PREDEFINED_ARGS, splitKeepingQuotes, type Stage } from './stages.js';

export interface BuildOptions {
  dockerfile: string;
  /** How errors name the Dockerfile (`Dockerfile:7: …`). */
  dockerfileName: string;
  context: ContextSource;
  tags: ImageReference[];
  buildArgs: ReadonlyMap<string, string>;
  target?: string;
  noCache: boolean;
  pull: boolean;
  platform?: Platform;
  labels: Readonly<Record<string, string>>;
  network: 'none' | 'host' | 'bridge';
  format: 'docker' | 'oci';
  progress: BuildProgress;
  /** `--secret id=…,src=…`: files RUN --mount=type=secret binds read-only (never in a layer or a cache key). */
  secrets?: ReadonlyMap<string, string>;
  /** Notes for the user that are not build output (`# syntax` ignored, unused build args). */
  warn: (line: string) => void;
  store: LocalImageStore;
}

export interface BuildResult {
  /** The image ID: the config's digest. */
  imageId: string;
  /** The manifest's digest (what `repo@digest` names). */
  digest: string;
}

/** A user error of the build (bad Dockerfile, failed RUN, missing file): printed without a stack. */
export class BuildError extends Error {}

const DEFAULT_SHELL = ['/bin/sh', '-c'];
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** An image as a stage builds it: layers in the store, the config document, the cache chain key. */
interface StageState {
  layers: BuiltLayer[];
  config: ImageConfig;
  key: string;
  /** FROM an image: its ID (config digest), as docker prints it after the FROM step. */
  baseId?: string;
}

/** Docker's and OCI's names for the same layer bytes. */
const TO_DOCKER: Record<string, string> = { [MediaType.OciLayerGzip]: MediaType.DockerLayerGzip, 'application/vnd.oci.image.layer.v1.tar': 'application/vnd.docker.image.rootfs.diff.tar' };
const TO_OCI: Record<string, string> = Object.fromEntries(Object.entries(TO_DOCKER).map(([k, v]) => [v, k]));

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

function now(): string {
  return (sourceDateEpoch() ?? new Date()).toISOString();
}

/** Go's %q of a string list, as docker's history shows CMD/ENTRYPOINT: ["sh" "-c" "x"]. */
function goQuoted(list: string[]): string {
  return `[${list.map((s) => JSON.stringify(s)).join(' ')}]`;
}

/** Go durations of HEALTHCHECK flags (`30s`, `1m30s`, `500ms`) in nanoseconds. */
function parseDuration(s: string, flag: string, line: number, file: string): number {
  const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let total = 0;
  let rest = s;
  if (rest === '0') return 0;
  while (rest.length > 0) {
    const m = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/.exec(rest);
    if (!m) throw new DockerfileError(file, line, `invalid duration ${JSON.stringify(s)} for --${flag}`);
    total += Number(m[1]) * units[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return Math.round(total);
}

/** BuildKit's automatic platform ARGs: in FROM lines, and in a stage once declared (`ARG TARGETARCH`). */
const PLATFORM_ARGS = ['BUILDPLATFORM', 'BUILDOS', 'BUILDARCH', 'BUILDVARIANT', 'TARGETPLATFORM', 'TARGETOS', 'TARGETARCH', 'TARGETVARIANT'];

async function platformArgs(target: Platform | undefined): Promise<Map<string, string>> {
  const { hostPlatform, formatPlatform } = await import('../client/platform.js');
  const build = hostPlatform();
  const t = target ?? build;
  return new Map([
    ['BUILDPLATFORM', formatPlatform(build)],
    ['BUILDOS', build.os],
    ['BUILDARCH', build.architecture],
    ['BUILDVARIANT', build.variant ?? ''],
    ['TARGETPLATFORM', formatPlatform(t)],
    ['TARGETOS', t.os],
    ['TARGETARCH', t.architecture],
    ['TARGETVARIANT', t.variant ?? ''],
  ]);
}

export class Builder {
  private readonly cache: StepCache;
  private readonly tmpRoot: string;
  private readonly results = new Map<number, StageState>();
  private stages: Stage[] = [];
  private escape = '\\';
  private stepNo = 0;
  private total = 0;
  private planCopy: PlanCopy | undefined;
  private readonly usedArgs = new Set<string>();

  constructor(private readonly o: BuildOptions) {
    this.cache = new StepCache(join(o.store.root, 'build', 'cache'), o.store);
    this.tmpRoot = join(o.store.root, 'build', 'tmp');
  }

  async build(): Promise<BuildResult> {
    const o = this.o;
    const file = o.dockerfileName;
    const df = parseDockerfile(o.dockerfile, file);
    this.escape = df.escape;
    if (df.syntax !== undefined) o.warn(`# syntax=${df.syntax} ignored: berth builds with its own Dockerfile frontend`);
    // Meta args (before the first FROM): usable in FROM lines, and as defaults of a stage's ARG.
    const meta = await platformArgs(o.platform);
    for (const ins of df.instructions) {
      if (ins.keyword === 'FROM') break;
      if (ins.keyword !== 'ARG') continue;
      for (const d of argDeclarations(ins)) {
        this.usedArgs.add(d.name);
        const v = o.buildArgs.get(d.name) ?? (d.value !== undefined ? processWord(d.value, meta, this.escape) : undefined);
        if (v !== undefined) meta.set(d.name, v);
      }
    }
    const plan = planStages(df, meta, o.target, file);
    this.stages = plan.stages;
    this.total = plan.needed.reduce((n, i) => n + 1 + plan.stages[i]!.instructions.length, 0);
    for (const i of plan.needed) this.results.set(i, await this.buildStage(plan.stages[i]!, meta));
    const unused = [...o.buildArgs.keys()].filter((k) => !this.usedArgs.has(k) && !PREDEFINED_ARGS.includes(k) && !PLATFORM_ARGS.includes(k));
    if (unused.length > 0) o.warn(`[Warning] One or more build-args [${unused.join(' ')}] were not consumed`);
    const final = this.results.get(plan.target.index)!;
    if (Object.keys(o.labels).length > 0) {
      const run = (final.config.config ??= {});
      run.Labels = { ...(run.Labels ?? {}), ...o.labels };
    }
    return this.writeImage(final);
  }

  // ---- stages ------------------------------------------------------------------------------

  private async buildStage(stage: Stage, meta: ReadonlyMap<string, string>): Promise<StageState> {
    const o = this.o;
    this.announce(stage.from.original);
    const state = await this.baseState(stage);
    o.progress.note(` ---> ${shortId(state.baseId ?? configDigest(state.config))}`);
    // ARGs declared in this stage, with their values; meta args only once redeclared (docker's scope rule).
    const args = new Map<string, string>();
    const env = () => new Map((state.config.config?.Env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
    const vars = (): Vars => new Map([...args, ...env()]);
    const ctx: StepContext = { stage, state, args, meta, vars, cmdSet: false };
    // ONBUILD triggers of the base run first, then are cleared (docker: they fire once).
    const triggers = state.config.config?.OnBuild ?? [];
    if (Array.isArray(triggers) && triggers.length > 0) {
      o.progress.note(`# Executing ${triggers.length} build trigger${triggers.length > 1 ? 's' : ''}`);
      state.config.config!.OnBuild = null;
      for (const t of triggers as string[]) await this.step(ctx, parseInstructionText(t, stage.from.line, o.dockerfileName, this.escape), true);
    }
    for (const ins of stage.instructions) {
      this.announce(ins.original);
      await this.step(ctx, ins, false);
    }
    return state;
  }

  private announce(text: string): void {
    this.stepNo++;
    this.o.progress.step(this.stepNo, this.total, text);
  }

  private async baseState(stage: Stage): Promise<StageState> {
    const o = this.o;
    const platform = stage.platform !== undefined ? await this.parsePlatform(stage.platform, stage.from.line) : o.platform;
    if (stage.base.toLowerCase() === 'scratch') {
      const p = platform ?? (await import('../client/platform.js')).hostPlatform();
      const config: ImageConfig = {
        architecture: p.architecture,
        os: p.os,
        ...(p.variant ? { variant: p.variant } : {}),
        config: { Env: [DEFAULT_PATH] },
        rootfs: { type: 'layers', diff_ids: [] },
        history: [],
      };
      return { layers: [], config, key: stepKey('scratch', JSON.stringify(p)) };
    }
    const earlier = findStage(stage.base, this.stages, stage.index);
    if (earlier) {
      const s = this.results.get(earlier.index)!;
      return { layers: [...s.layers], config: clone(s.config), key: s.key };
    }
    const { image, config } = await this.baseImage(stage.base, platform, stage.from.line);
    return { layers: baseLayers(image, config), config: clone(config), key: stepKey('image', image.digest), baseId: image.config.digest };
  }

  /** An image named by FROM or COPY --from: from the local store, pulled when missing or with --pull; its blobs copied into the store. */
  private async baseImage(ref: string, platform: Platform | undefined, line: number): Promise<{ image: Image; config: ImageConfig }> {
    const o = this.o;
    const { resolveImage } = await import('../runtime/image-sources.js');
    const p = platform ? { platform } : {};
    let resolved;
    try {
      if (o.pull && !ref.startsWith('oci:')) await this.pullImage(ref, platform);
      resolved = await resolveImage(ref, p);
    } catch (err) {
      throw new BuildError(`${o.dockerfileName}:${line}: ${(err as Error).message}`);
    }
    const [{ copy }, { StoreSink }] = await Promise.all([import('../client/image/copy.js'), import('../client/image/store-image.js')]);
    // An image from an OCI layout (oci:DIR) has its blobs there: the built image needs them here.
    await copy(resolved.image, new StoreSink(o.store));
    return { image: resolved.image, config: resolved.config };
  }

  private pulled = new Set<string>();

  private async pullImage(input: string, platform?: Platform): Promise<void> {
    if (this.pulled.has(input)) return;
    this.pulled.add(input);
    const [{ openRegistryContext }, { pull }, { Progress }, { parseReference }] = await Promise.all([
      import('../client/cli/context.js'),
      import('../client/pull.js'),
      import('../client/progress.js'),
      import('../oci/reference.js'),
    ]);
    const { transport, store } = await openRegistryContext();
    try {
      await pull(transport, store, parseReference(input), { progress: new Progress(process.stderr, {}), ...(platform ? { platform } : {}) });
    } finally {
      await transport.close();
    }
  }

  private async parsePlatform(s: string, line: number): Promise<Platform> {
    const { parsePlatform } = await import('../client/platform.js');
    try {
      return parsePlatform(s);
    } catch (err) {
      throw new DockerfileError(this.o.dockerfileName, line, (err as Error).message);
    }
  }

  // ---- steps -------------------------------------------------------------------------------

  private async step(ctx: StepContext, ins: Instruction, trigger: boolean): Promise<void> {
    const { state } = ctx;
    const run = (state.config.config ??= {});
    const file = this.o.dockerfileName;
    const fail = (msg: string): never => {
      throw new DockerfileError(file, ins.line, msg);
    };
    const words = () => processWords(ins.args, ctx.vars(), this.escape);
    const word = () => processWord(ins.args, ctx.vars(), this.escape);
    const shell = (run.Shell as string[] | undefined) ?? DEFAULT_SHELL;
    const nop = (text: string) => `${shell.join(' ')} #(nop)  ${text}`;
    try {
      switch (ins.keyword) {
        case 'ARG': {
          const shown: string[] = [];
          for (const d of argDeclarations(ins)) {
            this.usedArgs.add(d.name);
            const dflt = d.value !== undefined ? processWord(d.value, ctx.vars(), this.escape) : ctx.meta.get(d.name);
            const v = this.o.buildArgs.get(d.name) ?? dflt;
            if (v !== undefined) ctx.args.set(d.name, v);
            else ctx.args.delete(d.name);
            shown.push(d.value !== undefined ? `${d.name}=${dflt}` : d.name);
          }
          return this.metaStep(ctx, nop(`ARG ${shown.join(' ')}`));
        }
        case 'ENV': {
          const pairs = keyValues(ins, ctx.vars(), this.escape, file);
          const envMap = new Map((run.Env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
          for (const [k, v] of pairs) envMap.set(k, v);
          run.Env = [...envMap].map(([k, v]) => `${k}=${v}`);
          return this.metaStep(ctx, nop(`ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`));
        }
        case 'LABEL': {
          const pairs = keyValues(ins, ctx.vars(), this.escape, file);
          run.Labels = { ...(run.Labels ?? {}), ...Object.fromEntries(pairs) };
          return this.metaStep(ctx, nop(`LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`));
        }
        case 'MAINTAINER': {
          state.config.author = word();
          return this.metaStep(ctx, nop(`MAINTAINER ${state.config.author}`));
        }
        case 'WORKDIR': {
          const dir = word();
          run.WorkingDir = posix.resolve(run.WorkingDir || '/', dir);
          return this.metaStep(ctx, nop(`WORKDIR ${run.WorkingDir}`));
        }
        case 'USER': {
          run.User = word();
          if (run.User === '') fail('USER requires at least one argument');
          return this.metaStep(ctx, nop(`USER ${run.User}`));
        }
        case 'CMD': {
          run.Cmd = ins.json ?? [...shell, ins.args];
          ctx.cmdSet = true;
          return this.metaStep(ctx, nop(`CMD ${goQuoted(run.Cmd)}`));
        }
        case 'ENTRYPOINT': {
          run.Entrypoint = ins.json ?? [...shell, ins.args];
          // docker: ENTRYPOINT drops a CMD inherited from the base; one set in this stage stays.
          if (!ctx.cmdSet) run.Cmd = null;
          return this.metaStep(ctx, nop(`ENTRYPOINT ${goQuoted(run.Entrypoint)}`));
        }
        case 'EXPOSE': {
          const ports = { ...(run.ExposedPorts ?? {}) };
          const added: string[] = [];
          for (const w of words()) {
            const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(w);
            if (!m) fail(`invalid containerPort: ${w}`);
            const [lo, hi] = [Number(m![1]), Number(m![2] ?? m![1])];
            if (hi < lo || hi > 65535) fail(`invalid port range: ${w}`);
            for (let p = lo; p <= hi; p++) {
              const key = `${p}/${(m![3] ?? 'tcp').toLowerCase()}`;
              ports[key] = {};
              added.push(key);
            }
          }
          run.ExposedPorts = ports;
          return this.metaStep(ctx, nop(`EXPOSE ${added.join(' ')}`));
        }
        case 'VOLUME': {
          const vols = ins.json ?? words();
          if (vols.some((v) => v.trim() === '')) fail('VOLUME specified can not be an empty string');
          run.Volumes = { ...(run.Volumes ?? {}), ...Object.fromEntries(vols.map((v) => [v, {}])) };
          return this.metaStep(ctx, nop(`VOLUME ${goQuoted(vols)}`));
        }
        case 'STOPSIGNAL': {
          const sig = word();
          if (!/^(SIG)?[A-Z0-9+-]+$/i.test(sig)) fail(`Invalid signal: ${sig}`);
          run.StopSignal = sig;
          return this.metaStep(ctx, nop(`STOPSIGNAL ${sig}`));
        }
        case 'SHELL': {
          if (!ins.json || ins.json.length === 0) fail('SHELL requires the arguments to be in JSON form');
          run.Shell = ins.json;
          return this.metaStep(ctx, nop(`SHELL ${goQuoted(ins.json!)}`));
        }
        case 'HEALTHCHECK': {
          run.Healthcheck = this.healthcheck(ins);
          return this.metaStep(ctx, nop(`HEALTHCHECK ${[...ins.flags.map((f) => `--${f.name}=${f.value}`), ins.args].join(' ')}`));
        }
        case 'ONBUILD': {
          if (trigger) fail('ONBUILD triggers cannot themselves be ONBUILD');
          run.OnBuild = [...((run.OnBuild as string[] | null | undefined) ?? []), ins.args];
          return this.metaStep(ctx, nop(`ONBUILD ${ins.args}`));
        }
        case 'RUN':
          return await this.runInstruction(ctx, ins, shell);
        case 'COPY':
        case 'ADD':
          return await this.copyInstruction(ctx, ins);
        default:
          fail(`${ins.keyword} is not allowed here`);
      }
    } catch (err) {
      if (err instanceof DockerfileError || err instanceof RunFailed || err instanceof BuildError) throw err;
      if (err instanceof ExpansionError) throw new DockerfileError(file, ins.line, err.message);
      throw err;
    }
  }

  /** HEALTHCHECK's config; CMD-SHELL runs under the container's default shell at run time (docker's rule, not SHELL's). */
  private healthcheck(ins: Instruction): Record<string, unknown> {
    const file = this.o.dockerfileName;
    const m = /^(\S+)\s*([\s\S]*)$/.exec(ins.args);
    const kind = (m?.[1] ?? '').toUpperCase();
    if (kind === 'NONE') {
      if (m?.[2] || ins.flags.length > 0) throw new DockerfileError(file, ins.line, 'HEALTHCHECK NONE takes no arguments');
      return { Test: ['NONE'] };
    }
    if (kind !== 'CMD') throw new DockerfileError(file, ins.line, `Unknown type "${kind}" in HEALTHCHECK (try CMD)`);
    const rest = (m?.[2] ?? '').trim();
    if (rest === '') throw new DockerfileError(file, ins.line, 'Missing command after HEALTHCHECK CMD');
    let json: string[] | undefined;
    try {
      const v: unknown = JSON.parse(rest);
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) json = v as string[];
    } catch {
      json = undefined;
    }
    const hc: Record<string, unknown> = { Test: json ? ['CMD', ...json] : ['CMD-SHELL', rest] };
    const names: Record<string, string> = { interval: 'Interval', timeout: 'Timeout', 'start-period': 'StartPeriod', 'start-interval': 'StartInterval' };
    for (const f of ins.flags) {
      if (f.name === 'retries') {
        const n = Number(f.value);
        if (!Number.isInteger(n) || n < 0) throw new DockerfileError(file, ins.line, `--retries must be a non-negative integer, not ${f.value}`);
        hc.Retries = n;
      } else hc[names[f.name]!] = parseDuration(f.value, f.name, ins.line, file);
    }
    return hc;
  }

  /** A step that only changes the config: its history entry (time kept in the cache, so rebuilds give the same ID). */
  private async metaStep(ctx: StepContext, createdBy: string): Promise<void> {
    const key = stepKey(ctx.state.key, 'meta', createdBy);
    await this.cached(ctx, key, async () => ({ history: { created: now(), created_by: createdBy, empty_layer: true } }));
  }

  /** Looks `key` up (unless --no-cache), else computes and records the step; applies it to the state. */
  private async cached(ctx: StepContext, key: string, compute: () => Promise<StepRecord>): Promise<void> {
    let rec = this.o.noCache ? undefined : await this.cache.get(key);
    if (rec) this.o.progress.note(' ---> Using cache');
    else {
      rec = await compute();
      await this.cache.put(key, rec);
    }
    const { state } = ctx;
    if (rec.layer) {
      state.layers.push(rec.layer);
      (state.config.rootfs ??= { type: 'layers', diff_ids: [] }).diff_ids.push(rec.layer.diffId);
    }
    const history = rec.history;
    if (!rec.layer) history.empty_layer = true;
    (state.config.history ??= []).push(history);
    if (history.created) state.config.created = history.created;
    state.key = key;
    this.o.progress.note(` ---> ${shortId(configDigest(state.config))}`);
  }

  /** ARG values a RUN sees as environment, and docker's `|N K=V ` prefix of its history (part of the cache key). */
  private runArgs(ctx: StepContext): { env: string[]; prefix: string } {
    const declared = [...ctx.args].map(([k, v]) => `${k}=${v}`);
    // The predefined proxy args reach RUN without an ARG line, and stay out of history.
    const proxies = PREDEFINED_ARGS.filter((k) => this.o.buildArgs.has(k) && !ctx.args.has(k)).map((k) => `${k}=${this.o.buildArgs.get(k)}`);
    return { env: [...declared, ...proxies], prefix: declared.length > 0 ? `|${declared.length} ${declared.join(' ')} ` : '' };
  }

  private async runInstruction(ctx: StepContext, ins: Instruction, shell: string[]): Promise<void> {
    const o = this.o;
    const file = o.dockerfileName;
    let args: string[];
    if (ins.json) args = ins.json;
    else if (ins.heredocs.length === 1 && ins.args.trim() === `<<${ins.heredocs[0]!.name}` || (ins.heredocs.length === 1 && /^<<-?["']?\w+["']?$/.test(ins.args.trim()))) {
      // `RUN <<EOF` alone: the body is the script (BuildKit), under the shell or its own #! line.
      const body = ins.heredocs[0]!.content;
      args = body.startsWith('#!') ? [...shell, `cat > /.berth-heredoc <<'BERTH_EOF'\n${body}BERTH_EOF\nchmod +x /.berth-heredoc && /.berth-heredoc; s=$?; rm -f /.berth-heredoc; exit $s`] : [...shell, body];
    } else if (ins.heredocs.length > 0) {
      // A command with heredocs: the shell reads them itself from the whole text.
      args = [...shell, `${ins.args}\n${ins.heredocs.map((h) => `${h.content}${h.name}\n`).join('')}`];
    } else args = [...shell, ins.args];
    const network = this.runNetwork(ins);
    const mounts = ins.flags.filter((f) => f.name === 'mount').map((f) => parseMount(f.value, ins.line, file, ctx.vars(), this.escape));
    const { env, prefix } = this.runArgs(ctx);
    const createdBy = `${prefix}${args.join(' ')}`;
    const key = stepKey(ctx.state.key, 'run', createdBy, JSON.stringify(mounts), ...(await Promise.all(mounts.map((m) => this.mountInput(m, ctx, ins.line)))));
    await this.cached(ctx, key, async () => {
      const held: Array<{ release(): Promise<void> }> = [];
      let container = '';
      try {
        const hostMounts = [];
        for (const m of mounts) {
          const hm = await this.hostMount(m, ctx, held, ins.line);
          if (hm) hostMounts.push(hm);
        }
        const image = this.imageOf(ctx.state);
        const layer = await runStep(
          {
            image: image.image,
            config: ctx.state.config,
            imageId: image.id,
            args,
            argEnv: env,
            network,
            mounts: hostMounts,
            output: o.progress.output,
            store: o.store,
          },
          (id) => {
            container = id.slice(0, 12);
            o.progress.note(` ---> Running in ${container}`);
          },
        );
        o.progress.note(`Removing intermediate container ${container}`);
        return { ...(layer ? { layer } : {}), history: { created: now(), created_by: createdBy, ...(layer ? {} : { empty_layer: true }) } };
      } finally {
        for (const h of held.reverse()) await h.release().catch(() => undefined);
      }
    });
  }

  private runNetwork(ins: Instruction): 'none' | 'host' | 'bridge' {
    const flag = ins.flags.find((f) => f.name === 'network')?.value;
    if (flag === undefined || flag === 'default') return this.o.network;
    if (flag === 'none' || flag === 'host') return flag;
    throw new DockerfileError(this.o.dockerfileName, ins.line, `unsupported network mode ${JSON.stringify(flag)} (none, host or default)`);
  }

  /**
   * What a bind mount shows, for the step's cache key: the content digest of a context folder,
   * or the chain key of a stage (its layers' inputs) or the digest of an image, with the path.
   */
  private async mountInput(m: RunMount, ctx: StepContext, line: number): Promise<string> {
    if (m.type !== 'bind') return '';
    if (m.from === undefined) {
      const dir = this.o.context.dir;
      if (dir === undefined) return '';
      const source = safeJoin(dir, m.source ?? '/');
      const { treeDigest } = await import('./tree-digest.js');
      return treeDigest(source).catch(() => ''); // a missing source fails when the step runs, with its message
    }
    const earlier = findStage(m.from, this.stages, ctx.stage.index);
    if (earlier) return `${this.results.get(earlier.index)?.key ?? ''}:${m.source ?? '/'}`;
    const { image } = await this.baseImage(m.from, this.o.platform, line);
    return `${image.digest}:${m.source ?? '/'}`;
  }

  /** A RUN --mount as a host dir: the cache folder of its id, or a bind of the context or of a stage/image. */
  private async hostMount(m: RunMount, ctx: StepContext, held: Array<{ release(): Promise<void> }>, line: number): Promise<{ source: string; target: string; readonly: boolean } | undefined> {
    const { chown, mkdir, mkdtemp, rm, stat } = await import('node:fs/promises');
    if (m.type === 'cache') {
      const id = createHash('sha256').update(m.id ?? m.target).digest('hex');
      const dir = join(this.o.store.root, 'build', 'mounts', id);
      if (!(await stat(dir).catch(() => undefined))) {
        await mkdir(dir, { recursive: true, mode: m.mode ?? 0o755 });
        if (m.uid !== undefined || m.gid !== undefined) await chown(dir, m.uid ?? 0, m.gid ?? 0);
      }
      return { source: dir, target: m.target, readonly: m.readonly };
    }
    if (m.type === 'tmpfs') {
      // An empty folder of its own, thrown away after the step (berth mounts no tmpfs: same view).
      await mkdir(this.tmpRoot, { recursive: true });
      const dir = await mkdtemp(join(this.tmpRoot, 'tmpfs-'));
      held.push({ release: () => rm(dir, { recursive: true, force: true }) });
      return { source: dir, target: m.target, readonly: false };
    }
    if (m.type === 'secret') {
      const path = this.o.secrets?.get(m.id!);
      if (path === undefined) {
        if (m.required) throw new DockerfileError(this.o.dockerfileName, line, `secret ${m.id} not found: give it with --secret id=${m.id},src=FILE`);
        return undefined;
      }
      return { source: path, target: m.target, readonly: true };
    }
    let root = this.o.context.dir;
    if (m.from === undefined && root === undefined) throw new DockerfileError(this.o.dockerfileName, line, 'RUN --mount=type=bind needs a build context (the Dockerfile came alone on stdin)');
    if (m.from !== undefined) {
      const view = await this.viewOf(m.from, ctx.stage, line);
      const mounted: MountedRootfs = await view.mount();
      held.push(mounted);
      root = mounted.path;
    }
    const source = safeJoin(root!, m.source ?? '/');
    if (!(await stat(source).catch(() => undefined))) throw new DockerfileError(this.o.dockerfileName, line, `failed to compute cache key: "${m.source ?? '/'}" not found`);
    if (!m.readonly) {
      // rw binds: the command may write, the writes are thrown away (BuildKit's rule).
      const copy = await scratchCopy(source, this.tmpRoot);
      held.push(copy);
      return { source: copy.dir, target: m.target, readonly: false };
    }
    return { source, target: m.target, readonly: true };
  }

  private async copyInstruction(ctx: StepContext, ins: Instruction): Promise<void> {
    const o = this.o;
    // build/copy.ts holds COPY and ADD; loaded only when a Dockerfile copies.
    this.planCopy ??= (await import('./copy.js')).planCopy;
    const state = ctx.state;
    const view = rootfsView(() => this.unpacked(state.layers), this.tmpRoot);
    const step: CopyStep = {
      instruction: ins,
      escape: this.escape,
      vars: ctx.vars(),
      workdir: state.config.config?.WorkingDir || '/',
      rootfs: view,
      from: (ref) => this.viewOf(ref, ctx.stage, ins.line),
      context: o.context,
      store: o.store,
    };
    // COPY/ADD's own errors (a missing file, a path outside the context) get the line.
    const atLine = (err: unknown): never => {
      if (err instanceof DockerfileError || err instanceof BuildError || !(err instanceof Error)) throw err;
      throw new BuildError(`${o.dockerfileName}:${ins.line}: ${err.message}`);
    };
    const plan = await this.planCopy(step).catch(atLine);
    try {
      const shown = processWords(ins.args, ctx.vars(), this.escape).join(' ');
      const createdBy = `${(state.config.config?.Shell as string[] | undefined)?.join(' ') ?? DEFAULT_SHELL.join(' ')} #(nop) ${ins.keyword} ${shown}`;
      const key = stepKey(state.key, ins.keyword.toLowerCase(), plan.cacheInput);
      await this.cached(ctx, key, async () => {
        const layer = await plan.build().catch(atLine);
        return { ...(layer ? { layer } : {}), history: { created: now(), created_by: createdBy, ...(layer ? {} : { empty_layer: true }) } };
      });
    } finally {
      await plan.release();
    }
  }

  /** The filesystem of an earlier stage (built by now) or of an image, for COPY --from and RUN --mount from=. */
  private async viewOf(ref: string, stage: Stage, line: number): Promise<RootfsView> {
    const earlier = findStage(ref, this.stages, stage.index);
    if (earlier) {
      const s = this.results.get(earlier.index);
      if (!s) throw new BuildError(`${this.o.dockerfileName}:${line}: stage ${ref} was not built`);
      const layers = [...s.layers];
      return rootfsView(() => this.unpacked(layers), this.tmpRoot);
    }
    let base;
    try {
      base = await this.baseImage(ref, this.o.platform, line);
    } catch (err) {
      // docker's rule: a --from that names no earlier stage is an image reference.
      throw new BuildError(`${(err as Error).message} (--from=${ref} names no stage before line ${line} either)`);
    }
    const layers = baseLayers(base.image, base.config);
    return rootfsView(() => this.unpacked(layers), this.tmpRoot);
  }

  /** Overlay lower dirs of `layers` (runtime/layer-cache.ts: unpacked once per digest). */
  private async unpacked(layers: readonly BuiltLayer[]): Promise<string[]> {
    const [{ ensureLayers }, { RuntimeLayout }] = await Promise.all([import('../runtime/layer-cache.js'), import('../runtime/runtime-layout.js')]);
    return ensureLayers(new RuntimeLayout(this.o.store.root), this.storeLayers(layers));
  }

  private storeLayers(layers: readonly BuiltLayer[]): Layer[] {
    return layers.map((l) => storeLayer(this.o.store, l, l.mediaType));
  }

  /** The state as an Image of the model (what createContainer runs), and its ID. */
  private imageOf(state: StageState): { image: Image; id: string } {
    const configBytes = Buffer.from(JSON.stringify(state.config));
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: digestOf(configBytes), size: configBytes.length },
      layers: state.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    };
    return { image: builtImageSync(manifest, configBytes, this.storeLayers(state.layers)), id: digestOf(configBytes) };
  }

  private async writeImage(state: StageState): Promise<BuildResult> {
    const o = this.o;
    const docker = o.format === 'docker';
    const config = clone(state.config);
    config.created ??= now();
    // Healthcheck, Shell and OnBuild stay in an OCI config too (it tolerates unknown fields;
    // buildah drops them): the image behaves the same whichever format it is pushed in.
    const configBytes = Buffer.from(JSON.stringify(config));
    const layerType = (t: string) => (docker ? (TO_DOCKER[t] ?? t) : (TO_OCI[t] ?? t));
    const layers = state.layers.map((l) => storeLayer(o.store, l, layerType(l.mediaType)));
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: docker ? MediaType.DockerManifest : MediaType.OciManifest,
      config: { mediaType: docker ? MediaType.DockerConfig : MediaType.OciConfig, digest: digestOf(configBytes), size: configBytes.length },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    };
    const [{ copy }, { StoreSink }] = await Promise.all([import('../client/image/copy.js'), import('../client/image/store-image.js')]);
    const image = builtImageSync(manifest, configBytes, layers);
    const sink = new StoreSink(o.store);
    try {
      await copy(image, sink);
      await sink.commit([image], o.tags, image.digest);
    } catch (err) {
      await sink.rollback();
      throw err;
    }
    return { imageId: manifest.config.digest, digest: image.digest };
  }
}

interface StepContext {
  stage: Stage;
  state: StageState;
  /** ARGs declared in the stage, with values (unset ones are absent). */
  args: Map<string, string>;
  meta: ReadonlyMap<string, string>;
  vars: () => Vars;
  /** Whether CMD was set in this stage (ENTRYPOINT keeps it then). */
  cmdSet: boolean;
}

interface RunMount {
  type: 'cache' | 'bind' | 'tmpfs' | 'secret';
  target: string;
  id?: string;
  source?: string;
  from?: string;
  readonly: boolean;
  mode?: number;
  uid?: number;
  gid?: number;
  /** secret: fail when the build was given no such secret (default: the step runs without it). */
  required?: boolean;
}

/**
 * `--mount=type=cache,target=/x[,id=…][,ro][,mode=…][,uid=…][,gid=…]`, `type=bind,target=/x[,source=…][,from=…][,rw]`,
 * `type=tmpfs,target=/x`, `type=secret,id=…[,target=…][,required]` (BuildKit's mount syntax).
 */
function parseMount(spec: string, line: number, file: string, vars: Vars, escape: string): RunMount {
  const kv = new Map<string, string>();
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    kv.set((eq < 0 ? part : part.slice(0, eq)).toLowerCase(), eq < 0 ? 'true' : processWord(part.slice(eq + 1), vars, escape));
  }
  const type = kv.get('type') ?? 'bind';
  if (type !== 'cache' && type !== 'bind' && type !== 'tmpfs' && type !== 'secret') throw new DockerfileError(file, line, `RUN --mount type=${type} is not supported (cache, bind, tmpfs and secret are)`);
  let target = kv.get('target') ?? kv.get('dst') ?? kv.get('destination');
  if (type === 'secret') {
    const id = kv.get('id') ?? (target ? posix.basename(target) : undefined);
    if (!id) throw new DockerfileError(file, line, 'RUN --mount=type=secret needs an id or a target');
    kv.set('id', id);
    target ??= `/run/secrets/${id}`;
  }
  if (!target) throw new DockerfileError(file, line, 'RUN --mount needs a target');
  if (!target.startsWith('/')) throw new DockerfileError(file, line, `RUN --mount target must be an absolute path: ${target}`);
  const flag = (k: string) => kv.has(k) && kv.get(k) !== 'false';
  const readonly = type === 'bind' || type === 'secret' ? !(flag('rw') || flag('readwrite')) : flag('ro') || flag('readonly');
  const mode = kv.get('mode');
  const num = (k: string) => (kv.has(k) && /^\d+$/.test(kv.get(k)!) ? { [k]: Number(kv.get(k)) } : {});
  return {
    type,
    ...num('uid'),
    ...num('gid'),
    ...(type === 'secret' && flag('required') ? { required: true } : {}),
    target: posix.normalize(target),
    ...(kv.has('id') ? { id: kv.get('id')! } : {}),
    ...(kv.has('source') || kv.has('src') ? { source: kv.get('source') ?? kv.get('src')! } : {}),
    ...(kv.has('from') ? { from: kv.get('from')! } : {}),
    readonly,
    ...(mode !== undefined && /^[0-7]{3,4}$/.test(mode) ? { mode: parseInt(mode, 8) } : {}),
  };
}

/** `root` + `rel`, never above `root` (`..` are resolved inside it, as docker resolves context paths). */
function safeJoin(root: string, rel: string): string {
  return join(root, posix.resolve('/', rel));
}

/** `ENV/LABEL k=v k2="v 2"`, or the legacy `ENV k v with spaces` (one pair). */
function keyValues(ins: Instruction, vars: Vars, escape: string, file: string): Array<[string, string]> {
  const raw = splitKeepingQuotes(ins.args, escape);
  if (raw.length === 0) throw new DockerfileError(file, ins.line, `${ins.keyword} requires at least one argument`);
  if (!raw[0]!.includes('=')) {
    // Legacy form: the first word is the name, the rest of the line the value.
    if (ins.keyword === 'LABEL' || raw.length < 2) throw new DockerfileError(file, ins.line, `${ins.keyword} names can not be blank or must have a value: ${ins.args}`);
    const rest = ins.args.slice(ins.args.indexOf(raw[0]!) + raw[0]!.length).trim();
    return [[processWord(raw[0]!, vars, escape), processWord(rest, vars, escape)]];
  }
  return raw.map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) throw new DockerfileError(file, ins.line, `Syntax error - can't find = in "${w}". Must be of the form: name=value`);
    return [processWord(w.slice(0, eq), vars, escape), processWord(w.slice(eq + 1), vars, escape)];
  });
}

function configDigest(config: ImageConfig): string {
  return digestOf(Buffer.from(JSON.stringify(config)));
}

export function shortId(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

/** A base image's layers with their diff_ids (from its config, image-spec/config.md rootfs). */
function baseLayers(image: Image, config: ImageConfig): BuiltLayer[] {
  const diffIds = config.rootfs?.diff_ids ?? [];
  return image.layers.map((l, i) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType, diffId: l.diffId ?? diffIds[i] ?? '' }));
}

let storeReaderMod: typeof import('../client/image/store-image.js') | undefined;
let manifestImageMod: typeof import('../client/image/manifest-image.js') | undefined;

/** Loads the image-model modules the synchronous helpers below use. */
export async function loadImageModel(): Promise<void> {
  [storeReaderMod, manifestImageMod] = await Promise.all([import('../client/image/store-image.js'), import('../client/image/manifest-image.js')]);
}

function storeLayer(store: LocalImageStore, l: BuiltLayer, mediaType: string): Layer {
  const blob = manifestImageMod!.blobOf({ digest: l.digest, size: l.size, mediaType }, storeReaderMod!.storeReader(store), `layer ${l.digest}`);
  return { ...blob, open: blob.open, ...(l.diffId ? { diffId: l.diffId } : {}) };
}

function builtImageSync(manifest: ImageManifest, configBytes: Buffer, layers: readonly Layer[]): Image {
  return manifestImageMod!.builtImage(manifest, configBytes, layers);
}

export async function build(o: BuildOptions): Promise<BuildResult> {
  await loadImageModel();
  return new Builder(o).build();
}

export type { ImageRunConfig, HistoryEntry };
