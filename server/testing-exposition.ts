// A strict parser of Prometheus' text exposition format 0.0.4 (prometheus/docs
// content/docs/instrumenting/exposition_formats.md, as prometheus/common's expfmt TextParser reads
// it), for tests: every line must parse, each family's TYPE comes once and before its samples, a
// family's samples are contiguous, no series repeats, counters are not negative, and histograms
// have cumulative `le` buckets ending in +Inf equal to `_count`. prom-client writes the format;
// this reads it back the way a Prometheus server would refuse it.

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  name: string;
  labels: Array<[string, string]>;
  value: number;
  timestamp?: number;
}

export interface Family {
  name: string;
  type: MetricType;
  help?: string;
  samples: Sample[];
}

export class ExpositionError extends Error {
  constructor(line: number, text: string, why: string) {
    super(`exposition line ${line}: ${why}: ${JSON.stringify(text.slice(0, 200))}`);
    this.name = 'ExpositionError';
  }
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES: Record<MetricType, string[]> = { counter: [''], gauge: [''], untyped: [''], histogram: ['_bucket', '_sum', '_count'], summary: ['', '_sum', '_count'] };

/** Go's ParseFloat as expfmt uses it: decimal or exponent forms, and NaN, Inf, Infinity in any case with a sign (prom-client writes `Nan`). */
function parseValue(s: string): number | undefined {
  const special = /^([+-]?)(nan|inf|infinity)$/i.exec(s);
  if (special) return special[2]!.toLowerCase() === 'nan' ? NaN : special[1] === '-' ? -Infinity : Infinity;
  return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s) ? Number(s) : undefined;
}

/** `{a="x",b="y"}` from position `i` (at `{`): the labels and the index after `}`. */
function parseLabels(text: string, i: number, fail: (why: string) => never): { labels: Array<[string, string]>; end: number } {
  const labels: Array<[string, string]> = [];
  i++;
  for (;;) {
    if (text[i] === '}') return { labels, end: i + 1 };
    const eq = text.indexOf('=', i);
    if (eq < 0) fail('label without =');
    const name = text.slice(i, eq).trim();
    if (!LABEL_NAME.test(name)) fail(`bad label name ${JSON.stringify(name)}`);
    if (labels.some(([n]) => n === name)) fail(`label ${name} twice`);
    i = eq + 1;
    if (text[i] !== '"') fail('label value not quoted');
    let value = '';
    for (i++; ; i++) {
      const c = text[i];
      if (c === undefined) fail('unterminated label value');
      if (c === '"') break;
      if (c === '\\') {
        const n = text[++i];
        if (n === '\\') value += '\\';
        else if (n === '"') value += '"';
        else if (n === 'n') value += '\n';
        else fail(`bad escape \\${n ?? ''} in a label value`);
      } else value += c;
    }
    labels.push([name, value]);
    i++;
    if (text[i] === ',') i++;
    else if (text[i] !== '}') fail('expected , or } after a label');
  }
}

