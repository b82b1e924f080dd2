// docker-style flag parsing for the container verbs: flags stop at the first operand (the image
// for `run`, the container for `exec`), short booleans combine (-dit), values attach (-m32m,
// --name=x). Errors are UsageError, which the verbs turn into exit code 125.
import { UsageError } from './process-spec.js';

export interface FlagSpec {
  /** Long name without dashes; `short` is one letter. */
  name: string;
  short?: string;
  kind: 'bool' | 'string' | 'list';
}

export interface ParsedFlags {
  flags: Map<string, string | boolean | string[]>;
  operands: string[];
}

export function parseFlags(argv: string[], specs: FlagSpec[], stopAtFirstOperand = true): ParsedFlags {
  const byLong = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));
  const flags = new Map<string, string | boolean | string[]>();
  const operands: string[] = [];
  const set = (spec: FlagSpec, value: string | true) => {
    if (spec.kind === 'list') {
      const list = (flags.get(spec.name) as string[] | undefined) ?? [];
      list.push(String(value));
      flags.set(spec.name, list);
    } else flags.set(spec.name, value);
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = arg.slice(2, eq < 0 ? undefined : eq);
      const spec = byLong.get(name);
      if (!spec) throw new UsageError(`unknown flag: --${name}`);
      if (spec.kind === 'bool') {
        const v = eq < 0 ? 'true' : arg.slice(eq + 1);
        if (v !== 'true' && v !== 'false') throw new UsageError(`invalid argument "${v}" for "--${name}" flag: expected true or false`);
        if (v === 'true') set(spec, true);
        else flags.delete(spec.name);
        continue;
      }
      const value = eq < 0 ? argv[++i] : arg.slice(eq + 1);
      if (value === undefined) throw new UsageError(`flag needs an argument: --${name}`);
      set(spec, value);
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const spec = byShort.get(arg[j]!);
        if (!spec) throw new UsageError(`unknown shorthand flag: '${arg[j]}' in ${arg}`);
        if (spec.kind === 'bool') {
          set(spec, true);
          continue;
        }
        const rest = arg.slice(j + 1).replace(/^=/, '');
        const value = rest !== '' ? rest : argv[++i];
        if (value === undefined) throw new UsageError(`flag needs an argument: '${arg[j]}' in ${arg}`);
        set(spec, value);
        break;
      }
      continue;
    }
    operands.push(arg);
    if (stopAtFirstOperand) {
      i++;
      break;
    }
  }
  operands.push(...argv.slice(i));
  return { flags, operands };
}

export function str(p: ParsedFlags, name: string): string | undefined {
  const v = p.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}
export function bool(p: ParsedFlags, name: string): boolean {
  return p.flags.get(name) === true;
}
export function list(p: ParsedFlags, name: string): string[] {
  const v = p.flags.get(name);
  return Array.isArray(v) ? v : [];
}

/** docker's memory sizes: 512m, 1g, 1048576, 64k (binary units). */
export function parseBytes(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([bkmg]?)b?$/i.exec(s.trim());
  if (!m) throw new UsageError(`invalid size: '${s}'`);
  const unit = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'b' | 'k' | 'm' | 'g'];
  return Math.floor(Number(m[1]) * unit);
}
