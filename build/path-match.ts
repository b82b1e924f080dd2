// Go's filepath.Match, the rule docker applies to COPY/ADD source wildcards (one path component
// at a time): `*` any run of characters but `/`, `?` one character but `/`, `[...]` a class
// (`^` negates, `lo-hi` ranges), `\` escapes the next character. A malformed pattern is an error,
// as Go's ErrBadPattern.

export class BadPatternError extends Error {
  constructor(pattern: string) {
    super(`syntax error in pattern: ${pattern}`);
  }
}

/** Whether `p` holds a wildcard (Go's hasMeta: any of `*?[\`). */
export function hasMeta(p: string): boolean {
  return /[*?[\\]/.test(p);
}

const cache = new Map<string, RegExp>();

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/** The pattern as an anchored RegExp; throws BadPatternError where Go returns ErrBadPattern. */
export function compileMatch(pattern: string): RegExp {
  const hit = cache.get(pattern);
  if (hit) return hit;
  const chars = [...pattern];
  let re = '^';
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\') {
      const next = chars[++i];
      if (next === undefined) throw new BadPatternError(pattern);
      re += escapeRe(next);
    } else if (c === '[') {
      i++;
      let cls = '';
      if (chars[i] === '^') {
        cls += '^';
        i++;
      }
      let n = 0;
      for (;;) {
        let lo = chars[i];
        if (lo === undefined) throw new BadPatternError(pattern);
        if (lo === ']' && n > 0) break;
        if (lo === '-' || lo === ']') throw new BadPatternError(pattern); // Go: unescaped '-' or empty class
        if (lo === '\\') {
          lo = chars[++i];
          if (lo === undefined) throw new BadPatternError(pattern);
        }
        i++;
        cls += escapeRe(lo);
        if (chars[i] === '-') {
          let hi = chars[++i];
          if (hi === undefined || hi === ']') throw new BadPatternError(pattern);
          if (hi === '\\') {
            hi = chars[++i];
            if (hi === undefined) throw new BadPatternError(pattern);
          }
          i++;
          if (hi < lo) throw new BadPatternError(pattern);
          cls += `-${escapeRe(hi)}`;
        }
        n++;
      }
      re += `[${cls}]`;
    } else re += escapeRe(c);
  }
  const out = new RegExp(`${re}$`, 'u');
  if (cache.size > 1000) cache.clear();
  cache.set(pattern, out);
  return out;
}

/** Go's filepath.Match(pattern, name). */
export function pathMatch(pattern: string, name: string): boolean {
  return compileMatch(pattern).test(name);
}
