// `berth serve user`: files it writes are read by Apache's htpasswd and hold no password in clear.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, stat, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sh } from '../test-images.js';

const berth = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));

test('user add, passwd, ls and rm keep an htpasswd -B compatible file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-users-'));
  const file = join(dir, 'users');
  const user = (...args: string[]) => (input?: string) => sh(process.execPath, [berth, 'serve', 'user', ...args, '--htpasswd', file], input === undefined ? {} : { input });
  await user('add', 'alice')('first-pw\n');
  await user('add', 'bob')('bob-pw\n');
  await assert.rejects(user('add', 'alice')('again\n'), /exists/);
  await assert.rejects(user('add', 'bad:name')('x\n'), /invalid user name/);
  await sh('htpasswd', ['-vb', file, 'alice', 'first-pw']);
  await user('passwd', 'alice')('second-pw\n');
  await sh('htpasswd', ['-vb', file, 'alice', 'second-pw']);
  await assert.rejects(sh('htpasswd', ['-vb', file, 'alice', 'first-pw']));
  const text = await readFile(file, 'utf8');
  assert.ok(!text.includes('second-pw') && !text.includes('bob-pw'));
  assert.equal((await stat(file)).mode & 0o077, 0, 'readable by its owner only');
  assert.equal((await user('ls')()).stdout, 'alice\nbob\n');
  await user('rm', 'bob')();
  assert.equal((await user('ls')()).stdout, 'alice\n');
  await assert.rejects(user('rm', 'bob')(), /no user bob/);
  await rm(dir, { recursive: true, force: true });
});
