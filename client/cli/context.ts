// Opening the config, the transport and the local store for a verb that talks to registries.
import { loadConfig } from '../config.js';
import { LocalImageStore } from '../store/image-store.js';
import { Transport, type TransportOptions } from '../transport/registry-client.js';

export async function openRegistryContext(configFlag?: string, options: TransportOptions = {}): Promise<{ transport: Transport; store: LocalImageStore }> {
  const config = await loadConfig(configFlag);
  const store = await LocalImageStore.open();
  return { transport: new Transport(config, options), store };
}
