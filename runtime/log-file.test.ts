// The container log's timestamps as docker's json-file writes them (Go's time.RFC3339Nano).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { logTime } from './log-file.js';

test('log times: RFC 3339 with nanoseconds, trailing zeros trimmed; and now', () => {
  assert.equal(logTime(1700000000000000000n), '2023-11-14T22:13:20Z');
  assert.equal(logTime(1700000000123450000n), '2023-11-14T22:13:20.12345Z');
  assert.equal(logTime(1700000000000000001n), '2023-11-14T22:13:20.000000001Z');
  const a = logTime();
  assert.match(a, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);
  assert.ok(Math.abs(Date.parse(a) - Date.now()) < 1000, a);
});
