// The web UI extension (docs/ui.md): / lists repositories, /r/<name> a repository's tags,
// /r/<name>:<tag> and /r/<name>@<digest> an image, /ui/… login, logout, delete and the static
// files. This module is all that loads with the registry; the pages, templates and assets are
// imported on the first request for a UI path, so a registry nobody browses never pays for them.
import type { Middleware } from 'koa';
import type { RegistryState } from '../../context.js';
import type { Extension, ExtensionContext } from '../extension.js';

/** Paths the UI answers; every other request goes on to the registry API untouched. */
export function isUiPath(path: string): boolean {
  return path === '/' || path.startsWith('/r/') || path.startsWith('/ui/') || path === '/favicon.ico';
}

export const uiExtension: Extension = {
  name: 'ui',
  enabled: (config) => config.ui,
  setup(ctx: ExtensionContext): Middleware<RegistryState> {
    let handler: Promise<Middleware<RegistryState>> | undefined;
    return async (koa, next) => {
      if (!isUiPath(koa.path)) return next();
      handler ??= import('./ui-app.js').then((m) => m.createUiApp(ctx)).catch((e: unknown) => {
        handler = undefined;
        throw e;
      });
      return (await handler)(koa, next);
    };
  },
};
