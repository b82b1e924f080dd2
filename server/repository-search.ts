// The registry's search over repository names, as one caller sees it: the metadata's search index
// (storage/registry-metadata.ts: searchRepositories, countRepositories) filtered by what the caller
// may pull. Used by docker's /v1/search (routes/search.ts) and the web UI's repository list.
import type { RegistryMetadata } from '../storage/registry-metadata.js';

/** Names read from the index per step when the caller's rules filter them. */
const CHUNK = 2000;

export interface SearchPage {
  /** Names matching the term that the caller may pull. */
  total: number;
  names: string[];
}

/** Search terms are matched against lowercase names (the name grammar has no capitals). */
export function normaliseTerm(raw: string): string {
  return raw.trim().toLowerCase();
}

/**
 * `limit` names containing `term` from the `offset`-th on, and how many there are. Without a
 * filter: one count and one page from the index. With one: the matches are read in chunks and
 * filtered, so the cost grows with the number of matches, or with `pullPrefixes` (the literal
 * heads of the caller's pull rules) with the number of matches under those prefixes.
 */
export async function findRepositories(meta: RegistryMetadata, term: string, opts: { offset: number; limit: number; canPull?: ((name: string) => boolean) | undefined; pullPrefixes?: string[] | undefined }): Promise<SearchPage> {
  const { offset, limit, canPull } = opts;
  // The rules' literal prefixes narrow what is read (team-1*/* reads team-1…, not every match).
  const prefixes = canPull ? opts.pullPrefixes : undefined;
  if (!canPull) {
    const [total, names] = await Promise.all([meta.countRepositories(term), meta.searchRepositories(term, { limit, offset })]);
    return { total, names };
  }
  const names: string[] = [];
  let total = 0;
  let after: string | undefined;
  for (;;) {
    const chunk = await meta.searchRepositories(term, { limit: CHUNK, ...(after !== undefined ? { after } : {}), ...(prefixes ? { prefixes } : {}) });
    for (const name of chunk) {
      if (!canPull(name)) continue;
      if (total >= offset && names.length < limit) names.push(name);
      total++;
    }
    if (chunk.length < CHUNK) return { total, names };
    after = chunk[chunk.length - 1];
  }
}
