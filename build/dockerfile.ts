// Dockerfile parsing: dockerfile-ast finds the instructions, their lines and heredoc bodies (it
// knows continuations, comments, `# escape` and heredoc delimiters); this module turns each into
// the builder's Instruction (flags split off, JSON form decoded, heredocs with their options),
// checking what docker checks at parse time, every error carrying its line: `Dockerfile:7: …`.
import { DockerfileParser } from 'dockerfile-ast';

export interface Heredoc {
  name: string;
  /** The body, each line ending in '\n' (`<<-` strips leading tabs). */
  content: string;
  /** Whether variables in the body are expanded (not when the delimiter is quoted). */
  expand: boolean;
}

export interface Flag {
  name: string;
  value: string;
}

export interface Instruction {
  /** Upper case: RUN, COPY, … */
  keyword: string;
  /** 1-based line of the keyword. */
  line: number;
  /** The command line as written, continuations joined, flags kept (docker's Step line). */
  original: string;
  flags: Flag[];
  /** Text after the flags: heredoc markers kept, bodies not. */
  args: string;
  /** The exec (JSON array) form, when args is one. */
  json?: string[];
  heredocs: Heredoc[];
  /** ONBUILD's instruction. */
  trigger?: Instruction;
}

export interface ParsedDockerfile {
  escape: string;
  /** `# syntax=`: accepted and ignored (berth has one frontend). */
  syntax?: string;
  instructions: Instruction[];
}

export class DockerfileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly detail: string,
  ) {
    super(line > 0 ? `${file}:${line}: ${detail}` : `${file}: ${detail}`);
  }
}

