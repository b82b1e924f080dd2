// The flags that say where a registry's data lives, declared once for every verb that opens the
// store (`berth serve`, `berth fsck`): the data folder, the config file, the blob storage driver
// and the metadata database. Their values layer like every setting (server/config.ts).
import type { Command } from 'commander';
import type { ConfigOverrides } from './config.js';
import { DEFAULT_CONFIG } from './config.js';

export interface StorageFlags {
  data?: string;
  config?: string;
  storage?: string;
  s3Bucket?: string;
  s3Endpoint?: string;
  s3Region?: string;
  s3Prefix?: string;
  metadata?: string;
}

export function addStorageOptions(cmd: Command): Command {
  return cmd
    .option('--data <dir>', `data folder: blobs and LevelDB metadata (env BERTH_DATA; default ${DEFAULT_CONFIG.data})`)
    .option('--config <file>', 'config file, YAML (.yaml/.yml) or JSON, same keys as docs/server.md (env BERTH_SERVE_CONFIG)')
    .option('--storage <driver>', 'where blob content lives: fs (files in --data) or s3 (env BERTH_STORAGE; default fs)')
    .option('--s3-bucket <bucket>', 'bucket of --storage s3 (env BERTH_S3_BUCKET); credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY')
    .option('--s3-endpoint <url>', 'S3-compatible endpoint, path-style addressing (env BERTH_S3_ENDPOINT; default AWS)')
    .option('--s3-region <region>', 'region of the bucket (env BERTH_S3_REGION; default us-east-1)')
    .option('--s3-prefix <prefix>', 'key prefix inside the bucket (env BERTH_S3_PREFIX)')
    .option('--metadata <url>', 'postgres://USER[:PASS]@HOST:PORT/DB: metadata shared by replicas (env BERTH_METADATA; default LevelDB in --data)');
}

/** The overrides these flags give (undefined where a flag is absent, so env and file apply). */
export function storageOverrides(o: StorageFlags, extra: { s3Redirect?: boolean | undefined } = {}): Pick<ConfigOverrides, 'data' | 'storage' | 'metadata'> {
  return {
    data: o.data,
    storage: { driver: o.storage, bucket: o.s3Bucket, endpoint: o.s3Endpoint, region: o.s3Region, prefix: o.s3Prefix, redirect: extra.s3Redirect },
    metadata: o.metadata,
  };
}
