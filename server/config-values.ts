// Readers of config values from a file, the environment or flags, shared by every config section
// (server/config.ts, auth/config.ts, proxy/config.ts), so each key is checked the same way.

export function configString(v: unknown, what: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new Error(`${what} must be a string`);
  return v;
}

/** A number from a file (number) or the environment (numeric string); `positive` refuses 0. */
export function configNumber(v: unknown, what: string, opts: { positive?: boolean } = {}): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
  if (!Number.isFinite(n) || n < 0 || (opts.positive && n === 0)) {
    throw new Error(`${what} must be a ${opts.positive ? 'positive' : 'non-negative'} number, got ${JSON.stringify(v)}`);
  }
  return n;
}

export function configBool(v: unknown, what: string): boolean | undefined {
  if (v === undefined || v === '') return undefined;
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new Error(`${what} must be true or false, got ${JSON.stringify(v)}`);
}

/** A config-file mapping whose keys must all be known: a typo must not fall back to a default. */
export function configMapping(raw: unknown, source: string, section: string, known: readonly string[]): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${source}: ${section || 'the config'} must be a mapping`);
  const o = raw as Record<string, unknown>;
  const prefix = section ? `${section}.` : '';
  for (const k of Object.keys(o)) if (!known.includes(k)) throw new Error(`${source}: unknown key ${prefix}${k} (known: ${known.join(', ')})`);
  return o;
}

/** The entries of `o` that are set, so layering never overwrites a value with undefined. */
export function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
