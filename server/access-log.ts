// The access log's line: one JSON object per request, the same bytes pino would write for
// `log.info(record, 'request')` with berth serve's logger (no base fields, epoch-ms time, msg
// last). berth serve writes it straight into its log destination: pino's generic serializer
// (key walk, per-value type dispatch, hooks) was most of the access log's cost per manifest GET
// (docs/performance.md, "Metrics and access log overhead"); this one is a few concatenations.
import type { Logger } from 'pino';

export interface AccessRecord {
  reqId: string;
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

/** Writes one access record: to a raw line sink when berth serve owns the destination, else through the logger. */
export type AccessLog = (r: AccessRecord) => void;

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
  let s = `{"level":30,"time":${time},"reqId":${str(r.reqId)},"method":${str(r.method)},"route":${str(r.route)},"path":${str(r.path)}`;
  if (r.repository !== undefined) s += `,"repository":${str(r.repository)}`;
  s += `,"status":${num(r.status)},"bytesIn":${num(r.bytesIn)},"bytesOut":${num(r.bytesOut)},"ms":${num(r.ms)}`;
  if (r.user !== undefined) s += `,"user":${str(r.user)}`;
  return `${s},"msg":"request"}\n`;
}

/** The access log of `log`: through `rawLine` (the logger's own destination) when given. */
export function createAccessLog(log: Logger, rawLine?: (line: string) => void): AccessLog {
  if (rawLine) return (r) => rawLine(accessLine(r, Date.now()));
  return (r) => log.info(r, 'request');
}
