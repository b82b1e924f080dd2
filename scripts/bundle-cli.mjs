#!/usr/bin/env node
// The CLI bundle: dist/cli/berth.cjs, one CommonJS file holding bin/berth.ts, the command table,
// commander and every module the client and runtime verbs load, which bin/launch.cjs runs with a
// V8 code cache. Start-up counts (issue 13: `berth images` ≤ 1.5× `node -e 0`), and on Node 20
// the ES module loader costs ~0.7 ms per module and gives no compile cache: the bundle and its
// cache start `berth images` in ~24 ms where dist/'s 30 ES modules took ~43 (docs/performance.md,
// "Start-up").
//
// Left out of the bundle, and loaded as dist/'s ES modules when their verbs run: the registry
// (dist/server/: Koa, LevelDB, the AWS SDK) and berth build (dist/build/), whose start-up is not
// what their users wait for. Every dynamic import() left in the bundle (those, and Node's
// builtins) becomes __berth_import(), which bin/launch.cjs supplies: code compiled by vm.Script
// has no import() of its own without an experimental flag.
//
// Run after tsc (npm run build, npm test). bin/launch.cjs ignores a bundle older than dist/'s
// modules, so a tsc run without this script still runs the code it compiled.
import { build } from 'esbuild';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
const outfile = join(dist, 'cli', 'berth.cjs');
const outDir = dirname(outfile);
const EXTERNAL = /^(server|build)\//;
const MARK = 'berth-import:';

/** A path from the bundle's folder to `file`, as an import specifier. */
const fromBundle = (file) => {
  const p = relative(outDir, file).split(sep).join('/');
  return p.startsWith('.') ? p : `./${p}`;
};

const result = await build({
  entryPoints: [join(dist, 'bin', 'berth.js')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  minify: true,
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
  define: { BERTH_BUNDLE: 'true' },
  plugins: [
    {
      name: 'berth-cli',
      setup(b) {
        // Each module keeps its own import.meta.url (the file tsc wrote), so the paths it builds
        // from it (runtime/monitor.js, native/build/…, package.json) stay right.
        b.onLoad({ filter: /\.js$/ }, async ({ path }) => {
          if (!path.startsWith(dist + sep)) return undefined;
          const source = await readFile(path, 'utf8');
          if (!source.includes('import.meta')) return undefined;
          const url = `require("node:url").pathToFileURL(require("node:path").join(__dirname, ${JSON.stringify(fromBundle(path))})).href`;
          return { contents: source.replaceAll('import.meta.url', `(${url})`), loader: 'js' };
        });
        b.onResolve({ filter: /.*/ }, async (args) => {
          if (args.kind !== 'dynamic-import' || args.pluginData?.inner) return undefined;
          if (args.path.startsWith('node:')) return { path: MARK + args.path, external: true };
          const resolved = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: { inner: true } });
          if (resolved.errors.length > 0) return resolved;
          const inDist = relative(dist, resolved.path).split(sep).join('/');
          if (EXTERNAL.test(inDist)) return { path: MARK + fromBundle(resolved.path), external: true };
          return resolved;
        });
      },
    },
  ],
});

// The bundle must not hold what it leaves out: a static import of the registry or build layer from
// a client or runtime module would pull Koa or the AWS SDK into every verb's start.
const inputs = Object.keys(result.metafile.inputs);
const leaked = inputs.filter((i) => EXTERNAL.test(relative(dist, join(root, i)).split(sep).join('/')) || i.endsWith('.node'));
if (leaked.length > 0) throw new Error(`bundle-cli: the CLI bundle would hold ${leaked.join(', ')}`);

let code = await readFile(outfile, 'utf8');
// bin/launch.cjs wraps the bundle in a function: no hashbang (bin/berth.ts's) inside it.
code = code.replace(/^#!.*\n/, '').replaceAll(`import("${MARK}`, '__berth_import("');
const left = code.match(/\bimport\(\s*["'`]/);
if (left) throw new Error(`bundle-cli: an import() the launcher cannot serve is left in the bundle near …${code.slice(left.index - 80, left.index + 80)}…`);
// bin/launch.cjs reads the bundle as latin1 (esbuild escapes non-ASCII characters by default).
if (/[^\x00-\x7f]/.test(code)) throw new Error('bundle-cli: the bundle holds a non-ASCII character');
if (code.includes(MARK)) throw new Error('bundle-cli: a marked import is left in an unexpected form');
await writeFile(outfile, code);
// BUNDLE_ANALYZE=1: the 25 modules that take the most of the bundle, to see what a change pulled in.
if (process.env.BUNDLE_ANALYZE) {
  const { inputs: parts } = result.metafile.outputs[Object.keys(result.metafile.outputs).find((k) => k.endsWith('.cjs'))];
  const largest = Object.entries(parts).sort((a, b) => b[1].bytesInOutput - a[1].bytesInOutput).slice(0, 25);
  console.log(largest.map(([name, { bytesInOutput }]) => `${bytesInOutput} ${name}`).join('\n'));
}
console.log(`bundle-cli: ${fromBundle(outfile).slice(2)} from ${inputs.length} modules, ${(code.length / 1024).toFixed(0)} KiB`);
