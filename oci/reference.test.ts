import { test } from 'node:test';
import assert from 'node:assert/strict';
import { familiarReference, formatReference, parseReference } from './reference.js';

const D = 'sha256:' + 'a'.repeat(64);

test('references normalise as docker does', () => {
  const cases: Array<[string, string, string]> = [
    ['busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36'],
    ['ns/app', 'docker.io/ns/app:latest', 'ns/app:latest'],
    ['index.docker.io/library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['localhost/app', 'localhost/app:latest', 'localhost/app:latest'],
    ['127.0.0.1:5000/team/app:1.0', '127.0.0.1:5000/team/app:1.0', '127.0.0.1:5000/team/app:1.0'],
    ['registry.example.com/a/b/c', 'registry.example.com/a/b/c:latest', 'registry.example.com/a/b/c:latest'],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`, `busybox@${D}`],
    [`host:5000/app:1@${D}`, `host:5000/app:1@${D}`, `host:5000/app:1@${D}`],
    ['[::1]:5000/app', '[::1]:5000/app:latest', '[::1]:5000/app:latest'],
  ];
  for (const [input, full, short] of cases) {
    const ref = parseReference(input);
    assert.equal(formatReference(ref), full, input);
    assert.equal(familiarReference(ref), short, input);
  }
  assert.deepEqual(parseReference('127.0.0.1:5000/team/app'), { registry: '127.0.0.1:5000', repository: 'team/app', tag: 'latest' });
});

test('invalid references are rejected with the reason', () => {
  for (const [input, why] of [
    ['', /empty/],
    ['Busybox', /lowercase/],
    ['busybox:', /tag/],
    ['busybox:-x', /tag/],
    ['busybox@sha256:abc', /digest/],
    ['a//b', /repository name/],
    ['host:5000/', /repository name/],
    ['bad_host!/x', /repository name|host/],
    [`x/${'a'.repeat(260)}`, /255|repository name/],
  ] as const) {
    assert.throws(() => parseReference(input), (e: Error) => e.name === 'ReferenceError' && why.test(e.message), input);
  }
});
