// One S3 request signed with AWS Signature Version 4 (node:crypto + node:http), enough for the
// fixtures and their tests to create a bucket and put/get an object on a test radosgw. Not a
// client: path-style addressing, the whole body in memory, no retries, no streaming.
import { createHash, createHmac } from 'node:crypto';
import { request } from 'node:http';

export interface S3Credentials {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface S3Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

/** RFC 3986 encoding as SigV4 wants it; `/` kept in paths. */
function uriEncode(s: string, keepSlash: boolean): string {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%2F/g, keepSlash ? '/' : '%2F');
}

/**
 * `method` on `/<bucket>[/<key>]` (`path`, not encoded) with optional `query` and `body`.
 * Resolves with whatever status the server answers; rejects only on network errors.
 */
export function s3Request(
  creds: S3Credentials,
  method: string,
  path: string,
  opts: { query?: Record<string, string>; body?: Buffer | string; headers?: Record<string, string> } = {},
): Promise<S3Response> {
  const url = new URL(creds.endpoint);
  const body = opts.body === undefined ? Buffer.alloc(0) : Buffer.from(opts.body);
  const now = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = now.slice(0, 8);
  const canonicalUri = uriEncode(path, true);
  const query = Object.entries(opts.query ?? {})
    .map(([k, v]) => [uriEncode(k, false), uriEncode(v, false)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const headers: Record<string, string> = {
    host: url.host,
    'x-amz-date': now,
    'x-amz-content-sha256': sha256(body),
    'content-length': String(body.length),
  };
  for (const [k, v] of Object.entries(opts.headers ?? {})) headers[k.toLowerCase()] = v;
  const names = Object.keys(headers).sort();
  const canonicalHeaders = names.map((n) => `${n}:${headers[n]!.trim()}\n`).join('');
  const canonicalRequest = [method, canonicalUri, query, canonicalHeaders, names.join(';'), headers['x-amz-content-sha256']].join('\n');
  const scope = `${day}/${creds.region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', now, scope, sha256(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${creds.secretAccessKey}`, day), creds.region), 's3'), 'aws4_request');
  const signature = createHmac('sha256', key).update(toSign).digest('hex');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path: canonicalUri + (query ? `?${query}` : ''), headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
