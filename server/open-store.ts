// Opening the registry's store from its configuration, the one way for every verb that needs it
// (`berth serve`, `berth fsck`): PostgreSQL and the AWS SDK are loaded only when asked for.
import { RegistryStore } from '../storage/registry-store.js';
import { Quotas } from '../storage/quota.js';
import { StorageConfigError, type BlobDriver, type CommitGuard } from '../storage/blob-driver.js';
import type { ServerConfig } from './config.js';

async function s3DriverFactory(s: Extract<ServerConfig['storage'], { driver: 's3' }>): Promise<(guard: CommitGuard) => BlobDriver> {
  const { S3BlobDriver } = await import('../storage/drivers/s3.js');
  return (guard) => new S3BlobDriver({ bucket: s.bucket, region: s.region, guard, ...(s.endpoint ? { endpoint: s.endpoint } : {}), ...(s.prefix ? { prefix: s.prefix } : {}) });
}

/**
 * The store of `config`, opened. LevelDB metadata is one process's: a data folder another process
 * holds (a running `berth serve`) fails with a StorageConfigError saying so.
 */
export async function openStore(config: ServerConfig): Promise<RegistryStore> {
  // PostgreSQL (and its client) only when asked for: the default start loads neither.
  const metadata = config.metadata ? new (await import('../storage/postgres-metadata.js')).PostgresMetadata(config.metadata) : undefined;
  const storage = config.storage;
  // The AWS SDK only with --storage s3: the default start does not load it.
  const blobDriver = storage.driver === 's3' ? await s3DriverFactory(storage) : undefined;
  // Namespaces group the usage counters even without limits; a change of grouping recounts them at open.
  const quotas = new Quotas(config.quotas);
  const store = new RegistryStore(config.data, { quotas, ...(metadata ? { metadata } : {}), ...(blobDriver ? { blobDriver } : {}) });
  try {
    await store.open();
  } catch (e) {
    await store.blobs.close().catch(() => undefined);
    const cause = (e as { cause?: { code?: string } }).cause;
    if (cause?.code === 'LEVEL_LOCKED') {
      throw new StorageConfigError(`the data folder ${config.data} is in use by a running berth serve (LevelDB lock)`);
    }
    throw e;
  }
  return store;
}
