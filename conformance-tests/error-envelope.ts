// Assertions on failure responses: status, and the JSON error envelope of
// distribution-spec/spec.md#error-codes when the body is JSON (a 4XX body MAY be in any format).
import assert from 'node:assert/strict';
import type { RegistryResponse } from './fixtures/http-client.js';

/** The codes of spec.md#error-codes. */
export const SPEC_ERROR_CODES: ReadonlySet<string> = new Set([
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'BLOB_UPLOAD_UNKNOWN',
  'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN',
  'NAME_INVALID',
  'NAME_UNKNOWN',
  'SIZE_INVALID',
  'UNAUTHORIZED',
  'DENIED',
  'UNSUPPORTED',
  'TOOMANYREQUESTS',
]);

/** Legacy Docker codes clients MAY encounter (spec.md#legacy-docker-support-error-codes,
 * docker-registry-api/api.md#errors); a registry sending one is not wrong. */
export const LEGACY_DOCKER_ERROR_CODES: ReadonlySet<string> = new Set(['MANIFEST_UNVERIFIED', 'TAG_INVALID', 'PAGINATION_NUMBER_INVALID', 'RANGE_INVALID']);

interface Envelope {
  errors?: Array<{ code?: unknown; message?: unknown; detail?: unknown }>;
}

/**
 * Asserts the status is one of `statuses` and, when the body is JSON, that it is the spec's
 * envelope and that one of its codes is among `codes`. Returns the codes found.
 */
export function expectError(res: RegistryResponse, statuses: number | number[], codes: string[], what = 'request'): string[] {
  const allowed = ([] as number[]).concat(statuses);
  assert.ok(allowed.includes(res.status), `${what}: expected HTTP ${allowed.join(' or ')}, got ${res.status} ${res.body.toString('utf8').slice(0, 300)}`);
  const text = res.body.toString('utf8').trim();
  if (text === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return []; // spec.md#error-codes: a 4XX body MAY be in any format
  }
  const env = parsed as Envelope;
  assert.ok(Array.isArray(env.errors) && env.errors.length > 0, `${what}: a JSON error body MUST be {"errors":[...]}, got ${text.slice(0, 300)}`);
  const found: string[] = [];
  for (const e of env.errors) {
    assert.equal(typeof e.code, 'string', `${what}: every error MUST have a code`);
    const code = e.code as string;
    assert.match(code, /^[A-Z_]+$/, `${what}: code MUST contain only uppercase letters and underscores`);
    assert.ok(SPEC_ERROR_CODES.has(code) || LEGACY_DOCKER_ERROR_CODES.has(code), `${what}: code ${code} is not in the spec's error table`);
    if (e.message !== undefined) assert.equal(typeof e.message, 'string', `${what}: message, when present, is a string`);
    found.push(code);
  }
  if (codes.length > 0) assert.ok(found.some((c) => codes.includes(c)), `${what}: expected error code ${codes.join(' or ')}, got ${found.join(', ')}`);
  return found;
}
