import type { ParameterizedContext } from 'koa';
import type { Logger } from 'pino';
import type { RegistryStore } from '../storage/registry-store.js';
import type { ServerConfig } from './config.js';
import type { RequestNotifier } from './notifications/hooks.js';

/** What every route handler can reach: the store, the config and the logger. */
export interface RegistryState {
  store: RegistryStore;
  config: ServerConfig;
  log: Logger;
  /** The authenticated account, set by the access control (for the access log). */
  user?: string;
  /** Request body bytes read so far (server/request-body.ts). */
  bodyBytes?: number;
  /** The request id (X-Request-Id), for logs and notifications. */
  reqId?: string;
  /** Webhook notifications (server/notifications/), when configured. */
  notifier?: RequestNotifier;
}

export type RegistryContext = ParameterizedContext<RegistryState, { params: Record<string, string> }>;

/** Answers `status` with no body at all (Koa would otherwise write the status text as the body). */
export function respondEmpty(ctx: RegistryContext, status: number): void {
  ctx.body = null;
  ctx.status = status;
}

/** What the caller of a listing may see and delete (by the access rules): /v1/search and the web UI filter by it. */
export interface Viewer {
  /** The authenticated account; absent: anonymous, or no authentication configured. */
  account?: string;
  /** Undefined: every repository. */
  canPull?: (name: string) => boolean;
  /** With canPull: every name it accepts starts with one of these (a search reads only those); undefined: any name may. */
  pullPrefixes?: string[];
  mayDelete(name: string): boolean;
}
