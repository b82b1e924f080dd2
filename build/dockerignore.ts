// .dockerignore: docker's pattern rules (moby's patternmatcher: filepath.Match per component,
// `**` for any number of folders, the last matching line wins, `!` re-includes, a match on a
// parent folder excludes everything below it) through @balena/dockerignore, a port of moby's
// code. BuildKit's per-Dockerfile `<Dockerfile>.dockerignore`, next to the Dockerfile, takes
// precedence over the context's `.dockerignore`.
import { readFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import dockerignore from '@balena/dockerignore';

// A CommonJS module whose export is the factory, also exported as `.default` (what the types name).
const ignoreFactory = dockerignore.default;
type Matcher = ReturnType<typeof ignoreFactory>;

/** The library memoizes every path it tests; a fresh matcher every so often keeps memory flat. */
const MEMO_LIMIT = 4096;

export class IgnoreRules {
  private matcher: Matcher;
  private calls = 0;
  /** Re-include patterns (`!x`), cleaned as the library cleans them. */
  private readonly exceptions: string[];

  constructor(readonly patterns: string[]) {
    this.matcher = this.fresh();
    this.exceptions = patterns
      .map((p) => p.trim())
      .filter((p) => p.startsWith('!'))
      .map((p) => posix.normalize(p.slice(1).trim()).replace(/^\/+/, '').replace(/\/+$/, ''))
      .filter((p) => p !== '' && p !== '.');
  }

  static none(): IgnoreRules {
    return new IgnoreRules([]);
  }

  /** Lines of a .dockerignore file (comments and blank lines are dropped by the matcher). */
  static parse(text: string): IgnoreRules {
    return new IgnoreRules(text.split(/\r?\n/));
  }

  /**
   * The rules for a build: `<dockerfile>.dockerignore` when it exists (BuildKit), else
   * `<contextDir>/.dockerignore`, else none.
   */
  static async load(contextDir: string | undefined, dockerfilePath?: string): Promise<IgnoreRules> {
    const candidates = [...(dockerfilePath ? [`${dockerfilePath}.dockerignore`] : []), ...(contextDir ? [join(contextDir, '.dockerignore')] : [])];
    for (const c of candidates) {
      const text = await readFile(c, 'utf8').catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return undefined;
        throw e;
      });
      if (text !== undefined) return IgnoreRules.parse(text);
    }
    return IgnoreRules.none();
  }

  get empty(): boolean {
    return this.patterns.every((p) => p.trim() === '' || p.trim().startsWith('#'));
  }

  private fresh(): Matcher {
    return ignoreFactory({ ignorecase: false }).add(this.patterns);
  }

  /** Whether the context path `rel` (relative, `/`-separated, no leading `./`) is excluded. */
  excludes(rel: string): boolean {
    if (rel === '' || this.empty) return false;
    if (++this.calls > MEMO_LIMIT) {
      this.matcher = this.fresh();
      this.calls = 0;
    }
    return this.matcher.ignores(rel);
  }

  /**
   * For an excluded folder: whether a `!` line could re-include something below it, so the walk
   * must still look inside (moby's archive walk: an exception pattern starting with the folder;
   * an exception with a wildcard may match anywhere, so it keeps every folder open).
   */
  mayIncludeBelow(relDir: string): boolean {
    const dirSlash = `${relDir}/`;
    return this.exceptions.some((p) => /[*?[\\]/.test(p) || `${p}/`.startsWith(dirSlash));
  }
}
