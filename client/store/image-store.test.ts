// The local store on a real filesystem: tags moving, dangling images, prune, concurrent updates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { rm, stat, utimes, writeFile } from 'node:fs/promises';
import tar from 'tar-stream';
import { LocalImageStore, danglingImages } from './image-store.js';
import { importRootfs } from '../archive/import.js';
import { parseReference } from '../../oci/reference.js';
import { berth, tempDir } from '../testing/peers.js';

async function rootfs(content: string): Promise<Readable> {
  const pack = tar.pack();
  pack.entry({ name: 'etc/hello', mode: 0o644, mtime: new Date(0) }, content);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Readable.from([Buffer.concat(chunks)]);
}

test('a moved tag leaves a dangling image; image prune removes it and only its blobs', async () => {
  const root = await tempDir();
  const store = await LocalImageStore.open(root);
  const ref = parseReference('local/app:1');
  await importRootfs(store, await rootfs('one'), { ref });
  await importRootfs(store, await rootfs('two'), { ref });
  await importRootfs(store, await rootfs('kept'), { ref: parseReference('local/other:1') });
  const doc = await store.index.read();
  assert.equal(danglingImages(doc).length, 1);
  const env = { BERTH_ROOT: root, HOME: root };
  const images = await berth(['images'], env);
  assert.match(images.stdout, /^<none>\s+<none>\s/m);
  const before = (await store.allBlobs()).length;
  const df = await berth(['system', 'df'], env);
  assert.match(df.stdout, /^Images\s+3\s+0\s+\S+\s+[1-9]/m);
  const prune = await berth(['image', 'prune', '-f'], env);
  assert.equal(prune.code, 0, prune.stderr);
  assert.match(prune.stdout, /^deleted: sha256:/m);
  assert.equal((await store.allBlobs()).length, before - 3);
  assert.equal(danglingImages(await store.index.read()).length, 0);
  assert.equal((await store.resolve('local/app:1')).ref?.tag, '1');
  assert.equal((await berth(['image', 'prune', '-a', '-f'], env)).code, 0);
  assert.deepEqual(await store.allBlobs(), []);
});

test('images --filter: dangling, reference globs, before/since; values of one key OR, keys AND; bad filters refused', async () => {
  const root = await tempDir();
  const store = await LocalImageStore.open(root);
  await importRootfs(store, await rootfs('old'), { ref: parseReference('local/app:1') });
  await importRootfs(store, await rootfs('mid'), { ref: parseReference('local/app:1') }); // leaves "old" dangling
  await importRootfs(store, await rootfs('new'), { ref: parseReference('team/web:2') });
  const env = { BERTH_ROOT: root, HOME: root };
  const shown = async (...filters: string[]) => {
    const r = await berth(['images', ...filters.flatMap((f) => ['--filter', f])], env);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/).slice(0, 2).join(':')).sort();
  };
  assert.deepEqual(await shown(), ['<none>:<none>', 'local/app:1', 'team/web:2']);
  assert.deepEqual(await shown('dangling=true'), ['<none>:<none>']);
  assert.deepEqual(await shown('dangling=false'), ['local/app:1', 'team/web:2']);
  assert.deepEqual(await shown('reference=local/*'), ['local/app:1']);
  assert.deepEqual(await shown('reference=*/*:2'), ['team/web:2']);
  assert.deepEqual(await shown('reference=local/*', 'reference=team/web'), ['local/app:1', 'team/web:2']);
  assert.deepEqual(await shown('reference=*', 'dangling=true'), [], 'a glob does not cross "/"');
  assert.deepEqual(await shown('since=local/app:1'), ['team/web:2']);
  assert.deepEqual(await shown('before=team/web:2', 'dangling=false'), ['local/app:1']);
  const q = await berth(['images', '-q', '-f', 'dangling=true'], env);
  assert.match(q.stdout, /^[0-9a-f]{12}\n$/);
  for (const [bad, message] of [
    ['colour=red', /invalid filter 'colour'/],
    ['dangling', /bad format of filter/],
    ['dangling=maybe', /invalid filter 'dangling=maybe'/],
    ['since=nope:1', /No such image: nope:1/],
  ] as const) {
    const r = await berth(['images', '--filter', bad], env);
    assert.equal(r.code, 1, bad);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, message);
  }
});

test('concurrent index updates from several writers are all kept', async () => {
  const root = await tempDir();
  const stores = await Promise.all([1, 2, 3, 4].map(() => LocalImageStore.open(root)));
  await Promise.all(stores.map((s, i) => s.noteSources({ [`sha256:${String(i).repeat(64)}`]: `r/${i}` })));
  const doc = await stores[0]!.index.read();
  assert.equal(Object.keys(doc.sources).length, 4);
});

test('prune leaves young unnamed blobs (a pull in progress) and removes old ones; a vanished blob is never named', async () => {
  const root = await tempDir();
  const store = await LocalImageStore.open(root);
  const env = { BERTH_ROOT: root, HOME: root };
  const { digest } = await store.blobs.putBytes(Buffer.from('left by a pull still running'));
  await berth(['image', 'prune', '-f'], env);
  assert.ok(await store.blobs.has(digest));
  const old = new Date(Date.now() - 2 * 3600 * 1000);
  await utimes(store.blobs.layout.blobPath(digest), old, old);
  await berth(['image', 'prune', '-f'], env);
  assert.ok(!(await store.blobs.has(digest)));

  await importRootfs(store, await rootfs('x'), { ref: parseReference('local/x:1') });
  const record = (await store.resolve('local/x:1')).record;
  await store.blobs.delete(record.layers![0]!.digest);
  await assert.rejects(store.register([record], [parseReference('local/y:1')], record.digest), /was removed while this command ran/);
  assert.equal((await store.index.read()).tags['docker.io/local/y:1'], undefined);
});

test('registering what is registered already writes nothing (no lock, no new index file); a change is written', async () => {
  const root = await tempDir();
  const store = await LocalImageStore.open(root);
  const blob = `sha256:${'a'.repeat(64)}`;
  await store.noteSources({ [blob]: 'team/app' });
  const indexFile = `${store.index.dir}/index.json`;
  const before = await stat(indexFile);
  // A warm push notes the same source and repo digest again: the file is not replaced (a write
  // is a new file renamed over it: a new inode).
  await store.noteSources({ [blob]: 'team/app' });
  const same = await stat(indexFile);
  assert.deepEqual([same.ino, same.mtimeMs], [before.ino, before.mtimeMs]);
  // Not even the lock is taken: a lock held by a live process does not hold it up.
  await writeFile(`${store.index.dir}/index.lock`, String(process.pid));
  await store.noteSources({ [blob]: 'team/app' });
  await rm(`${store.index.dir}/index.lock`);
  await store.noteSources({ [blob]: 'team/other' });
  const changed = await stat(indexFile);
  assert.notEqual(changed.ino, before.ino);
  assert.deepEqual((await store.index.read()).sources[blob], ['team/app', 'team/other']);
});
