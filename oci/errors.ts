// The one error table: every failure Berth reports over the Distribution API maps to a code of
// distribution-spec/spec.md#error-codes (plus the Docker extras clients know), its HTTP status and a
// default message. The server emits it; the client parses it back into the same class.

export const ERROR_TABLE = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: 'manifest references a manifest or blob unknown to registry' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  // Docker-registry extras (docker-registry-api/api.md#errors) that real clients recognise.
  TAG_INVALID: { status: 400, message: 'manifest tag did not match URI' },
  PAGINATION_NUMBER_INVALID: { status: 400, message: 'invalid number of results requested' },
  RANGE_INVALID: { status: 416, message: 'invalid content range' },
  // distribution's errcode.ErrorCodeUnavailable: the storage or metadata backend is down; retry.
  UNAVAILABLE: { status: 503, message: 'service unavailable' },
  UNKNOWN: { status: 500, message: 'unknown error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_TABLE;

export function isErrorCode(s: string): s is ErrorCode {
  return Object.hasOwn(ERROR_TABLE, s);
}

/** A failure with a spec error code. `status` defaults to the table's; a few call sites need another
 * (413 for an oversized manifest, 416 for an out-of-order chunk) and say so. */
export class RegistryError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: unknown;
  constructor(code: ErrorCode, message?: string, opts: { status?: number; detail?: unknown } = {}) {
    super(message ?? ERROR_TABLE[code].message);
    this.name = 'RegistryError';
    this.code = code;
    this.status = opts.status ?? ERROR_TABLE[code].status;
    this.detail = opts.detail;
  }

  /** The spec's JSON envelope: `{"errors":[{code,message,detail}]}`. */
  toBody(): { errors: Array<{ code: string; message: string; detail?: unknown }> } {
    const entry: { code: string; message: string; detail?: unknown } = { code: this.code, message: this.message };
    if (this.detail !== undefined) entry.detail = this.detail;
    return { errors: [entry] };
  }

  /** Parses an error body returned by any registry; unknown shapes become UNKNOWN with the HTTP status. */
  static fromResponse(status: number, body: string): RegistryError {
    try {
      const parsed = JSON.parse(body) as { errors?: Array<{ code?: string; message?: string; detail?: unknown }> };
      const first = parsed.errors?.[0];
      if (first?.code) {
        const code = isErrorCode(first.code) ? first.code : 'UNKNOWN';
        return new RegistryError(code, first.message || ERROR_TABLE[code].message, { status, detail: first.detail });
      }
    } catch {
      // not JSON: fall through
    }
    const text = body.trim().slice(0, 200);
    return new RegistryError('UNKNOWN', `HTTP ${status}${text ? `: ${text}` : ''}`, { status });
  }
}
