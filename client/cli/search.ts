// berth search [--limit N] [--filter K=V] [--no-trunc] [--format TPL] [REGISTRY/]TERM: docker's
// `search` (docker/cli cli/command/registry/search.go, formatter_search.go) against any registry
// that speaks docker's /v1/search, berth serve among them; a registry without it gets one line.
import { run } from './common.js';
import { loadConfig } from '../config.js';
import { Transport } from '../transport/registry-client.js';
import { DEFAULT_LIMIT, MAX_LIMIT, searchRegistry, splitSearchTerm, type SearchResult } from '../search.js';

/** docker's search table: the columns of docker ≥ 25 (AUTOMATED went with Docker Hub's automated builds). */
const DEFAULT_FORMAT = 'table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}';
const HEADERS: Record<string, string> = { Name: 'NAME', Description: 'DESCRIPTION', StarCount: 'STARS', IsOfficial: 'OFFICIAL', IsAutomated: 'AUTOMATED' };
/** docker truncates descriptions to 45 columns unless --no-trunc. */
const DESCRIPTION_WIDTH = 45;

interface Filters {
  stars?: number;
  isOfficial?: boolean;
  isAutomated?: boolean;
}

/** docker's search filters: stars=N (at least N), is-official=BOOL, is-automated=BOOL. */
export function parseFilters(specs: string[]): Filters {
  const out: Filters = {};
  const bool = (key: string, v: string): boolean => {
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw new Error(`invalid filter '${key}=${v}': expected true or false`);
  };
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    if (eq <= 0) throw new Error(`bad format of filter (expected name=value): ${JSON.stringify(spec)}`);
    const key = spec.slice(0, eq).trim().toLowerCase();
    const v = spec.slice(eq + 1).trim();
    if (key === 'stars') {
      if (!/^\d+$/.test(v)) throw new Error(`invalid filter 'stars=${v}': expected a number`);
      out.stars = Number(v);
    } else if (key === 'is-official') out.isOfficial = bool(key, v);
    else if (key === 'is-automated') out.isAutomated = bool(key, v);
    else throw new Error(`invalid filter '${key}': search filters are stars, is-official and is-automated`);
  }
  return out;
}

function keep(r: SearchResult, f: Filters): boolean {
  if (f.stars !== undefined && r.star_count < f.stars) return false;
  if (f.isOfficial !== undefined && r.is_official !== f.isOfficial) return false;
  if (f.isAutomated !== undefined && r.is_automated !== f.isAutomated) return false;
  return true;
}

/** Cuts to `width` code points, the last one an ellipsis (docker's formatter.Ellipsis). */
function ellipsis(s: string, width: number): string {
  const chars = [...s];
  return chars.length <= width ? s : chars.slice(0, width - 1).join('') + '…';
}

/** The fields a search format sees, as docker's searchContext renders them (strings). */
function fieldsOf(r: SearchResult, trunc: boolean): Record<string, string> {
  const description = r.description.replace(/[\r\n]/g, ' ');
  return {
    Name: r.name,
    Description: trunc ? ellipsis(description, DESCRIPTION_WIDTH) : description,
    StarCount: String(r.star_count),
    IsOfficial: r.is_official ? '[OK]' : '',
    IsAutomated: r.is_automated ? '[OK]' : '',
  };
}

/**
 * The part of Go's text/template docker's search formats use: `{{.Field}}`, `{{json .}}` and
 * `{{json .Field}}` with docker's field names; any other action is refused with its text.
 */
function compile(template: string): (fields: Record<string, string>) => string {
  const parts: Array<string | ((f: Record<string, string>) => string)> = [];
  const re = /\{\{-?\s*(.*?)\s*-?\}\}/g;
  let last = 0;
  for (let m = re.exec(template); m; m = re.exec(template)) {
    parts.push(template.slice(last, m.index));
    last = re.lastIndex;
    const action = m[1]!;
    const field = /^(json\s+)?\.([A-Za-z]*)$/.exec(action);
    if (!field) throw new Error(`template: unsupported action {{${action}}}: use {{.Name}}, {{.Description}}, {{.StarCount}}, {{.IsOfficial}}, {{.IsAutomated}} or {{json .}}`);
    const [, json, key] = field;
    if (key && !(key in HEADERS)) throw new Error(`template: can't evaluate field ${key} in type search result`);
    parts.push((f) => {
      const v = key ? f[key]! : f;
      return json ? JSON.stringify(v) : typeof v === 'string' ? v : JSON.stringify(v);
    });
  }
  parts.push(template.slice(last));
  return (f) => parts.map((p) => (typeof p === 'string' ? p : p(f))).join('');
}

/** Go's text/tabwriter as docker sets it up (minwidth 10, padding 3): tab-ended cells padded to their column. */
export function tabulate(lines: string[]): string {
  const rows = lines.map((l) => l.split('\t'));
  const widths: number[] = [];
  for (const cells of rows) {
    for (let i = 0; i < cells.length - 1; i++) widths[i] = Math.max(widths[i] ?? 0, [...cells[i]!].length);
  }
  return rows.map((cells) => cells.map((c, i) => (i < cells.length - 1 ? c + ' '.repeat(Math.max(10, widths[i]! + 3) - [...c].length) : c)).join('') + '\n').join('');
}

/** Renders results with a docker format: `table …` gets a header row and aligned columns. */
export function formatResults(results: SearchResult[], format: string, trunc: boolean): string {
  let tpl = format;
  const table = tpl.startsWith('table');
  if (table) tpl = tpl.slice('table'.length);
  tpl = tpl.trim().replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  const render = compile(tpl);
  const lines = results.map((r) => render(fieldsOf(r, trunc)));
  if (!table) return lines.map((l) => l + '\n').join('');
  return tabulate([render(HEADERS), ...lines]);
}

export async function main(input: string, o: { limit: string; filter: string[]; format?: string; trunc: boolean; config?: string }): Promise<number> {
  return run('search', async () => {
      if (!/^\d+$/.test(o.limit) || Number(o.limit) < 1 || Number(o.limit) > MAX_LIMIT) throw new Error(`limit ${o.limit} is outside the range [1, ${MAX_LIMIT}]`);
      const filters = parseFilters(o.filter);
      const format = o.format === undefined || o.format === '' || o.format === 'table' ? DEFAULT_FORMAT : o.format;
      formatResults([], format, true); // a bad template fails before the registry is asked
      const { registry, term } = splitSearchTerm(input);
      const transport = new Transport(await loadConfig(o.config));
      try {
        const found = await searchRegistry(transport, registry, term, Number(o.limit));
        process.stdout.write(formatResults(found.results.filter((r) => keep(r, filters)), format, o.trunc));
      } finally {
        await transport.close();
      }
  });
}
