// A target's known-gap list is checked, not trusted: a listed gap the target passes fails the run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const fixture = fileURLToPath(new URL('./fixtures/false-gap.js', import.meta.url));

test('a known gap that the target passes fails the conformance run, naming the gap to remove', () => {
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', fixture], {
    env: { ...childEnv(), BERTH_FALSE_GAP: 'pull.manifest.by-tag' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.notEqual(r.status, 0, 'the run must fail');
  assert.match(r.stdout, /\[pull\.manifest\.by-tag\] now passes against berth with a stale gap list: remove it from that target's knownGaps/);
  assert.match(r.stdout, /ℹ fail 1\b/, 'only the stale gap fails');
});

test('a gap list naming a test that does not exist is refused', () => {
  const r = spawnSync(process.execPath, ['--test', fixture], { env: { ...childEnv(), BERTH_FALSE_GAP: 'pull.no-such-test' }, encoding: 'utf8', timeout: 60_000 });
  assert.notEqual(r.status, 0);
  assert.match(r.stdout + r.stderr, /knownGaps names unknown test pull\.no-such-test/);
});

/** The environment without node:test's marker, so the child runs and reports as a test run of its own. */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  return env;
}
