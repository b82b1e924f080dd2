// The driver suite on the s3 driver against a real S3: Ceph's radosgw (a throwaway single-node
// cluster, storage/testing/ceph.ts), with 5 MiB parts and 5 MiB as the largest single
// CopyObject, so multipart puts, appends and copies all run on little data. Then what only S3 has:
// the start checks, 503 when the store is gone, pre-signed URLs.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { digestOf } from '../../oci/digest.js';
import { StorageConfigError, StorageUnavailableError, type CommitGuard } from '../blob-driver.js';
import { defineDriverSuite } from './driver-suite.js';
import { S3BlobDriver, type S3DriverOptions } from './s3.js';
import { cephMissing, startCeph, type TestCeph } from '../testing/ceph.js';
import { freePort } from '../testing/processes.js';

const MiB = 1 << 20;
const BUCKET = 'berth-drivers';
const missing = cephMissing();
const skip = missing ? `radosgw is not installed here: ${missing}` : undefined;
let ceph: TestCeph | undefined;

if (!skip) {
  before(async () => {
    ceph = await startCeph();
    await ceph.createBucket(BUCKET);
  });
  after(async () => {
    await ceph?.stop();
  });
}

function options(prefix: string, extra: Partial<S3DriverOptions> = {}): S3DriverOptions {
  if (!ceph) throw new Error('ceph is not running');
  const { endpoint, region, accessKeyId, secretAccessKey } = ceph;
  return { bucket: BUCKET, endpoint, region, accessKeyId, secretAccessKey, prefix, partSize: 5 * MiB, maxCopySize: 5 * MiB, ...extra };
}

/** Removes every key the driver wrote under its prefix. */
async function empty(driver: S3BlobDriver): Promise<void> {
  for await (const digest of driver.list()) await driver.delete(digest);
  for await (const { id } of driver.listUploads()) await driver.abortUpload(id, {});
}

let stores = 0;
defineDriverSuite(
  's3 (radosgw)',
  async ({ guard }: { guard?: CommitGuard }) => {
    const prefix = `suite-${process.pid}-${++stores}`;
    const made: S3BlobDriver[] = [];
    const make = (): S3BlobDriver => {
      const d = new S3BlobDriver(options(prefix, guard ? { guard } : {}));
      made.push(d);
      return d;
    };
    const driver = make();
    return {
      driver,
      replica: async () => make(),
      async cleanup() {
        await empty(driver);
        for (const d of made) await d.close();
      },
    };
  },
  { partSize: 5 * MiB, ...(skip ? { skip } : {}) },
);

describe('s3 driver: start checks, outages, redirects', { skip: skip ?? false }, () => {
  const oneLine = (re: RegExp) => (e: unknown) => e instanceof StorageConfigError && re.test(e.message) && !e.message.includes('\n');

  it('open(): a missing bucket is one clear line', async () => {
    const d = new S3BlobDriver({ ...options('x'), bucket: 'no-such-bucket' });
    await assert.rejects(d.open(), oneLine(new RegExp(`^S3 bucket no-such-bucket does not exist at ${ceph!.endpoint}$`)));
    await d.close();
  });

  it('open(): wrong credentials are one clear line', async () => {
    for (const creds of [
      { accessKeyId: 'NOSUCHKEY', secretAccessKey: 'x' },
      { accessKeyId: ceph!.accessKeyId, secretAccessKey: 'wrong-secret' },
    ]) {
      const d = new S3BlobDriver(options('x', creds));
      await assert.rejects(d.open(), oneLine(/^S3 refused the credentials for bucket berth-drivers at http:\/\/127\.0\.0\.1:\d+ \(HTTP 403/));
      await d.close();
    }
  });

  it('open(): an endpoint nobody answers on is one clear line', async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const d = new S3BlobDriver(options('x', { endpoint, maxAttempts: 1 }));
    await assert.rejects(d.open(), oneLine(new RegExp(`^S3 endpoint ${endpoint} unreachable: ECONNREFUSED$`)));
    await d.close();
  });

  it('requests to an unreachable store fail with StorageUnavailableError (the registry answers 503)', async () => {
    const d = new S3BlobDriver(options('x', { endpoint: `http://127.0.0.1:${await freePort()}`, maxAttempts: 1 }));
    const digest = digestOf('x');
    for (const op of [() => d.stat(digest), () => d.read(digest), () => d.put((async function* () {})(), { digest: digestOf('') })]) {
      await assert.rejects(op(), (e: unknown) => e instanceof StorageUnavailableError && /ECONNREFUSED/.test((e as Error).message));
    }
    await d.close();
  });

  it('redirectUrl(): a pre-signed GET anyone can fetch, for a while', async () => {
    const d = new S3BlobDriver(options(`redirect-${process.pid}`));
    try {
      const content = Buffer.from('pre-signed content');
      const digest = digestOf(content);
      await d.put((async function* () {
        yield content;
      })(), { digest });
      const url = await d.redirectUrl(digest, 60);
      assert.ok(url);
      const res = await fetch(url);
      assert.equal(res.status, 200);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(content));
      const ranged = await fetch(url, { headers: { Range: 'bytes=4-10' } });
      assert.equal(ranged.status, 206);
      assert.equal(await ranged.text(), content.subarray(4, 11).toString());
      const tampered = new URL(url);
      tampered.searchParams.set('X-Amz-Expires', '999999');
      assert.equal((await fetch(tampered)).status, 403);
    } finally {
      await empty(d);
      await d.close();
    }
  });
});