export const KEYWORDS = new Set(['ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK', 'LABEL', 'MAINTAINER', 'ONBUILD', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR']);

/** Flags each instruction accepts (docker's and BuildKit's stable ones). */
const FLAGS: Record<string, string[]> = {
  FROM: ['platform'],
  RUN: ['mount', 'network', 'security'],
  COPY: ['from', 'chown', 'chmod', 'link', 'parents', 'exclude'],
  ADD: ['chown', 'chmod', 'checksum', 'keep-git-dir', 'link', 'exclude'],
  HEALTHCHECK: ['interval', 'timeout', 'start-period', 'start-interval', 'retries'],
};
/** Flags that may be given more than once. */
const REPEATABLE = new Set(['mount', 'exclude']);
const HEREDOC_KEYWORDS = new Set(['RUN', 'COPY', 'ADD']);
const HEREDOC_MARKER = /<<(-?)(["']?)([A-Za-z_][A-Za-z0-9_]*)\2/g;

export function parseDockerfile(text: string, file = 'Dockerfile'): ParsedDockerfile {
  const source = text.replace(/\r\n/g, '\n');
  const doc = DockerfileParser.parse(source);
  const escape = doc.getEscapeCharacter();
  let syntax: string | undefined;
  for (const d of doc.getDirectives()) {
    const name = (d.getDirective() ?? '').toLowerCase();
    if (name === 'syntax') syntax = d.getValue();
    else if (name === 'escape' && d.getValue() !== '\\' && d.getValue() !== '`') {
      throw new DockerfileError(file, d.getRange().start.line + 1, `invalid escape token '${d.getValue()}' does not match ` + '` or \\');
    }
  }
  const lines = source.split('\n');
  const instructions: Instruction[] = [];
  for (const ins of doc.getInstructions()) {
    const range = ins.getRange();
    const line = range.start.line + 1;
    const keyword = ins.getInstruction().toUpperCase();
    if (!KEYWORDS.has(keyword)) throw new DockerfileError(file, line, `unknown instruction: ${ins.getInstruction()}`);
    const heredocs = HEREDOC_KEYWORDS.has(keyword) ? ((ins as unknown as { getHeredocs(): HeredocNode[] }).getHeredocs?.() ?? []) : [];
    let commandEnd = range.end.line;
    if (heredocs.length > 0) {
      const first = heredocs[0]!;
      const body = first.getContentRange() ?? first.getDelimiterRange();
      commandEnd = body ? body.start.line - 1 : range.end.line;
    }
    const original = joinLines(lines.slice(range.start.line, commandEnd + 1), escape);
    const parsed = parseInstructionText(original, line, file, escape);
    if (heredocs.length > 0) parsed.heredocs = heredocBodies(parsed, heredocs, lines, commandEnd + 1, file);
    instructions.push(parsed);
  }
  return { escape, ...(syntax !== undefined ? { syntax } : {}), instructions };
}

interface HeredocNode {
  getName(): string;
  getContentRange(): { start: { line: number } } | null;
  getDelimiterRange(): { start: { line: number } } | null;
}

/** Physical lines of one instruction → its logical line: escape+newline removed, comment lines dropped. */
function joinLines(physical: string[], escape: string): string {
  let out = '';
  for (let i = 0; i < physical.length; i++) {
    const raw = physical[i]!;
    if (i > 0 && /^\s*#/.test(raw)) continue; // comments inside a continued instruction
    const trimmed = raw.replace(/\s+$/, '');
    if (trimmed.endsWith(escape) && i < physical.length - 1) out += trimmed.slice(0, -1);
    else out += raw;
  }
  return out.trim();
}

/** One instruction's logical line (also an ONBUILD trigger) → Instruction without heredoc bodies. */
export function parseInstructionText(original: string, line: number, file: string, escape = '\\'): Instruction {
  const m = /^(\S+)\s*([\s\S]*)$/.exec(original);
  const word = m?.[1] ?? '';
  const keyword = word.toUpperCase();
  if (!KEYWORDS.has(keyword)) throw new DockerfileError(file, line, `unknown instruction: ${word}`);
  let rest = m?.[2] ?? '';
  const flags: Flag[] = [];
  const allowed = FLAGS[keyword] ?? [];
  // Flags come first: `--name=value` words (docker's BFlags); the first other word ends them.
  for (;;) {
    const f = /^--([A-Za-z][A-Za-z0-9-]*)(?:=(\S*))?(?:\s+|$)/.exec(rest);
    if (!f) break;
    const name = f[1]!.toLowerCase();
    if (!allowed.includes(name)) throw new DockerfileError(file, line, `unknown flag: ${name}`);
    if (f[2] === undefined && name !== 'link' && name !== 'parents' && name !== 'keep-git-dir') throw new DockerfileError(file, line, `missing a value on flag: ${name}`);
    if (!REPEATABLE.has(name) && flags.some((x) => x.name === name)) throw new DockerfileError(file, line, `duplicate flag specified: ${name}`);
    flags.push({ name, value: f[2] ?? 'true' });
    rest = rest.slice(f[0].length);
  }
  const args = rest.trim();
  const ins: Instruction = { keyword, line, original, flags, args, heredocs: [] };
  const json = parseJsonArray(args);
  if (json) ins.json = json;
  checkArity(ins, file);
  if (keyword === 'ONBUILD') {
    const trigger = parseInstructionText(args, line, file, escape);
    if (trigger.keyword === 'ONBUILD') throw new DockerfileError(file, line, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
    if (trigger.keyword === 'FROM' || trigger.keyword === 'MAINTAINER') throw new DockerfileError(file, line, `${trigger.keyword} isn't allowed as an ONBUILD trigger`);
    ins.trigger = trigger;
  }
  return ins;
}

/** A JSON array of strings (docker's exec form), else undefined (then it is the shell form). */
export function parseJsonArray(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  try {
    const v: unknown = JSON.parse(args);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    // not JSON: docker runs it through the shell as written
  }
  return undefined;
}

function checkArity(ins: Instruction, file: string): void {
  const k = ins.keyword;
  const empty = ins.args === '';
  const need = (msg: string) => {
    throw new DockerfileError(file, ins.line, msg);
  };
  if (empty && ['FROM', 'RUN', 'WORKDIR', 'USER', 'ENV', 'LABEL', 'ARG', 'EXPOSE', 'VOLUME', 'STOPSIGNAL', 'SHELL', 'ONBUILD', 'MAINTAINER', 'HEALTHCHECK'].includes(k)) need(`${k} requires at least one argument`);
  if ((k === 'COPY' || k === 'ADD') && ins.args.split(/\s+/).filter(Boolean).length + (ins.json ? 1 : 0) < 2 && !/<</.test(ins.args)) need(`${k} requires at least two arguments, but only one was provided. Destination could not be determined.`);
  if (k === 'SHELL' && !ins.json) need('SHELL requires the arguments to be in JSON form');
  if (k === 'STOPSIGNAL' && ins.args.split(/\s+/).length > 1) need('STOPSIGNAL requires exactly one argument');
}

/** Heredoc bodies in the order of their markers; checks each is terminated. */
function heredocBodies(ins: Instruction, nodes: HeredocNode[], lines: string[], firstBodyLine: number, file: string): Heredoc[] {
  const markers = [...ins.args.matchAll(HEREDOC_MARKER)];
  const out: Heredoc[] = [];
  let cursor = firstBodyLine;
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i]!;
    const marker = markers[i];
    const delimiter = node.getDelimiterRange();
    if (!delimiter) throw new DockerfileError(file, ins.line, `unterminated heredoc: no line '${node.getName()}' ends the text started by <<${node.getName()}`);
    const chomp = marker?.[1] === '-';
    let body = lines.slice(cursor, delimiter.start.line);
    if (chomp) body = body.map((l) => l.replace(/^\t+/, ''));
    out.push({ name: node.getName(), content: body.map((l) => `${l}\n`).join(''), expand: !marker?.[2] });
    cursor = delimiter.start.line + 1;
  }
  return out;
}

/** The heredoc markers of an instruction's args (`<<EOF`, `<<-"EOF"`), to recognise them among its words. */
export function isHeredocMarker(word: string): boolean {
  return new RegExp(`^${HEREDOC_MARKER.source}$`).test(word);
}
