// Berth's version (package.json), the same for every part: `berth version`, `berth info`, the
// registry's Berth-Version header.
import { readFileSync } from 'node:fs';

let cached: string | undefined;

export function berthVersion(): string {
  cached ??= (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return cached;
}
