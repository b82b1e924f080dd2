// The two pieces of undici the client uses (Agent and the request API), loaded by their module
// paths instead of through `undici`'s index. The index also loads fetch, WebSocket, the mock and
// proxy agents, the cache and every interceptor: measured 0.35-0.4 s of a CLI start on the
// development machine, against ~0.08 s for these two (`node -e "require(…)"`, Node 20).
// A warm push is otherwise mostly that start-up (docs/performance.md, client section).
import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import type { Agent as AgentType, Dispatcher } from 'undici';

const require = createRequire(import.meta.url);

// undici parses HTTP with llhttp compiled to WebAssembly. V8 compiles it twice: Liftoff at once,
// then TurboFan on a background thread, and a process cannot exit before that thread is done:
// ~0.25-0.4 s at the end of every CLI run (a warm push took 0.65 s, 0.28 s with this flag; strace
// shows the main thread joining the compile thread). A pull of 300 MB parses no slower in Liftoff
// code within noise (bench/client.ts). Client processes only: the server does not load this module.
setFlagsFromString('--liftoff-only');

export type Agent = AgentType;
export type ResponseData = Dispatcher.ResponseData;

export const Agent = require('undici/lib/dispatcher/agent') as typeof AgentType;

const apiRequest = require('undici/lib/api/api-request') as (this: Dispatcher, opts: Dispatcher.RequestOptions) => Promise<ResponseData>;

export type RequestOptions = Omit<Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & {
  method?: Dispatcher.HttpMethod;
  dispatcher: Dispatcher;
};

/** undici's `request(url, opts)` with an explicit dispatcher (what the index's wrapper does). */
export function request(url: string | URL, opts: RequestOptions): Promise<ResponseData> {
  const u = typeof url === 'string' ? new URL(url) : url;
  const { dispatcher, ...rest } = opts;
  return apiRequest.call(dispatcher, {
    ...rest,
    origin: u.origin,
    path: u.search ? `${u.pathname}${u.search}` : u.pathname,
    method: opts.method ?? (opts.body ? 'PUT' : 'GET'),
  });
}
