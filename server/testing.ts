// An in-process registry on a loopback port with a fresh data folder, for tests and benchmarks.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CONFIG, validateConfig, type ServerConfig } from './config.js';
import { startRegistry, type RunningRegistry } from './serve.js';
import type { Logger } from 'pino';

export interface TestRegistry extends RunningRegistry {
  dataDir: string;
  /** Closes the server and removes its data folder. */
  destroy(): Promise<void>;
}

export async function startTestRegistry(overrides: Partial<ServerConfig> = {}, opts: { logger?: Logger } = {}): Promise<TestRegistry> {
  const dataDir = overrides.data ?? (await mkdtemp(join(tmpdir(), 'berth-test-')));
  const config = validateConfig({
    ...DEFAULT_CONFIG,
    listen: '127.0.0.1:0',
    logLevel: (process.env.BERTH_TEST_LOG_LEVEL as ServerConfig['logLevel']) ?? 'silent',
    ...overrides,
    data: dataDir,
  });
  const registry = await startRegistry(config, opts.logger ? { logger: opts.logger } : {});
  return {
    ...registry,
    dataDir,
    async destroy() {
      await registry.close(1000);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
