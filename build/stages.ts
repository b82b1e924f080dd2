// A Dockerfile's stages: the ARGs before the first FROM (meta args, usable in FROM lines), each
// FROM with its instructions, names (`AS name`), and which stages a target needs (FROM an earlier
// stage, COPY --from, RUN --mount from=): only those are built, as BuildKit does.
import { DockerfileError, type Instruction, type ParsedDockerfile } from './dockerfile.js';
import { processWord, processWords, type Vars } from './shell-words.js';

export interface Stage {
  index: number;
  /** `AS name`, lower-cased as docker compares them. */
  name?: string;
  from: Instruction;
  /** The base as written (expanded with the meta args): an image reference, `scratch`, or a stage name. */
  base: string;
  /** `FROM --platform=`, expanded. */
  platform?: string;
  instructions: Instruction[];
}

export interface StagePlan {
  /** ARG instructions before the first FROM. */
  metaArgs: Instruction[];
  stages: Stage[];
  /** The stage built last (--target, else the last one). */
  target: Stage;
  /** Indexes of the stages the target needs, in build order. */
  needed: number[];
}

/** Docker's predefined ARGs: usable without an ARG line, never persisted, not part of history. */
export const PREDEFINED_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];

/** `ARG NAME[=default] …` → name/default pairs (defaults are expanded by the caller). */
export function argDeclarations(ins: Instruction): { name: string; value?: string }[] {
  const out: { name: string; value?: string }[] = [];
  // Words split on unquoted whitespace, quotes kept for the caller's expansion of the default.
  for (const word of splitKeepingQuotes(ins.args)) {
    const eq = word.indexOf('=');
    const name = eq < 0 ? word : word.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new DockerfileError('Dockerfile', ins.line, `ARG names can not be blank or contain invalid characters: ${JSON.stringify(name)}`);
    out.push(eq < 0 ? { name } : { name, value: word.slice(eq + 1) });
  }
  return out;
}

/** Splits on whitespace outside quotes; quotes and escapes are left for processWord. */
export function splitKeepingQuotes(text: string, escape = '\\'): string[] {
  const out: string[] = [];
  let cur = '';
  let quote = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === escape && i + 1 < text.length) {
      cur += ch + text[++i];
      inWord = true;
      continue;
    }
    if (quote) {
      if (ch === quote) quote = '';
      cur += ch;
      continue;
    }
    if (ch === '"' || ch === "'") {
      quote = ch;
      cur += ch;
      inWord = true;
      continue;
    }
    if (/\s/.test(ch)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
      continue;
    }
    cur += ch;
    inWord = true;
  }
  if (inWord) out.push(cur);
  return out;
}

/**
 * Splits the parsed Dockerfile into stages and picks what `target` needs. `metaVars`: the meta
 * args' values (defaults overridden by --build-arg), for the FROM lines.
 */
export function planStages(df: ParsedDockerfile, metaVars: Vars, target: string | undefined, file = 'Dockerfile'): StagePlan {
  const metaArgs: Instruction[] = [];
  const stages: Stage[] = [];
  for (const ins of df.instructions) {
    if (ins.keyword === 'FROM') {
      const words = processWords(ins.args, metaVars, df.escape);
      if (words.length !== 1 && !(words.length === 3 && words[1]!.toLowerCase() === 'as')) {
        throw new DockerfileError(file, ins.line, 'FROM requires either one or three arguments');
      }
      const base = words[0]!;
      if (base === '') throw new DockerfileError(file, ins.line, `base name (${ins.args}) should not be blank`);
      const name = words[2]?.toLowerCase();
      if (name !== undefined) {
        if (!/^[a-z][a-z0-9-_.]*$/.test(name)) throw new DockerfileError(file, ins.line, `invalid name for build stage: "${words[2]}", name can't start with a number or contain symbols`);
        if (stages.some((s) => s.name === name)) throw new DockerfileError(file, ins.line, `duplicate name ${name}`);
      }
      const platformFlag = ins.flags.find((f) => f.name === 'platform')?.value;
      stages.push({
        index: stages.length,
        ...(name !== undefined ? { name } : {}),
        from: ins,
        base,
        ...(platformFlag !== undefined ? { platform: processWord(platformFlag, metaVars, df.escape) } : {}),
        instructions: [],
      });
      continue;
    }
    const current = stages[stages.length - 1];
    if (!current) {
      if (ins.keyword !== 'ARG') throw new DockerfileError(file, ins.line, `no build stage in current context: ${ins.keyword} comes before the first FROM`);
      metaArgs.push(ins);
      continue;
    }
    current.instructions.push(ins);
  }
  if (stages.length === 0) throw new DockerfileError(file, 0, 'the Dockerfile has no FROM: no build stage');
  let targetStage = stages[stages.length - 1]!;
  if (target !== undefined) {
    const found = stages.find((s) => s.name === target.toLowerCase());
    if (!found) throw new DockerfileError(file, 0, `target stage "${target}" could not be found`);
    targetStage = found;
  }
  const needed = new Set<number>();
  const visit = (s: Stage, chain: number[]) => {
    if (needed.has(s.index)) return;
    for (const dep of stageDependencies(s, stages, file)) {
      if (chain.includes(dep.index)) throw new DockerfileError(file, s.from.line, `circular dependency between stages ${chain.join(' → ')}`);
      visit(dep, [...chain, dep.index]);
    }
    needed.add(s.index);
  };
  visit(targetStage, [targetStage.index]);
  return { metaArgs, stages, target: targetStage, needed: [...needed].sort((a, b) => a - b) };
}

/** An earlier stage named by `ref` (its name, or its index as a number), seen from stage `at`. */
export function findStage(ref: string, stages: readonly Stage[], at: number): Stage | undefined {
  const lower = ref.toLowerCase();
  const byName = stages.find((s) => s.name === lower && s.index < at);
  if (byName) return byName;
  if (/^\d+$/.test(ref)) {
    const i = Number(ref);
    if (i < at) return stages[i];
  }
  return undefined;
}

/** Stages `s` reads: its base, COPY --from and RUN --mount from= (image names are not stages). */
function stageDependencies(s: Stage, stages: readonly Stage[], file: string): Stage[] {
  const deps: Stage[] = [];
  const base = findStage(s.base, stages, s.index);
  if (base) deps.push(base);
  for (const ins of s.instructions) {
    const refs: string[] = [];
    if (ins.keyword === 'COPY') {
      const from = ins.flags.find((f) => f.name === 'from')?.value;
      if (from !== undefined) refs.push(from);
    }
    if (ins.keyword === 'RUN') {
      for (const f of ins.flags.filter((x) => x.name === 'mount')) {
        const from = /(?:^|,)from=([^,]+)/.exec(f.value)?.[1];
        if (from !== undefined) refs.push(from);
      }
    }
    for (const ref of refs) {
      const dep = findStage(ref, stages, s.index);
      if (dep) deps.push(dep);
      else if (/^\d+$/.test(ref)) throw new DockerfileError(file, ins.line, `invalid from flag value ${ref}: refers to a stage that is not before this one`);
      else if (stages.some((x) => x.name === ref.toLowerCase())) throw new DockerfileError(file, ins.line, `invalid from flag value ${ref}: stage ${ref} is defined after it is used`);
    }
  }
  return deps;
}
