// Route patterns and repositories of request paths, as the access log and the metrics label them,
// with the cache of recent paths in front (bounded: unique or long paths do not make it grow).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { routeCacheSize, routeOf } from './request-info.js';

const D = `sha256:${'a'.repeat(64)}`;

test('each registry path has its route pattern; the repository only when its name is valid', () => {
  const cases: Array<[string, string, string | undefined]> = [
    ['/v2/', '/v2/', undefined],
    ['/v2', '/v2/', undefined],
    ['/v2/_catalog', '/v2/_catalog', undefined],
    ['/token', '/token', undefined],
    ['/v1/search', '/v1/search', undefined],
    ['/v2/team/app/manifests/v1', '/v2/{name}/manifests/{reference}', 'team/app'],
    [`/v2/team/app/manifests/${D}`, '/v2/{name}/manifests/{reference}', 'team/app'],
    ['/v2/a/b/c/tags/list', '/v2/{name}/tags/list', 'a/b/c'],
    [`/v2/app/blobs/${D}`, '/v2/{name}/blobs/{digest}', 'app'],
    ['/v2/app/blobs/uploads/', '/v2/{name}/blobs/uploads/', 'app'],
    ['/v2/app/blobs/uploads/0a1b-2c', '/v2/{name}/blobs/uploads/{id}', 'app'],
    [`/v2/app/referrers/${D}`, '/v2/{name}/referrers/{digest}', 'app'],
    // A name the spec refuses is never a label or a log field of its own.
    ['/v2/Team/App/manifests/v1', '/v2/{name}/manifests/{reference}', undefined],
    ['/v2/../etc/manifests/v1', '/v2/{name}/manifests/{reference}', undefined],
    ['/v2/app/unknown/x', 'other', undefined],
    ['/', 'other', undefined],
    ['/favicon.ico', 'other', undefined],
  ];
  // Twice: the second answer comes from the cache of recent paths.
  for (let round = 0; round < 2; round++) {
    for (const [path, route, repository] of cases) assert.deepEqual([routeOf(path).route, routeOf(path).repository], [route, repository], `${path} (round ${round + 1})`);
  }
});

test('unique and long paths: every answer right, the cache past its bound starts again', () => {
  let most = 0;
  for (let n = 0; n < 10_000; n++) {
    const info = routeOf(`/v2/team-${n}/app/manifests/v${n}`);
    assert.equal(info.repository, `team-${n}/app`);
    most = Math.max(most, routeCacheSize());
  }
  assert.equal(most, 4096, 'the cache filled to its bound and no further');
  assert.ok(routeCacheSize() < 4096, 'then started again');
  // Longer than the cache takes (256 characters): parsed each time.
  const long = `/v2/${'a'.repeat(200)}/b/manifests/${'v'.repeat(100)}`;
  const size = routeCacheSize();
  assert.equal(routeOf(long).repository, `${'a'.repeat(200)}/b`);
  assert.equal(routeCacheSize(), size, 'a path over 256 characters is not kept');
  assert.equal(routeOf(long).route, '/v2/{name}/manifests/{reference}');
  assert.equal(routeOf(`/v2/${'a/'.repeat(400)}b/manifests/v1`).repository, undefined, 'a name over 255 characters is invalid');
  assert.equal(routeOf('/v2/team-0/app/manifests/v0').repository, 'team-0/app');
});
