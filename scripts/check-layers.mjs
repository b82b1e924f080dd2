#!/usr/bin/env node
// Fails when a module imports sideways or upwards across Berth's layers (DEVELOPERS.md).
// Tests may also import server/testing.ts (to start a real registry), storage/testing/ (real S3,
// PostgreSQL, haproxy) and conformance fixtures.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';

const root = resolve(new URL('..', import.meta.url).pathname);
const ALLOWED = {
  oci: ['oci'],
  storage: ['storage', 'oci'],
  server: ['server', 'storage', 'oci'],
  client: ['client', 'storage', 'oci'],
  native: ['native'],
  runtime: ['runtime', 'client', 'native', 'storage', 'oci'],
  build: ['build', 'runtime', 'client', 'storage', 'oci'],
  'conformance-tests': ['conformance-tests', 'oci'],
};
const TEST_EXTRA = ['server/testing.ts', 'storage/testing/', 'conformance-tests/fixtures/'];

const problems = [];
for (const [layer, allowed] of Object.entries(ALLOWED)) {
  const dir = join(root, layer);
  let files = [];
  try {
    files = walk(dir);
  } catch {
    continue;
  }
  for (const file of files) {
    const isTest = /\.test\.ts$/.test(file) || file.includes('/fixtures/');
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(/(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]|import\s*\(?\s*['"](\.[^'"]+)['"]/g)) {
      const spec = m[1] ?? m[2];
      const target = relative(root, resolve(dirname(file), spec)).replace(/\.js$/, '.ts');
      const targetLayer = target.split('/')[0];
      if (allowed.includes(targetLayer)) continue;
      if (isTest && TEST_EXTRA.some((p) => target.startsWith(p))) continue;
      problems.push(`${relative(root, file)} imports ${target}: ${layer}/ may import only ${allowed.join(', ')}`);
    }
  }
}
if (problems.length) {
  console.error(`layering violations (see DEVELOPERS.md):\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log('layering: ok');

function walk(dir) {
  const out = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (e === 'node_modules' || p === join(root, 'native', 'build')) continue;
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}
