// The metadata suite on a real PostgreSQL started for this file (storage/testing/postgres.ts),
// plus what only a database server has: migrations, bad configuration, a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defineMetadataSuite } from './metadata-suite.js';
import { PostgresMetadata } from './postgres-metadata.js';
import { MIGRATIONS } from './postgres-migrations.js';
import { StorageConfigError, StorageUnavailableError } from './blob-driver.js';
import { postgresMissing, startPostgres, type TestPostgres } from './testing/postgres.js';

const missing = postgresMissing();
let pg: TestPostgres | undefined;
let url = '';

async function database(name: string): Promise<string> {
  pg ??= await startPostgres();
  return pg.createDatabase(name);
}

defineMetadataSuite(
  'PostgreSQL',
  missing
    ? { skip: missing }
    : {
        async open() {
          url = await database('suite');
          const m = new PostgresMetadata(url);
          await m.open();
          return m;
        },
        async openAnother() {
          const m = new PostgresMetadata(url);
          await m.open();
          return m;
        },
        async cleanup() {},
      },
);

test('PostgreSQL: schema created and migrated by berth itself, once, also when replicas start together', { skip: missing }, async () => {
  const u = await database('migrations');
  const replicas = [new PostgresMetadata(u), new PostgresMetadata(u), new PostgresMetadata(u)];
  await Promise.all(replicas.map((r) => r.open()));
  assert.equal((await pg!.psql('select string_agg(version::text, \',\' order by version) from berth_schema', 'migrations')).trim(), MIGRATIONS.map((_, i) => i + 1).join(','));
  await Promise.all(replicas.map((r) => r.close()));
  // A database from a newer berth is refused with one clear line.
  await pg!.psql('insert into berth_schema (version) values (99)', 'migrations');
  const newer = new PostgresMetadata(u);
  await assert.rejects(newer.open(), (e: Error) => e instanceof StorageConfigError && e.message.includes(`schema version 99; this berth knows ${MIGRATIONS.length}`));
  await newer.close().catch(() => undefined);
});

test('PostgreSQL: bad configuration fails at open with one clear line, no password in it', { skip: missing }, async () => {
  await database('config');
  const wrongPassword = `postgres://${pg!.user}:not-the-password@${pg!.host}:${pg!.port}/config`;
  const noDb = `postgres://${pg!.user}:${pg!.password}@${pg!.host}:${pg!.port}/no_such_db`;
  const closed = `postgres://${pg!.user}:${pg!.password}@127.0.0.1:1/config`;
  for (const [u, re] of [
    [wrongPassword, /refused the credentials/],
    [noDb, /database at postgres:\/\/berth@127\.0\.0\.1:\d+\/no_such_db does not exist/],
    [closed, /unreachable: ECONNREFUSED/],
  ] as const) {
    const m = new PostgresMetadata(u);
    await assert.rejects(m.open(), (e: Error) => {
      assert.ok(e instanceof StorageConfigError, `${e.name}: ${e.message}`);
      assert.match(e.message, re);
      assert.ok(!e.message.includes('not-the-password') && !e.message.includes(pg!.password), 'no password in the message');
      assert.ok(!e.message.includes('\n'), 'one line');
      return true;
    });
  }
});

test('PostgreSQL restarted while idle: the next requests succeed', { skip: missing }, async () => {
  const u = await database('restart');
  const m = new PostgresMetadata(u);
  await m.open();
  try {
    await m.linkBlob('team/app', `sha256:${'a'.repeat(64)}`, 1);
    await pg!.restart();
    // The pool's connections were cut by the restart: the very next requests succeed anyway.
    assert.deepEqual(await m.getBlobLink('team/app', `sha256:${'a'.repeat(64)}`), { size: 1 });
    assert.equal(await m.repositoryExists('team/app'), true);
    await pg!.restart();
    await m.linkBlob('team/app', `sha256:${'b'.repeat(64)}`, 2);
    await pg!.restart();
    await m.exclusive(`sha256:${'c'.repeat(64)}`, () => m.touchContent(`sha256:${'c'.repeat(64)}`, 3)).catch(async (e: unknown) => {
      // A guarded section is not retried (it may have stored content): 503-worthy, then fine.
      assert.ok(e instanceof StorageUnavailableError, String(e));
      await m.exclusive(`sha256:${'c'.repeat(64)}`, () => m.touchContent(`sha256:${'c'.repeat(64)}`, 3));
    });
    assert.equal((await m.getContent(`sha256:${'c'.repeat(64)}`))?.size, 3);
  } finally {
    await m.close();
  }
});

test.after(async () => {
  await pg?.stop();
});
