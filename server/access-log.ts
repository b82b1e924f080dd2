// The access log's line: one JSON object per request, the same bytes pino would write for
// `log.info(record, 'request')` with berth serve's logger (no base fields, epoch-ms time, msg
// last). berth serve encodes it straight into its log batch (server/log-batch.ts): pino's generic
// serializer (key walk, per-value type dispatch, hooks) was most of the access log's cost per
// manifest GET, and a line built as a string cost more again on its way to the batch
// (docs/performance.md, "Metrics and access log overhead").
import type { Logger } from 'pino';
import type { LineBytes } from './log-batch.js';
import { REQUEST_ID_PREFIX } from './request-info.js';

export interface AccessRecord {
  reqId: string;
  /** When this process made the id, its number (reqId is requestIdOf(reqNumber)); 0 for any other id (written from reqId). */
  reqNumber: number;
  method: string;
  route: string;
  path: string;
  repository: string | undefined;
  status: number;
  bytesIn: number;
  bytesOut: number;
  ms: number;
  user: string | undefined;
}

/**
 * Writes one access record made at `time` (epoch ms): to a raw line sink when berth serve owns the
 * destination, else through the logger. `r` is read before this returns, not kept.
 */
export type AccessLog = (r: AccessRecord, time: number) => void;

// Anything JSON must escape, and anything outside ASCII (lone surrogates need JSON.stringify's care).
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f-\uffff]/;

function str(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

/** pino's serialization of a number: finite as JSON has it, else null (JSON.stringify's rule). */
function num(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null';
}

/** The line pino writes for `info(r, 'request')` at `time` (level 30), newline included. */
export function accessLine(r: AccessRecord, time: number): string {
  let s = `{"level":30,"time":${num(time)},"reqId":${str(r.reqId)},"method":${str(r.method)},"route":${str(r.route)},"path":${str(r.path)}`;
  if (r.repository !== undefined) s += `,"repository":${str(r.repository)}`;
  s += `,"status":${num(r.status)},"bytesIn":${num(r.bytesIn)},"bytesOut":${num(r.bytesOut)},"ms":${num(r.ms)}`;
  if (r.user !== undefined) s += `,"user":${str(r.user)}`;
  return `${s},"msg":"request"}\n`;
}

// The line's fixed parts, as bytes: its head and tail, and `,"<field>":` of each field after the time.
const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const HEAD = ascii('{"level":30,"time":');
const TAIL = ascii(',"msg":"request"}\n');
const KEY = Object.fromEntries((['reqId', 'method', 'route', 'path', 'repository', 'status', 'bytesIn', 'bytesOut', 'ms', 'user'] as const).map((k) => [k, ascii(`,"${k}":`)])) as Record<keyof AccessRecord, Uint8Array>;

function putBytes(buf: Buffer, pos: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) buf[pos + i] = bytes[i]!;
  return pos + bytes.length;
}

/** `s` as JSON: printable ASCII without `"` or `\` byte by byte, anything else as str() writes it, in UTF-8. */
function putString(buf: Buffer, pos: number, s: string): number {
  buf[pos] = 0x22;
  const start = pos + 1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return pos + buf.write(JSON.stringify(s), pos);
    buf[start + i] = c;
  }
  buf[start + s.length] = 0x22;
  return start + s.length + 1;
}

/** `"<prefix>-` of the ids this process makes. */
const MADE_ID_HEAD = ascii(`"${REQUEST_ID_PREFIX}-`);
/** The longest id this process makes: its prefix, `-` and a safe integer's base-36 digits (at most 11). */
const MADE_ID_MAX_CHARS = REQUEST_ID_PREFIX.length + 1 + Number.MAX_SAFE_INTEGER.toString(36).length;

/** Whether `r`'s id is one this process made, written from its number (anything else from its characters). */
function isMadeId(r: AccessRecord): boolean {
  return r.reqNumber > 0 && Number.isSafeInteger(r.reqNumber);
}

