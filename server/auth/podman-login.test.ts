// `podman login` (Debian's podman) against both auth modes: the built-in token service and
// htpasswd. The auth file podman writes is then used by skopeo, so the login is proven usable.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestRegistry, type TestRegistry } from '../testing.js';
import { buildTestImage, hostOf, sh, skopeoCopy } from '../test-images.js';
import { DEFAULT_AUTH, type AuthConfig } from './config.js';

let dir: string;
let users: string;
let img: Awaited<ReturnType<typeof buildTestImage>>;
const registries: TestRegistry[] = [];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** podman with a private auth file (REGISTRY_AUTH_FILE), never the machine's own credentials. */
function podman(authFile: string, args: string[], input: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile('podman', args, { env: { ...process.env, REGISTRY_AUTH_FILE: authFile } }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(input);
  });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-podman-'));
  users = join(dir, 'users');
  await sh('htpasswd', ['-B', '-c', '-b', users, 'alice', 'alice-pw']);
  img = await buildTestImage({ randomBytes: 16 * 1024 });
});

after(async () => {
  for (const r of registries) await r.destroy();
  await rm(dir, { recursive: true, force: true });
});

for (const mode of ['token', 'htpasswd'] as const) {
  test(`podman login against --auth ${mode}: right password logs in and its auth file pulls, wrong one is refused`, async () => {
    const auth: AuthConfig = { ...DEFAULT_AUTH, mode, htpasswd: users };
    const reg = await startTestRegistry({ auth });
    registries.push(reg);
    const host = hostOf(reg.url);
    await skopeoCopy(img.ref, `docker://${host}/team/app:v1`, { destCreds: 'alice:alice-pw' });

    const authFile = join(dir, `${mode}-auth.json`);
    const ok = await podman(authFile, ['login', '--tls-verify=false', '-u', 'alice', '--password-stdin', host], 'alice-pw\n');
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /Login Succeeded/);
    const saved = JSON.parse(await readFile(authFile, 'utf8')) as { auths: Record<string, { auth: string }> };
    assert.equal(Buffer.from(saved.auths[host]!.auth, 'base64').toString(), 'alice:alice-pw');
    // What podman stored is enough for another containers/image client to pull.
    await sh('skopeo', ['copy', '--quiet', '--src-tls-verify=false', '--authfile', authFile, `docker://${host}/team/app:v1`, `oci:${join(dir, `${mode}-out`)}:v1`]);

    const badFile = join(dir, `${mode}-bad.json`);
    const bad = await podman(badFile, ['login', '--tls-verify=false', '-u', 'alice', '--password-stdin', host], 'wrong\n');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /invalid username\/password/);
    await assert.rejects(readFile(badFile, 'utf8'), 'a refused login stores nothing');

    const out = await podman(authFile, ['logout', host], '');
    assert.equal(out.code, 0, out.stderr);
    assert.equal((JSON.parse(await readFile(authFile, 'utf8')) as { auths: Record<string, unknown> }).auths[host], undefined);
  });
}
