// Optional features of `berth serve` beside the registry API, in the shape of zot's extensions:
// each lives in server/extensions/<name>/, says whether the configuration turns it on, and gives
// middleware for the paths it owns. Its modules are imported only when it is on, and an
// extension may defer its heavy modules further, to its first request (the web UI does).
import type { Middleware } from 'koa';
import type { Logger } from 'pino';
import type { RegistryStore } from '../../storage/registry-store.js';
import type { AccessControl } from '../auth/access-control.js';
import type { ServerConfig } from '../config.js';
import type { RegistryState } from '../context.js';

export interface ExtensionContext {
  store: RegistryStore;
  config: ServerConfig;
  log: Logger;
  /** The access control of --auth htpasswd|token; absent: no authentication. */
  access?: AccessControl;
}

export interface Extension {
  name: string;
  enabled(config: ServerConfig): boolean;
  /** Middleware that answers the extension's own paths and passes every other request on. */
  setup(ctx: ExtensionContext): Middleware<RegistryState>;
}

/** Every extension, by name, loaded only when the configuration enables it. */
const KNOWN: ReadonlyArray<{ name: string; enabled(config: ServerConfig): boolean; load(): Promise<Extension> }> = [
  { name: 'ui', enabled: (c) => c.ui, load: async () => (await import('./ui/index.js')).uiExtension },
];

export async function setupExtensions(ctx: ExtensionContext): Promise<Array<Middleware<RegistryState>>> {
  const out: Array<Middleware<RegistryState>> = [];
  for (const k of KNOWN) {
    if (!k.enabled(ctx.config)) continue;
    const ext = await k.load();
    out.push(ext.setup(ctx));
  }
  return out;
}
