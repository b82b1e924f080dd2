// The auth:, proxy: and tls.selfSigned keys of a config file, layered under the environment and flags.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config.js';

test('config file keys for auth, proxy and TLS, with the environment and flags on top', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-cfg-'));
  const file = join(dir, 'berth.yaml');
  await writeFile(
    file,
    [
      `data: ${dir}/data`,
      'auth:',
      '  mode: token',
      '  htpasswd: /etc/berth/users',
      '  anonymousPull: true',
      '  token: { service: registry.example, ttlSeconds: 120 }',
      'proxy:',
      '  remoteUrl: https://upstream.example',
      '  tagTtlSeconds: 60',
      'tls: { selfSigned: true }',
    ].join('\n'),
  );
  const c = await loadConfig({ file, env: { BERTH_ACL: '/etc/berth/acl.json' }, flags: { proxy: { username: 'u', password: 'p' } } });
  assert.equal(c.auth?.mode, 'token');
  assert.equal(c.auth?.acl, '/etc/berth/acl.json');
  assert.equal(c.auth?.anonymousPull, true);
  assert.equal(c.auth?.token.service, 'registry.example');
  assert.equal(c.auth?.token.ttlSeconds, 120);
  assert.equal(c.auth?.token.issuer, 'berth-token-service');
  assert.deepEqual({ ...c.proxy }, { remoteUrl: 'https://upstream.example', tagTtlSeconds: 60, evictAfterHours: 168, username: 'u', password: 'p' });
  assert.equal(c.tls?.cert, join(dir, 'data', 'tls', 'self-signed.crt'));
  await writeFile(file, 'auth: { mode: token, htpasswd: x, tokn: {} }');
  await assert.rejects(loadConfig({ file, env: {} }), /unknown key auth.tokn/);
  await writeFile(file, 'proxy: { remoteUrl: ftp://x }');
  await assert.rejects(loadConfig({ file, env: {} }), /http\(s\) URL/);
  await assert.rejects(loadConfig({ env: { BERTH_AUTH: 'htpasswd' } }), /needs a users file/);
  await rm(dir, { recursive: true, force: true });
});
