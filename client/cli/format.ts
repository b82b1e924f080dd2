// docker's `--format` behaviour on top of the Go template engine (go-template.ts): its template
// functions (json, split, join, title, lower, upper, pad, truncate), the `table` prefix with a
// header row and tabwriter alignment, the `json` shorthand, `\t`/`\n` escapes, and the error
// texts and exit codes of each family of verbs (docker/cli: templates/templates.go,
// cli/command/formatter/formatter.go, cli/command/inspect/inspector.go).
import { BUILTINS, GoTemplate, TemplateExecError, TemplateParseError, goJSON, goJSONEncode, goMap, goSprint, goType, nilMap, nilSlice, omitEmpty, type GoFunc, type GoStruct } from './go-template.js';
import { writeStdout } from './stdout.js';

export { goMap } from './go-template.js';

function str(v: unknown): string {
  return typeof v === 'string' ? v : goSprint(v);
}

/** strings.Title: the first letter of each word upper-cased (a word follows anything but a letter, digit or _). */
function title(s: string): string {
  return s.replace(/(^|[^\p{L}\p{N}_'])(\p{L})/gu, (_, pre: string, c: string) => pre + c.toUpperCase());
}

/** docker's templates.basicFunctions, with Go's builtins. */
export const DOCKER_FUNCS: Record<string, GoFunc> = {
  json: { arity: 1, fn: (v) => goJSONEncode(v) },
  split: {
    arity: 2,
    fn: (s, sep) => {
      const text = str(s);
      return sep === '' ? [...text] : text.split(str(sep));
    },
  },
  join: {
    arity: 2,
    fn: (a, sep) => {
      if (!Array.isArray(a)) throw new Error(`wrong type for value; expected []string; got ${typeof a === 'string' ? 'string' : 'interface {}'}`);
      return a.map(str).join(str(sep));
    },
  },
  title: { arity: 1, fn: (s) => title(str(s)) },
  lower: { arity: 1, fn: (s) => str(s).toLowerCase() },
  upper: { arity: 1, fn: (s) => str(s).toUpperCase() },
  pad: {
    arity: 3,
    fn: (s, prefix, suffix) => {
      const text = str(s);
      return text === '' ? text : ' '.repeat(Number(prefix)) + text + ' '.repeat(Number(suffix));
    },
  },
  truncate: {
    arity: 2,
    fn: (s, n) => {
      const b = Buffer.from(str(s));
      return b.length < Number(n) ? str(s) : b.subarray(0, Number(n)).toString();
    },
  },
};

/** templates.HeaderFunctions: in the header row each function returns the header text unchanged. */
const HEADER_FUNCS: Record<string, GoFunc> = {
  json: { arity: 1, fn: (v) => v },
  split: { arity: 2, fn: (v) => v },
  join: { arity: 2, fn: (v) => v },
  title: { arity: 1, fn: (v) => v },
  lower: { arity: 1, fn: (v) => v },
  upper: { arity: 1, fn: (v) => v },
  pad: { arity: 3, fn: (v) => v },
  truncate: { arity: 2, fn: (v) => v },
};

// ---------------------------------------------------------------------------------------------
// Errors

/** A --format failure: what docker writes to stdout before it, its stderr line, and its exit code. */
export class FormatError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly stdout = '',
  ) {
    super(message);
  }
}

/** Writes a FormatError as docker does (no `berth VERB:` prefix: scripts match docker's text) and returns its exit code. */
export function reportFormatError(e: FormatError): number {
  if (e.stdout) writeStdout(e.stdout);
  process.stderr.write(`${e.message}\n`);
  return e.exitCode;
}

function parse(source: string, name: string, prefix: string, exitCode: number): GoTemplate {
  try {
    return new GoTemplate(source, name, { ...BUILTINS, ...DOCKER_FUNCS });
  } catch (e) {
    if (e instanceof TemplateParseError) throw new FormatError(`${prefix}${e.message}`, exitCode);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Formatting contexts

/**
 * A docker formatting context (`*formatter.ContainerContext`…): `fields` are its methods' values
 * (an unknown field is an execution error naming `type`), `methods` take arguments (`.Label "k"`).
 * `{{json .}}` gives the fields with sorted keys, as docker's MarshalJSON.
 */
export function formatContext(type: string, fields: Record<string, unknown>, methods: Record<string, (...a: never[]) => unknown> = {}): GoStruct & Record<string, unknown> {
  const ctx: Record<string, unknown> = { ...fields };
  Object.defineProperty(ctx, goType, { value: type, enumerable: false });
  Object.defineProperty(ctx, goJSON, { value: () => goMap({ ...fields }), enumerable: false });
  for (const [k, fn] of Object.entries(methods)) Object.defineProperty(ctx, k, { value: fn, enumerable: false });
  return ctx as GoStruct & Record<string, unknown>;
}

/** A Go struct value (not a formatting context) as a GoStruct: version's and info's values. */
export function goStruct<T extends Record<string, unknown>>(type: string, fields: T): T & GoStruct {
  const ctx: Record<string, unknown> = { ...fields };
  Object.defineProperty(ctx, goType, { value: type, enumerable: false });
  Object.defineProperty(ctx, goJSON, { value: () => ({ ...fields }), enumerable: false });
  return ctx as T & GoStruct;
}

/** docker's SubHeaderContext: the header text of each field, and `.Label "a.b-c"` → "b c". */
function headerContext(headers: Record<string, string>): Record<string, unknown> {
  const h = goMap({ ...headers }) as Record<string, unknown>;
  Object.defineProperty(h, 'Label', {
    value: (name: string) => {
      const parts = String(name).split('.');
      return parts[parts.length - 1]!.replace(/[-_]/g, ' ');
    },
    enumerable: false,
  });
  return h;
}

// ---------------------------------------------------------------------------------------------
// Value hints for inspect objects

/** Fields of docker's inspect types that are Go maps (printed `map[k:v]`, a missing key is `<no value>`). */
const MAP_KEYS = new Set(['Labels', 'ExposedPorts', 'Volumes', 'PortBindings', 'Sysctls', 'StorageOpt', 'Tmpfs', 'Annotations', 'Ports', 'Networks', 'DriverOpts', 'Data', 'Containers', 'Options', 'Status', 'IndexConfigs', 'Runtimes', 'Peers', 'Services']);
/** …where a null prints `map[]` (a nil map), not `<nil>`. */
const NIL_MAP_KEYS = new Set(['Labels', 'ExposedPorts', 'Volumes', 'PortBindings', 'Sysctls', 'StorageOpt', 'Tmpfs', 'Annotations', 'Ports', 'Networks', 'DriverOpts', 'Data', 'Containers', 'Options']);
/** Slice fields whose null prints `[]` (a nil slice). */
const NIL_SLICE_KEYS = new Set([
  'Env', 'Cmd', 'Entrypoint', 'Binds', 'Links', 'CapAdd', 'CapDrop', 'Dns', 'DnsOptions', 'DnsSearch', 'ExtraHosts', 'GroupAdd', 'VolumesFrom', 'SecurityOpt',
  'ExecIDs', 'OnBuild', 'Aliases', 'Shell', 'Devices', 'Ulimits', 'Mounts', 'RepoTags', 'RepoDigests', 'Layers', 'Args', 'DeviceRequests', 'DeviceCgroupRules',
  'SecondaryIPAddresses', 'SecondaryIPv6Addresses', 'Test', 'MaskedPaths', 'ReadonlyPaths', 'BlkioWeightDevice', 'BlkioDeviceReadBps', 'BlkioDeviceWriteBps',
  'BlkioDeviceReadIOps', 'BlkioDeviceWriteIOps', 'Warnings', 'DNSNames',
]);

const has = (o: Record<string, unknown>, k: string) => Object.hasOwn(o, k);

/** Adds the fields `o` lacks with their zero values, as omitempty fields (their JSON stays docker's). */
function addZero(o: unknown, zeros: Record<string, unknown>): void {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return;
  const r = o as Record<string, unknown>;
  const added = Object.keys(zeros).filter((k) => !has(r, k));
  for (const k of added) r[k] = zeros[k];
  omitEmpty(r, added);
}

/** docker's MountPoint field order (Go prints a struct's fields in order). */
const MOUNT_FIELDS = ['Type', 'Name', 'Source', 'Destination', 'Driver', 'Mode', 'RW', 'Propagation'];

/**
 * Fields docker's Go types have but its JSON leaves out when empty (omitempty): the typed pass
 * sees their zero values (`{{.SizeRw}}` is `<nil>`, `{{.Config.ExposedPorts}}` `map[]`), as docker's.
 */
function addOmittedFields(o: Record<string, unknown>): void {
  if (has(o, 'State') && has(o, 'HostConfig')) {
    addZero(o, { SizeRw: null, SizeRootFs: null });
    addZero(o.State, { Health: null });
    addZero(o.Config, { Domainname: '', ExposedPorts: null, Volumes: null, Entrypoint: null, OnBuild: null, Labels: null, Healthcheck: null, ArgsEscaped: false, NetworkDisabled: false, MacAddress: '', StopSignal: '', StopTimeout: null, Shell: null });
    if (Array.isArray(o.Mounts))
      o.Mounts = o.Mounts.map((m) => {
        if (m === null || typeof m !== 'object') return m;
        const src = m as Record<string, unknown>;
        const out: Record<string, unknown> = {};
        for (const k of MOUNT_FIELDS) out[k] = has(src, k) ? src[k] : k === 'RW' ? false : '';
        for (const k of Object.keys(src)) if (!has(out, k)) out[k] = src[k];
        omitEmpty(out, MOUNT_FIELDS.filter((k) => !has(src, k)));
        return out;
      });
  } else if (has(o, 'RootFS') && has(o, 'RepoTags')) {
    addZero(o, { Parent: '', Comment: '', Container: '', DockerVersion: '', Author: '', Variant: '', OsVersion: '' });
  }
}

/**
 * Gives a JSON inspect object docker's Go types where they show in templates: its map fields
 * become Go maps, and nil maps and slices print as docker prints them (`map[]`, `[]`). In place.
 */
export function withGoTypes<T>(value: T, parentKey = ''): T {
  if (parentKey === '' && value !== null && typeof value === 'object' && !Array.isArray(value)) addOmittedFields(value as Record<string, unknown>);
  if (Array.isArray(value)) {
    for (const v of value) withGoTypes(v, '');
    return value;
  }
  if (value === null || typeof value !== 'object') return value;
  const o = value as Record<string, unknown>;
  for (const [k, v] of Object.entries(o)) {
    const isMap = MAP_KEYS.has(k) || (k === 'Config' && parentKey === 'LogConfig');
    if (v === null) {
      if (NIL_MAP_KEYS.has(k) || (k === 'Config' && parentKey === 'LogConfig')) o[k] = nilMap;
      else if (NIL_SLICE_KEYS.has(k) || (k === 'Config' && parentKey === 'IPAM')) o[k] = nilSlice;
      continue;
    }
    if (isMap && typeof v === 'object' && !Array.isArray(v)) {
      goMap(v);
      for (const inner of Object.values(v as Record<string, unknown>)) withGoTypes(inner, k);
      continue;
    }
    withGoTypes(v, k);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// tabwriter (Go's text/tabwriter with docker's settings: minwidth 10, padding 3, padchar ' ')

/** Aligns tab-terminated cells into columns as Go's tabwriter does: a column block is a run of lines that have that cell. */
export function tabwrite(text: string, minwidth = 10, padding = 3): string {
  const lines = text.split('\n').map((l) => l.split('\t'));
  const width = (s: string) => [...s].length;
  const out: string[] = [];
  const widths: number[] = [];
  const writeLines = (from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const cells = lines[i]!;
      let line = '';
      cells.forEach((c, j) => {
        if (j < widths.length) line += c + ' '.repeat(Math.max(0, widths[j]! - width(c)));
        else line += c;
      });
      out[i] = line;
    }
  };
  const format = (line0: number, line1: number) => {
    const column = widths.length;
    for (let i = line0; i < line1; i++) {
      if (column >= lines[i]!.length - 1) continue;
      writeLines(line0, i);
      line0 = i;
      let w = minwidth;
      for (; i < line1; i++) {
        const cells = lines[i]!;
        if (column >= cells.length - 1) break;
        w = Math.max(w, width(cells[column]!) + padding);
      }
      widths.push(w);
      format(line0, i);
      widths.pop();
      line0 = i;
    }
    writeLines(line0, line1);
  };
  format(0, lines.length);
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// List verbs (ps, images, volume ls, network ls, system df, history)

export interface ListFormat {
  /** Header text per field for `table` formats (docker's SubHeaderContext). */
  headers: Record<string, string>;
  /** docker's default table (`--format table` alone). */
  defaultTable: string;
  /** ps words its errors "failed to parse/execute template"; the others "template parsing error". */
  style?: 'ps' | 'list';
}

/** formatter.Context.preFormat: the `table` prefix, the `json` shorthand, trimmed spaces, `\t` and `\n`. */
function preFormat(format: string): { source: string; table: boolean } {
  const table = format.startsWith('table');
  let source = table ? format.slice('table'.length) : format === 'json' ? '{{json .}}' : format;
  source = source.replace(/^ +| +$/g, '').replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  return { source, table };
}

/**
 * Renders `rows` (formatting contexts) with a docker `--format`: one line per row; with `table`, a
 * header row first and the columns aligned. Throws FormatError with docker's text and exit code.
 */
export function formatList(format: string, rows: unknown[], spec: ListFormat): string {
  if (format === 'table') format = spec.defaultTable;
  const { source, table } = preFormat(format);
  const ps = spec.style === 'ps';
  const tmpl = parse(source, '', ps ? 'failed to parse template: ' : 'template parsing error: ', 1);
  let body = '';
  for (const row of rows) {
    try {
      body += tmpl.execute(row) + '\n';
    } catch (e) {
      if (e instanceof TemplateExecError) throw new FormatError(`${ps ? 'failed to execute template: ' : 'template parsing error: '}${e.message}`, 1);
      throw e;
    }
  }
  if (!table) return body;
  let header: string;
  try {
    header = tmpl.execute(headerContext(spec.headers), {}, HEADER_FUNCS);
  } catch (e) {
    // docker ignores the header's execution error and keeps what was written.
    if (!(e instanceof TemplateExecError)) throw e;
    header = e.partial;
  }
  return tabwrite(`${header}\n${body}`);
}

// ---------------------------------------------------------------------------------------------
// inspect verbs (inspect, image inspect, network inspect, volume inspect)

/** JSON names of docker's inspect types whose Go field is spelt otherwise (`ID` is `Id` in JSON): only the raw pass answers them. */
const JSON_ONLY_FIELDS = new Set(['Id', 'CpuShares', 'NanoCpus', 'CpuPeriod', 'CpuQuota', 'CpuRealtimePeriod', 'CpuRealtimeRuntime', 'CpuCount', 'CpuPercent', 'Dns', 'DnsOptions', 'DnsSearch']);

/**
 * docker's TemplateInspector: each object through the template, one line each; an object that
 * fails is reported after the others ("template parsing error: …", exit 1) and an empty output is
 * one blank line. Objects are JSON as `inspect` prints them (see withGoTypes), run first as docker's
 * typed value, then, if that fails, as the decoded JSON (all maps, JSON keys sorted): so a struct
 * field that does not exist is "map has no entry for key", a map key that does not is `<no value>`,
 * and `{{.Id}}` (Go's field is ID) switches to the raw form as it does in docker.
 * `--format json` prints the objects as one JSON array line. Returns stdout and exit code.
 */
export function formatInspect(format: string, objects: unknown[]): { stdout: string; stderr: string; code: number } {
  if (format === 'json') return { stdout: `${goJSONEncode(objects, true)}\n`, stderr: '', code: 0 };
  const tmpl = parse(format, '', 'template parsing error: ', 64);
  let stdout = '';
  const errors: string[] = [];
  for (const o of objects) {
    const typed = withGoTypes(structuredClone(o));
    try {
      stdout += tmpl.execute(typed, { strictStructs: true, jsonOnly: JSON_ONLY_FIELDS }) + '\n';
      continue;
    } catch (e) {
      if (!(e instanceof TemplateExecError)) throw e;
    }
    // As docker: the template failed on the typed value, so it runs on the JSON decoded into maps.
    try {
      stdout += tmpl.execute(o, { missingKey: 'error', rawTypes: true, allMaps: true }) + '\n';
    } catch (e) {
      if (!(e instanceof TemplateExecError)) throw e;
      errors.push(`template parsing error: ${e.message}`);
    }
  }
  if (stdout === '') stdout = '\n';
  return { stdout, stderr: errors.map((e) => e + '\n').join(''), code: errors.length ? 1 : 0 };
}

/** Parses an inspect --format before the objects are looked up: a syntax error exits 64 with nothing else printed. */
export function checkInspectFormat(format: string): void {
  if (format !== 'json') parse(format, '', 'template parsing error: ', 64);
}

// ---------------------------------------------------------------------------------------------
// version and info

/**
 * `version --format` (template named "version") and `info --format`: the template on one value;
 * a syntax error exits 64, an execution error prints what was written, a newline, and the
 * error unprefixed (exit 1).
 */
export function formatValue(format: string, value: unknown, name: '' | 'version' = ''): string {
  const tmpl = parse(format === 'json' ? '{{json .}}' : format, name, 'template parsing error: ', 64);
  try {
    return tmpl.execute(value) + '\n';
  } catch (e) {
    if (e instanceof TemplateExecError) throw new FormatError(e.message, 1, e.partial + '\n');
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Values as docker's contexts show them

/**
 * Go's time.Time.String() in local time: `2026-12-06 18:41:13 +0000 UTC` (docker's CreatedAt of
 * images and containers, from Unix seconds); with `fraction`, the ISO string's fractional seconds
 * too, trailing zeros dropped (`18:41:13.86197 +0000 UTC`: networks' Created).
 */
export function goTimeString(when: string | number | Date | undefined, o: { fraction?: boolean } = {}): string {
  const d = when instanceof Date ? when : new Date(when ?? 0);
  if (Number.isNaN(d.getTime())) return '0001-01-01 00:00:00 +0000 UTC';
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const off = -d.getTimezoneOffset();
  const sign = off < 0 ? '-' : '+';
  const zone = off === 0 ? 'UTC' : (new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d).find((x) => x.type === 'timeZoneName')?.value ?? '');
  const frac = o.fraction && typeof when === 'string' ? (/T[\d:]+\.(\d+)/.exec(when)?.[1] ?? '').replace(/0+$/, '') : '';
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}${frac ? `.${frac}` : ''} ${sign}${p(Math.floor(Math.abs(off) / 60))}${p(Math.abs(off) % 60)} ${zone}`;
}

/** Writes a verb's --format output, or reports a FormatError as docker does; returns the exit code. */
export function writeFormatted(render: () => string): number {
  try {
    writeStdout(render());
    return 0;
  } catch (e) {
    if (e instanceof FormatError) return reportFormatError(e);
    throw e;
  }
}

/** go-units' HumanDuration, as docker words ages ("Less than a second", "About a minute", "3 hours"). */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(ms / 60000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3600000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3600000 / 24 / 365)} years`;
}
