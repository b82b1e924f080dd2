import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findCredentials, removeCredentials, storeCredentials } from './credentials.js';
import { parseConfig } from './config.js';
import { tempDir } from './testing/peers.js';

test("credentials: Berth's file first, then docker's; Docker Hub keyed as docker does", async () => {
  const home = await tempDir();
  const saved = { HOME: process.env.HOME, BERTH_AUTH_CONFIG: process.env.BERTH_AUTH_CONFIG, DOCKER_CONFIG: process.env.DOCKER_CONFIG };
  process.env.HOME = home;
  delete process.env.DOCKER_CONFIG;
  process.env.BERTH_AUTH_CONFIG = join(home, 'berth-auth.json');
  try {
    await mkdir(join(home, '.docker'));
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    await writeFile(join(home, '.docker', 'config.json'), JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: b64('hub:pw') }, 'reg.example:5000': { auth: b64('d:1') } } }));
    assert.deepEqual(await findCredentials('docker.io'), { username: 'hub', password: 'pw' });
    assert.deepEqual(await findCredentials('reg.example:5000'), { username: 'd', password: '1' });
    assert.equal(await findCredentials('other.example'), undefined);
    await storeCredentials('reg.example:5000', { username: 'b', password: 'p:with:colons' });
    assert.deepEqual(await findCredentials('reg.example:5000'), { username: 'b', password: 'p:with:colons' });
    assert.equal((await stat(process.env.BERTH_AUTH_CONFIG)).mode & 0o777, 0o600);
    await storeCredentials('docker.io', { username: 'x', password: 'y' });
    assert.ok(JSON.parse(await readFile(process.env.BERTH_AUTH_CONFIG, 'utf8')).auths['https://index.docker.io/v1/']);
    assert.equal(await removeCredentials('reg.example:5000'), true);
    assert.deepEqual(await findCredentials('reg.example:5000'), { username: 'd', password: '1' });
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

test('credentials: credHelpers and credsStore of docker\'s config.json are asked as docker does', async () => {
  const home = await tempDir();
  const saved = { HOME: process.env.HOME, BERTH_AUTH_CONFIG: process.env.BERTH_AUTH_CONFIG, DOCKER_CONFIG: process.env.DOCKER_CONFIG, PATH: process.env.PATH };
  process.env.HOME = home;
  delete process.env.DOCKER_CONFIG;
  process.env.BERTH_AUTH_CONFIG = join(home, 'berth-auth.json');
  // Two helpers speaking the docker-credential-helpers protocol: server URL on stdin, JSON out.
  const bin = join(home, 'bin');
  await mkdir(bin);
  const helper = async (name: string, user: string) => {
    const script = `#!/bin/sh
[ "$1" = get ] || exit 2
read -r url
echo "$url" >> "${join(home, `${name}.log`)}"
case "$url" in
  reg.example:5000|https://index.docker.io/v1/) printf '{"ServerURL":"%s","Username":"${user}","Secret":"pw-%s"}' "$url" "$url" ;;
  token.example) printf '{"ServerURL":"%s","Username":"<token>","Secret":"refresh"}' "$url" ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`;
    await writeFile(join(bin, `docker-credential-${name}`), script, { mode: 0o755 });
  };
  await helper('store', 'from-store');
  await helper('special', 'from-special');
  process.env.PATH = `${bin}:${process.env.PATH}`;
  try {
    await mkdir(join(home, '.docker'));
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    await writeFile(
      join(home, '.docker', 'config.json'),
      JSON.stringify({ credsStore: 'store', credHelpers: { 'https://reg.example:5000': 'special', 'gone.example': 'uninstalled' }, auths: { 'reg.example:5000': {}, 'other.example': { auth: b64('ignored:x') } } }),
    );
    assert.deepEqual(await findCredentials('reg.example:5000'), { username: 'from-special', password: 'pw-reg.example:5000' }, 'credHelpers before credsStore');
    assert.deepEqual(await findCredentials('docker.io'), { username: 'from-store', password: 'pw-https://index.docker.io/v1/' }, 'Docker Hub asked by its index URL');
    assert.equal(await findCredentials('other.example'), undefined, 'with a credsStore, auths entries are not used');
    assert.equal(await findCredentials('token.example'), undefined, 'identity tokens are not exchanged');
    assert.equal(await findCredentials('gone.example'), undefined, 'a helper not installed holds nothing');
    // Berth's own file still comes first.
    await storeCredentials('reg.example:5000', { username: 'b', password: 'p' });
    assert.deepEqual(await findCredentials('reg.example:5000'), { username: 'b', password: 'p' });
    assert.equal(await readFile(join(home, 'special.log'), 'utf8'), 'reg.example:5000\n');
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

test('config: daemon.json keys validated with the file named in errors', () => {
  const c = parseConfig({ 'insecure-registries': ['http://reg.lan:5000/'], 'registry-mirrors': ['https://m1'], 'registry-mirror-map': { 'ghcr.io': ['http://10.0.0.1:5000'] }, 'log-level': 'debug' }, '/etc/berth/daemon.json');
  assert.deepEqual(c.insecureRegistries, ['reg.lan:5000']);
  assert.deepEqual(c.mirrors, { 'docker.io': ['https://m1'], 'ghcr.io': ['http://10.0.0.1:5000'] });
  assert.throws(() => parseConfig({ 'registry-mirrors': 'https://m1' }, 'f.json'), /^Error: f\.json: registry-mirrors must be an array of strings$/);
  assert.throws(() => parseConfig({ 'registry-mirror-map': { 'ghcr.io': ['ftp://x/y/z'] } }, 'f.json'), /invalid mirror/);
  assert.throws(() => parseConfig({ 'max-concurrent-uploads': 0 }, 'f.json'), /positive integer/);
});