/** The id this process made as request number `n` (requestIdOf): its string is not read (a cold, concatenated string cost ~70 ns a line). */
function putMadeId(buf: Buffer, pos: number, n: number): number {
  pos = putBytes(buf, pos, MADE_ID_HEAD);
  let len = 1;
  for (let t = n; t >= 36; t = Math.floor(t / 36)) len++;
  let t = n;
  for (let p = pos + len - 1; p >= pos; p--) {
    const q = Math.floor(t / 36);
    const d = t - q * 36;
    // n.toString(36)'s digits: 0-9, then a-z.
    buf[p] = d < 10 ? 48 + d : 87 + d;
    t = q;
  }
  buf[pos + len] = 0x22;
  return pos + len + 1;
}

/** A non-negative integer below 2^31's decimal digits, in 32-bit integer arithmetic. */
function putSmall(buf: Buffer, pos: number, n: number): number {
  let len = 1;
  for (let t = n; t >= 10; t = (t / 10) | 0) len++;
  let p = pos + len;
  let t = n;
  do {
    const q = (t / 10) | 0;
    buf[--p] = 48 + t - q * 10;
    t = q;
  } while (t > 0);
  return pos + len;
}

/** A non-negative safe integer's decimal digits: eight at a time below the top (epoch milliseconds have 13). */
function putDigits(buf: Buffer, pos: number, n: number): number {
  if (n < 0x80000000) return putSmall(buf, pos, n);
  const high = Math.floor(n / 1e8);
  pos = putDigits(buf, pos, high);
  let low = n - high * 1e8;
  for (let p = pos + 7; p >= pos; p--) {
    const q = (low / 10) | 0;
    buf[p] = 48 + low - q * 10;
    low = q;
  }
  return pos + 8;
}

/** `n` as num() writes it: integers and one-decimal values (the ms field) digit by digit, anything else through String. */
function putNumber(buf: Buffer, pos: number, n: number): number {
  if (n >= 0 && n <= Number.MAX_SAFE_INTEGER) {
    if (Number.isInteger(n)) return putDigits(buf, pos, n);
    // k/10 is the double nearest the decimal "q.d", so that is its shortest form, String's.
    const k = Math.round(n * 10);
    if (k / 10 === n && k <= Number.MAX_SAFE_INTEGER) {
      const q = Math.floor(k / 10);
      pos = putDigits(buf, pos, q);
      buf[pos] = 0x2e;
      buf[pos + 1] = 48 + (k - q * 10);
      return pos + 2;
    }
  }
  const s = num(n);
  for (let i = 0; i < s.length; i++) buf[pos + i] = s.charCodeAt(i);
  return pos + s.length;
}

/** The most bytes accessLine's line can take: JSON's longest escape is 6 characters, UTF-8's longest unit 3 bytes. */
function maxLineBytes(r: AccessRecord): number {
  // A made id is not read (putMadeId), its length is bounded instead.
  const chars = (isMadeId(r) ? MADE_ID_MAX_CHARS : r.reqId.length) + r.method.length + r.route.length + r.path.length + (r.repository?.length ?? 0) + (r.user?.length ?? 0);
  return 400 + 6 * chars;
}

// A line is mostly the same bytes as the one before: the time changes once a millisecond, a path
// comes back with the same method, route, repository, status and byte counts. Those parts are
// kept encoded and copied (one memcpy each); what is left to encode byte by byte is the request
// id, the duration and a user. Encoding all of it in JS ran at ~3 ns a byte, ~0.5 µs a line, in
// berth serve under a manifest GET load (docs/performance.md, "Metrics and access log overhead").

/** `{"level":30,"time":<time>,"reqId":` of the last time written. */
let timeHead: { time: number; bytes: Uint8Array } = { time: Number.NaN, bytes: new Uint8Array(0) };

function putTimeHead(buf: Buffer, pos: number, time: number): number {
  if (time !== timeHead.time) {
    const start = pos;
    pos = putBytes(buf, pos, HEAD);
    pos = putNumber(buf, pos, time);
    pos = putBytes(buf, pos, KEY.reqId);
    timeHead = { time, bytes: copyOut(buf, start, pos) };
    return pos;
  }
  buf.set(timeHead.bytes, pos);
  return pos + timeHead.bytes.length;
}

