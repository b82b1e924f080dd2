// The client's import boundary (DEVELOPERS.md): client/ never imports server/, and no client
// verb reaches Koa, pino or LevelDB through its static imports (CLI start-up time counts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const distClient = new URL('.', import.meta.url).pathname;

function staticImports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  return [...src.matchAll(/^\s*import\s+(?!type\b)[^'"]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]/gm)].map((m) => m[1] ?? m[2]!);
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.js') ? [p] : [];
  });
}

test('client/ (tests and test fixtures aside) never imports server/', () => {
  for (const f of walk(distClient).filter((f) => !f.endsWith('.test.js') && !f.includes('/testing/'))) {
    for (const spec of staticImports(f)) assert.ok(!resolve(dirname(f), spec).includes('/dist/server/'), `${f} imports ${spec}`);
  }
});

test('client verbs load neither koa, pino nor level', () => {
  for (const entry of walk(join(distClient, 'cli'))) {
    const seen = new Set<string>();
    const stack = [entry];
    while (stack.length > 0) {
      const f = stack.pop()!;
      if (seen.has(f)) continue;
      seen.add(f);
      for (const spec of staticImports(f)) {
        assert.ok(!/^(koa|@koa\/|pino|level|classic-level)/.test(spec), `${entry} reaches ${spec} through ${f}`);
        if (spec.startsWith('.')) stack.push(resolve(dirname(f), spec));
      }
    }
  }
});
