// berth search [--limit N] [--filter K=V] [--no-trunc] [--format TPL] [REGISTRY/]TERM: docker's
// `search` (docker/cli cli/command/registry/search.go, formatter_search.go) against any registry
// that speaks docker's /v1/search, berth serve among them; a registry without it gets one line.
import { run } from './common.js';
import { loadConfig } from '../config.js';
import { Transport } from '../transport/registry-client.js';
import { DEFAULT_LIMIT, MAX_LIMIT, searchRegistry, splitSearchTerm, type SearchResult } from '../search.js';
import { formatContext, formatList, tabwrite } from './format.js';

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

/** Go's text/tabwriter as docker sets it up (minwidth 10, padding 3): tab-ended cells padded to their column. */
export function tabulate(lines: string[]): string {
  return tabwrite(lines.map((l) => l + '\n').join(''));
}

/** Renders results with a docker format (Go template; `table …` gets a header row and aligned columns). */
export function formatResults(results: SearchResult[], format: string, trunc: boolean): string {
  const rows = results.map((r) => formatContext('*registry.searchContext', fieldsOf(r, trunc)));
  return formatList(format, rows, { headers: HEADERS, defaultTable: DEFAULT_FORMAT, style: 'list' });
}

export async function main(input: string, o: { limit: string; filter: string[]; format?: string; trunc: boolean; config?: string }): Promise<number> {
  return run('search', async () => {
      if (!/^\d+$/.test(o.limit) || Number(o.limit) < 1 || Number(o.limit) > MAX_LIMIT) throw new Error(`limit ${o.limit} is outside the range [1, ${MAX_LIMIT}]`);
      const filters = parseFilters(o.filter);
      const format = o.format === undefined || o.format === '' || o.format === 'table' ? DEFAULT_FORMAT : o.format;
      // A bad template (syntax, or a field docker's search results lack) fails before the registry is asked.
      formatResults([{ name: '', description: '', star_count: 0, is_official: false, is_automated: false }], format, true);
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