/** What a recent path's lines share, encoded: everything between the request id and the duration. */
interface PathParts {
  method: string;
  route: string;
  repository: string | undefined;
  status: number;
  bytesIn: number;
  bytesOut: number;
  /** `,"method":…,"route":…,"path":…[,"repository":…],"status":…,"bytesIn":…,"bytesOut":…,"ms":` */
  bytes: Uint8Array;
}

const paths = new Map<string, PathParts>();
const PATH_ENTRIES = 4096;
const PATH_CHARS = 256;

/** From `,"method":` to `,"ms":` of `r`: copied from the path's last line when only the request id and the duration differ. */
function putPathParts(buf: Buffer, pos: number, r: AccessRecord): number {
  const parts = paths.get(r.path);
  // Object.is: -0 and NaN are numbers num() writes differently from their neighbours.
  if (parts !== undefined && parts.method === r.method && parts.route === r.route && parts.repository === r.repository && Object.is(parts.status, r.status) && Object.is(parts.bytesIn, r.bytesIn) && Object.is(parts.bytesOut, r.bytesOut)) {
    buf.set(parts.bytes, pos);
    return pos + parts.bytes.length;
  }
  const start = pos;
  pos = putBytes(buf, pos, KEY.method);
  pos = putString(buf, pos, r.method);
  pos = putBytes(buf, pos, KEY.route);
  pos = putString(buf, pos, r.route);
  pos = putBytes(buf, pos, KEY.path);
  pos = putString(buf, pos, r.path);
  if (r.repository !== undefined) {
    pos = putBytes(buf, pos, KEY.repository);
    pos = putString(buf, pos, r.repository);
  }
  pos = putBytes(buf, pos, KEY.status);
  pos = putNumber(buf, pos, r.status);
  pos = putBytes(buf, pos, KEY.bytesIn);
  pos = putNumber(buf, pos, r.bytesIn);
  pos = putBytes(buf, pos, KEY.bytesOut);
  pos = putNumber(buf, pos, r.bytesOut);
  pos = putBytes(buf, pos, KEY.ms);
  if (r.path.length <= PATH_CHARS) {
    if (paths.size >= PATH_ENTRIES && parts === undefined) paths.clear();
    paths.set(r.path, { method: r.method, route: r.route, repository: r.repository, status: r.status, bytesIn: r.bytesIn, bytesOut: r.bytesOut, bytes: copyOut(buf, start, pos) });
  }
  return pos;
}

/** Bytes `start` to `end` of `buf` in an array of their own (one object; a subarray and its copy were two). */
function copyOut(buf: Buffer, start: number, end: number): Uint8Array {
  const bytes = new Uint8Array(end - start);
  for (let i = 0; i < bytes.length; i++) bytes[i] = buf[start + i]!;
  return bytes;
}

/** accessLine's bytes, written into `buf` from `pos` (with maxLineBytes(r) bytes of room); returns where they end. */
export function encodeAccessLine(r: AccessRecord, time: number, buf: Buffer, pos: number): number {
  pos = putTimeHead(buf, pos, time);
  pos = isMadeId(r) ? putMadeId(buf, pos, r.reqNumber) : putString(buf, pos, r.reqId);
  pos = putPathParts(buf, pos, r);
  pos = putNumber(buf, pos, r.ms);
  if (r.user !== undefined) {
    pos = putBytes(buf, pos, KEY.user);
    pos = putString(buf, pos, r.user);
  }
  buf.set(TAIL, pos);
  return pos + TAIL.length;
}

/** The access log of `log`: encoded into `lines` (the logger's own batch) when given. */
export function createAccessLog(log: Logger, lines?: LineBytes): AccessLog {
  if (lines) {
    return (r, time) => {
      if (!lines.reserve(maxLineBytes(r))) return void lines.write(accessLine(r, time));
      lines.commit(encodeAccessLine(r, time, lines.buf, lines.used));
    };
  }
  // A copy of the record (it is filled again for the next request); pino stamps its own time.
  return (r) => log.info({ reqId: r.reqId, method: r.method, route: r.route, path: r.path, repository: r.repository, status: r.status, bytesIn: r.bytesIn, bytesOut: r.bytesOut, ms: r.ms, user: r.user }, 'request');
}
