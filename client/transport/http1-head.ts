// HTTP/1.1 message heads as the plain-HTTP readers (plain-get.ts, plain-exchange.ts) write and
// read them: a request line with header fields, and a response's status line and fields
// (RFC 9112 §3, §4, §5), refusing what they do not know.

/** Response heads larger than this are refused (undici's default limit is 16 KiB). */
export const MAX_HEAD = 64 << 10;

/** A response these readers do not parse (plainGet's caller asks again through node:http). */
export class PlainHttpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlainHttpError';
  }
}

/** A connection that failed or went silent, with the errno-style code callers test (ECONNRESET, ETIMEDOUT, EPROTO). */
export function connectionError(message: string, code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

export interface ResponseHead {
  statusCode: number;
  /** Names lower-cased; a field sent more than once is an array, as node:http's headersDistinct. */
  headers: Record<string, string | string[]>;
  /** HTTP/1.0, or HTTP/1.1 with `Connection: close`: the connection ends with this response. */
  closes: boolean;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** `METHOD target HTTP/1.1` and the fields, ending with the empty line; CR or LF in a field is refused. */
export function requestHead(method: string, url: URL, headers: Record<string, string>): string {
  const lines = [`${method} ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host}`];
  for (const [k, v] of Object.entries(headers)) {
    if (!TOKEN.test(k) || /[\r\n\0]/.test(v)) throw new PlainHttpError(`invalid header ${JSON.stringify(k.slice(0, 40))}`);
    lines.push(`${k}: ${v}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** Parses the status line and fields of `text` (the head without its final CRLF CRLF). */
export function parseResponseHead(text: string): ResponseHead {
  const lines = text.split('\r\n');
  const status = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!status) throw new PlainHttpError(`malformed status line ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  // No prototype: a field named __proto__ or constructor is a field like any other.
  const headers = Object.create(null) as Record<string, string | string[]>;
  for (const line of lines.slice(1)) {
    const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/.exec(line);
    if (!m) throw new PlainHttpError(`malformed header line ${JSON.stringify(line.slice(0, 80))}`);
    const name = m[1]!.toLowerCase();
    const prev = headers[name];
    headers[name] = prev === undefined ? m[2]! : Array.isArray(prev) ? [...prev, m[2]!] : [prev, m[2]!];
  }
  const connection = String(headers.connection ?? '').toLowerCase();
  const closes = status[1] === '0' ? !/\bkeep-alive\b/.test(connection) : /\bclose\b/.test(connection);
  return { statusCode: Number(status[2]), headers, closes };
}

/** The Content-Length of a head, undefined when absent; a malformed or repeated one is refused (RFC 9112 §6.3). */
export function contentLengthOf(head: ResponseHead): number | undefined {
  const v = head.headers['content-length'];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d{1,15}$/.test(v)) throw new PlainHttpError(`invalid Content-Length ${JSON.stringify(v)}`);
  return Number(v);
}