/** Parses a whole exposition; throws ExpositionError naming the first bad line. */
export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const seriesSeen = new Set<string>();
  const closed = new Set<string>();
  const typed = new Set<string>();
  let current: Family | undefined;
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  else if (text !== '') throw new ExpositionError(lines.length, lines.at(-1)!, 'the last line has no newline');

  const familyOf = (sample: string): Family | undefined => {
    for (const f of families.values()) if (SUFFIXES[f.type].some((s) => f.name + s === sample)) return f;
    return undefined;
  };

  lines.forEach((line, k) => {
    const fail = (why: string): never => {
      throw new ExpositionError(k + 1, line, why);
    };
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (!m) return; // another comment
      const [, kind, name, rest = ''] = m;
      if (!METRIC_NAME.test(name!)) fail(`bad metric name ${JSON.stringify(name)}`);
      let f = families.get(name!);
      if (f && f.samples.length > 0 && kind === 'TYPE') fail(`TYPE of ${name} after its samples`);
      if (!f) {
        f = { name: name!, type: 'untyped', samples: [] };
        families.set(name!, f);
      }
      if (kind === 'TYPE') {
        if (typed.has(name!)) fail(`second TYPE for ${name}`);
        if (!TYPES.has(rest.trim() as MetricType)) fail(`unknown type ${JSON.stringify(rest)}`);
        f.type = rest.trim() as MetricType;
        typed.add(name!);
      } else {
        if (f.help !== undefined) fail(`second HELP for ${name}`);
        f.help = rest.replace(/\\(\\|n)/g, (_, c: string) => (c === 'n' ? '\n' : '\\'));
      }
      return;
    }
    const nameEnd = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0];
    if (!nameEnd) fail('no metric name');
    const name = nameEnd!;
    let i = name.length;
    let labels: Array<[string, string]> = [];
    if (line[i] === '{') ({ labels, end: i } = parseLabels(line, i, fail));
    if (line[i] !== ' ' && line[i] !== '\t') fail('expected a space before the value');
    const parts = line.slice(i).trim().split(/[ \t]+/);
    if (parts.length > 2) fail('text after the timestamp');
    const value = parseValue(parts[0]!);
    if (value === undefined) fail(`bad value ${JSON.stringify(parts[0])}`);
    let timestamp: number | undefined;
    if (parts[1] !== undefined) {
      if (!/^-?\d+$/.test(parts[1])) fail(`bad timestamp ${JSON.stringify(parts[1])}`);
      timestamp = Number(parts[1]);
    }
    let f = familyOf(name);
    if (!f) {
      f = { name, type: 'untyped', samples: [] };
      families.set(name, f);
    }
    if (f !== current) {
      if (closed.has(f.name)) fail(`samples of ${f.name} are not contiguous`);
      if (current) closed.add(current.name);
      current = f;
    }
    const series = `${name}{${[...labels].sort(([a], [b]) => (a < b ? -1 : 1)).map(([n, v]) => `${n}=${JSON.stringify(v)}`).join(',')}}`;
    if (seriesSeen.has(series)) fail(`series ${series} twice`);
    seriesSeen.add(series);
    if (f.type === 'counter' && !(value! >= 0)) fail('a counter below 0');
    if (f.type === 'histogram' && name.endsWith('_bucket') !== labels.some(([n]) => n === 'le')) fail('a histogram bucket needs le, and only buckets have it');
    f.samples.push({ name, labels, value: value!, ...(timestamp !== undefined ? { timestamp } : {}) });
  });

  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

/** Buckets of each label set: `le` ascending, counts cumulative, +Inf present and equal to _count. */
function checkHistogram(f: Family): void {
  const groups = new Map<string, Array<{ le: number; v: number }>>();
  const counts = new Map<string, number>();
  const keyOf = (labels: Array<[string, string]>) => JSON.stringify(labels.filter(([n]) => n !== 'le').sort(([a], [b]) => (a < b ? -1 : 1)));
  for (const s of f.samples) {
    const key = keyOf(s.labels);
    if (s.name.endsWith('_bucket')) {
      const le = parseValue(s.labels.find(([n]) => n === 'le')![1]);
      if (le === undefined) throw new Error(`${f.name}: bad le in ${JSON.stringify(s.labels)}`);
      (groups.get(key) ?? groups.set(key, []).get(key)!).push({ le, v: s.value });
    } else if (s.name.endsWith('_count')) counts.set(key, s.value);
  }
  for (const [key, buckets] of groups) {
    for (let i = 1; i < buckets.length; i++) {
      if (!(buckets[i]!.le > buckets[i - 1]!.le)) throw new Error(`${f.name}${key}: le not ascending`);
      if (buckets[i]!.v < buckets[i - 1]!.v) throw new Error(`${f.name}${key}: buckets not cumulative`);
    }
    const last = buckets.at(-1)!;
    if (last.le !== Infinity) throw new Error(`${f.name}${key}: no +Inf bucket`);
    if (counts.get(key) !== last.v) throw new Error(`${f.name}${key}: _count ${counts.get(key)} is not the +Inf bucket ${last.v}`);
  }
}

/** `name{a="x",b="y"}` as written (labels in their order, values escaped): a key to look samples up by. */
export function seriesKey(s: Sample): string {
  if (s.labels.length === 0) return s.name;
  return `${s.name}{${s.labels.map(([n, v]) => `${n}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',')}}`;
}
