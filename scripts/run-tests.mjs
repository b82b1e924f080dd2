#!/usr/bin/env node
// Runs every compiled test file (dist/**/*.test.js) with node's test runner.
// BERTH_TEST_FILTER=substring limits the run to matching files.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('../dist/', import.meta.url).pathname;
const files = [];
(function walk(dir) {
  for (const entry of readdirSync(dir)) {
    const p = join(dir, entry);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.test.js')) files.push(p);
  }
})(root);
const filter = process.env.BERTH_TEST_FILTER;
const selected = files.filter((f) => !filter || relative(root, f).includes(filter)).sort();
if (selected.length === 0) {
  console.error(`no test files found under ${root}${filter ? ` matching ${filter}` : ''}`);
  process.exit(1);
}
const args = ['--test', '--test-reporter=spec', ...(process.env.BERTH_TEST_CONCURRENCY ? [`--test-concurrency=${process.env.BERTH_TEST_CONCURRENCY}`] : []), ...selected];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
