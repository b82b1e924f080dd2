// A deliberately thin HTTP client for the conformance suite: global fetch (undici), no knowledge of
// Berth. Everything the suite learns about a registry comes from status codes, headers and bodies.
import assert from 'node:assert/strict';

export interface SendOptions {
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  /** Query parameters appended to the path or Location (which may already carry some). */
  query?: Record<string, string | string[]>;
}

export interface RegistryResponse {
  status: number;
  headers: Headers;
  body: Buffer;
  /** The body as JSON; fails the test when it is not JSON. */
  json<T = unknown>(): T;
}

export class RegistryHttp {
  constructor(readonly baseUrl: string) {}

  /** Resolves a path or a Location header (absolute or relative, spec#post-then-put) to a URL. */
  url(pathOrLocation: string, query?: SendOptions['query']): string {
    const u = new URL(pathOrLocation, this.baseUrl);
    for (const [k, v] of Object.entries(query ?? {})) for (const one of ([] as string[]).concat(v)) u.searchParams.append(k, one);
    return u.toString();
  }

  async send(method: string, pathOrLocation: string, opts: SendOptions = {}): Promise<RegistryResponse> {
    const res = await fetch(this.url(pathOrLocation, opts.query), {
      method,
      headers: opts.headers ?? {},
      // Node's BodyInit types want ArrayBuffer-backed views; a Buffer slice is one at runtime.
      ...(opts.body !== undefined ? { body: opts.body as unknown as NonNullable<RequestInit['body']> } : {}),
      redirect: 'follow',
    });
    const body = Buffer.from(await res.arrayBuffer());
    return {
      status: res.status,
      headers: res.headers,
      body,
      json<T>(): T {
        try {
          return JSON.parse(body.toString('utf8')) as T;
        } catch {
          assert.fail(`${method} ${pathOrLocation}: expected a JSON body, got ${JSON.stringify(body.toString('utf8').slice(0, 200))}`);
        }
      },
    };
  }

  get(p: string, o?: SendOptions) {
    return this.send('GET', p, o);
  }
  head(p: string, o?: SendOptions) {
    return this.send('HEAD', p, o);
  }
  put(p: string, o?: SendOptions) {
    return this.send('PUT', p, o);
  }
  post(p: string, o?: SendOptions) {
    return this.send('POST', p, o);
  }
  patch(p: string, o?: SendOptions) {
    return this.send('PATCH', p, o);
  }
  delete(p: string, o?: SendOptions) {
    return this.send('DELETE', p, o);
  }
}
