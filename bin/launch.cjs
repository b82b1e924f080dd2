'use strict';
// Runs the CLI: the bundle dist/cli/berth.cjs (scripts/bundle-cli.mjs) compiled with a V8 code
// cache, or dist/bin/berth.js where the bundle is missing or older than what tsc last wrote, and
// for `berth serve`: the registry runs from dist/'s ES modules, which it loads anyway (Koa, LevelDB,
// …), with one copy of each module.
// Node 20 has no compile cache of its own (module.enableCompileCache is Node ≥ 22.1), and parsing
// and compiling the ~350 KiB bundle is most of what a verb costs beyond `node -e 0`; with the
// cache `berth images` starts in ~1.3× `node -e 0` (docs/performance.md, "Start-up").
//
// The cache is one file per verb (each holds the functions its verb ran, compiled), written when
// the process exits if it was missing or V8 refused it, named by Node's version and the bundle's
// size and time: V8 checks a cache against its own version and the source's length only, so a
// cache of an older bundle of the same length would otherwise be taken. In
// $XDG_CACHE_HOME/berth/compile-cache (~/.cache/…), beside Node 22+'s cache of dist/'s modules.
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { pathToFileURL } = require('node:url');

const bundle = path.join(__dirname, '..', 'dist', 'cli', 'berth.cjs');
const modules = path.join(__dirname, '..', 'dist', 'bin', 'berth.js');

function bundleStat() {
  try {
    const st = fs.statSync(bundle);
    return st.mtimeMs >= fs.statSync(path.join(__dirname, '..', 'dist', 'bin', 'commands.js')).mtimeMs ? st : undefined;
  } catch {
    return undefined;
  }
}

function cacheDir() {
  const base = process.env.XDG_CACHE_HOME || path.join(process.env.HOME || require('node:os').homedir(), '.cache');
  return path.join(base, 'berth', 'compile-cache');
}

function runBundle(st) {
  const verb = /^[a-z][a-z-]{0,20}$/.test(process.argv[2] || '') ? process.argv[2] : 'other';
  const stamp = `cli-${process.version}-${st.size}-${Math.trunc(st.mtimeMs)}-`;
  const dir = cacheDir();
  const cacheFile = path.join(dir, `${stamp}${verb}.v8`);
  let cachedData;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    // first run of this verb with this bundle and Node
  }
  // ASCII only (scripts/bundle-cli.mjs checks): latin1 skips UTF-8 decoding of ~350 KiB.
  const source = fs.readFileSync(bundle, 'latin1');
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname, __berth_import) {${source}\n})`, { filename: bundle, cachedData });
  const bundleDir = path.dirname(bundle);
  const load = (specifier) => import(specifier.startsWith('node:') ? specifier : pathToFileURL(path.resolve(bundleDir, specifier)).href);
  if (cachedData === undefined || script.cachedDataRejected) {
    process.once('exit', () => {
      try {
        const data = script.createCachedData();
        fs.mkdirSync(dir, { recursive: true });
        // This Node's caches of an older bundle are of no further use (another Node's may be).
        for (const old of fs.readdirSync(dir)) if (old.startsWith(`cli-${process.version}-`) && !old.startsWith(stamp)) fs.rmSync(path.join(dir, old), { force: true });
        const tmp = `${cacheFile}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, data);
        fs.renameSync(tmp, cacheFile);
      } catch {
        // a read-only or full home: the next run compiles again
      }
    });
  }
  script.runInThisContext()(module.exports, require, module, bundle, bundleDir, load);
}

const st = process.argv[2] === 'serve' ? undefined : bundleStat();
if (st) runBundle(st);
else import(pathToFileURL(modules).href);
