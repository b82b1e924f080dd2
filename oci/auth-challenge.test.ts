import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseChallenge, parseChallenges, realmRefusal } from './auth-challenge.js';
import { AccessPolicy } from './access-policy.js';

test('challenge parser: several params, quoted commas and escapes, scheme case, several challenges', () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"'), {
    scheme: 'bearer',
    params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:samalba/my-app:pull,push' },
  });
  // Scheme and parameter names are case-insensitive; spaces around `=` and `,`; token (unquoted) values.
  assert.deepEqual(parseChallenge('bEaReR  Realm = "https://a/token" ,  SERVICE=reg , error=insufficient_scope'), {
    scheme: 'bearer',
    params: { realm: 'https://a/token', service: 'reg', error: 'insufficient_scope' },
  });
  assert.deepEqual(parseChallenge('BASIC realm="a \\"quoted\\" realm, with a comma"'), { scheme: 'basic', params: { realm: 'a "quoted" realm, with a comma' } });
  // The params of a later challenge do not overwrite the first one's.
  assert.deepEqual(parseChallenges('Bearer realm="https://a/token",service="s", Basic realm="other"'), [
    { scheme: 'bearer', params: { realm: 'https://a/token', service: 's' } },
    { scheme: 'basic', params: { realm: 'other' } },
  ]);
  // The first Basic or Bearer challenge, after a token68 one and across several header lines.
  assert.deepEqual(parseChallenge(['Negotiate YII=', 'Bearer realm="https://b/token",scope="repository:x:pull"']), {
    scheme: 'bearer',
    params: { realm: 'https://b/token', scope: 'repository:x:pull' },
  });
  assert.equal(parseChallenge('Digest realm="x", nonce="y"'), undefined);
  assert.equal(parseChallenge(''), undefined);
  assert.equal(parseChallenge(undefined), undefined);
  assert.deepEqual(parseChallenge('Basic'), { scheme: 'basic', params: {} });
});

test('realm policy: https always; plain http only from a plain-http registry to an insecure host', () => {
  const policy = new AccessPolicy(['reg.lan:5000']);
  const refused = (realm: string, registry: string) => realmRefusal(new URL(realm), registry, policy);
  assert.equal(refused('https://auth.example/token', 'https://registry.example'), undefined);
  assert.equal(refused('https://auth.example/token', 'http://127.0.0.1:5000'), undefined);
  assert.equal(refused('http://127.0.0.1:5001/token', 'http://127.0.0.1:5000'), undefined);
  assert.equal(refused('http://reg.lan:5000/token', 'http://reg.lan:5000'), undefined);
  // An https registry never hands credentials to a plain-http realm, loopback or not.
  assert.match(refused('http://127.0.0.1:5001/token?x=1', 'https://127.0.0.1:5000')!, /^token realm http:\/\/127\.0\.0\.1:5001\/token is plain HTTP but registry https:\/\/127\.0\.0\.1:5000 is HTTPS/);
  assert.match(refused('http://auth.example/token', 'https://registry.example')!, /plain HTTP but registry/);
  // A plain-http registry's realm on a host not marked insecure.
  assert.match(refused('http://reg.lan:5001/token', 'http://reg.lan:5000')!, /reg\.lan:5001 is not an insecure registry/);
  assert.match(refused('ftp://a/token', 'http://127.0.0.1:5000')!, /unsupported scheme ftp:/);
});
