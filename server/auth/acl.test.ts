import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Acl } from './acl.js';
import { parseScope, requiredAccess } from './scope.js';

test('ACL globs: team/* covers the team at any depth, * stays inside a component, ** crosses them', () => {
  const acl = new Acl({
    groups: { ops: ['dave'] },
    access: [
      { account: 'alice', name: 'team/*', actions: ['pull', 'push'] },
      { account: 'alice', name: 'lib/app-*', actions: ['pull'] },
      { account: 'ops', name: '**/prod', actions: ['*'] },
      { account: '*', name: 'public/**', actions: ['pull'] },
    ],
  });
  const can = (who: string, name: string) => [...acl.actionsFor(who, name)].sort().join(',');
  assert.equal(can('alice', 'team/app'), 'pull,push');
  assert.equal(can('alice', 'team/sub/app'), 'pull,push');
  assert.equal(can('alice', 'teamx/app'), '');
  assert.equal(can('alice', 'lib/app-1'), 'pull');
  assert.equal(can('alice', 'lib/app-1/x'), '');
  assert.equal(can('dave', 'a/b/prod'), 'delete,pull,push');
  assert.equal(can('dave', 'a/b/prod2'), '');
  assert.equal(can('zed', 'public/x'), 'pull');
  assert.equal(can('zed', 'team/app'), '');
  assert.throws(() => new Acl({ access: [{ account: 'a', name: 'x', actions: ['write'] }] }), /unknown action/);
  assert.throws(() => new Acl({ rules: [] }), /expected/);
});

test('pull prefixes: every name an account may pull starts with one, so a search reads only those', () => {
  const acl = new Acl({
    groups: { ops: ['dave'] },
    access: [
      { account: 'alice', name: 'team/*', actions: ['pull', 'push'] },
      { account: 'alice', name: 'team/app/x', actions: ['pull'] },
      { account: 'alice', name: 'lib/app-*', actions: ['pull'] },
      { account: 'alice', name: 'ci/*', actions: ['push'] },
      { account: 'ops', name: '**/prod', actions: ['*'] },
      { account: '*', name: 'public/?x', actions: ['pull'] },
    ],
  });
  assert.deepEqual(acl.pullPrefixes('alice'), ['team/', 'public/', 'lib/app-'], 'no push-only rule; team/app/x is under team/');
  assert.equal(acl.pullPrefixes('dave'), undefined, 'a rule starting with a wildcard reaches any name');
  assert.deepEqual(acl.pullPrefixes('zed'), ['public/']);
  // The promise kept: whatever actionsFor grants pull on starts with a prefix.
  for (const name of ['team/a', 'team/app/x', 'lib/app-1', 'public/ax', 'ci/x', 'other/y']) {
    if (acl.actionsFor('alice', name).has('pull')) assert.ok(acl.pullPrefixes('alice')!.some((p) => name.startsWith(p)), name);
  }
});

test('scopes parse per scope.md, and each endpoint maps to the scope it needs', () => {
  assert.deepEqual(parseScope('repository:team/app:pull,push'), { type: 'repository', name: 'team/app', actions: ['pull', 'push'] });
  assert.deepEqual(parseScope('repository(plugin):team/app:pull'), { type: 'repository', name: 'team/app', actions: ['pull'] });
  assert.deepEqual(parseScope('registry:catalog:*'), { type: 'registry', name: 'catalog', actions: ['*'] });
  assert.equal(parseScope('repository:../etc:pull'), undefined);
  assert.equal(parseScope('garbage'), undefined);
  const need = (m: string, p: string, q: Record<string, string> = {}) => requiredAccess(m, p, q).scopes.map((s) => `${s.name}:${s.actions.join(',')}`);
  assert.deepEqual(need('GET', '/v2/a/b/manifests/latest'), ['a/b:pull']);
  assert.deepEqual(need('HEAD', '/v2/a/blobs/sha256:00'), ['a:pull']);
  assert.deepEqual(need('PUT', '/v2/a/manifests/v1'), ['a:pull,push']);
  assert.deepEqual(need('PATCH', '/v2/a/blobs/uploads/123'), ['a:pull,push']);
  assert.deepEqual(need('DELETE', '/v2/a/manifests/sha256:00'), ['a:delete']);
  assert.deepEqual(need('GET', '/v2/a/tags/list'), ['a:pull']);
  assert.deepEqual(need('GET', '/v2/_catalog'), ['catalog:*']);
  assert.deepEqual(need('GET', '/v2/'), []);
  assert.equal(requiredAccess('POST', '/v2/a/blobs/uploads/', { mount: 'sha256:00', from: 'b' }).mountFrom, 'b');
});
