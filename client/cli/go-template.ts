// Go's text/template (pkg.go.dev/text/template) for `--format`: lexer, parser and evaluator, with
// Go's error texts and positions, because scripts written for docker read them. Values are JS
// values: strings, numbers, booleans, arrays (slices), plain objects (structs, or maps once passed
// to goMap()), GoStruct objects (docker's formatting contexts: an unknown field is an error, a
// function-valued field is a method), null (nil) and undefined (Go's invalid value, "<no value>").
// @ctrl/golang-template was evaluated first: it has no variables, eq/lt, printf, len, pipelines
// or positions, so this module implements the language itself.

// ---------------------------------------------------------------------------------------------
// Values

const MAPS = new WeakSet<object>();

/** Marks a plain object as a Go map: printed `map[k:v]` with sorted keys, JSON keys sorted, a missing key is `<no value>`. */
export function goMap<T extends object>(o: T): T {
  MAPS.add(o);
  return o;
}

/** While a template runs with `allMaps` (docker's raw inspect fallback), every plain object is a map. */
let allMaps = false;

export function isGoMap(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  return MAPS.has(v) || (allMaps && !Array.isArray(v) && !(goType in v));
}

const OMIT_EMPTY = new WeakMap<object, Set<string>>();

/** Marks fields of a struct as `json:",omitempty"`: left out of {{json}} when empty, still printed and readable. */
export function omitEmpty(o: object, keys: Iterable<string>): void {
  const set = OMIT_EMPTY.get(o) ?? new Set<string>();
  for (const k of keys) set.add(k);
  OMIT_EMPTY.set(o, set);
}

function isEmptyValue(v: unknown): boolean {
  return v === null || v === undefined || v === '' || v === 0 || v === false || v === nilSlice || v === nilMap || (Array.isArray(v) && v.length === 0) || (isGoMap(v) && Object.keys(v).length === 0);
}

/** The type name a GoStruct reports in "can't evaluate field X in type T". */
export const goType = Symbol('goType');
/** A GoStruct's JSON form (docker's contexts marshal their fields, HTML-escaped). */
export const goJSON = Symbol('goJSON');

export interface GoStruct {
  readonly [goType]: string;
  [goJSON]?(): unknown;
}

function isGoStruct(v: unknown): v is GoStruct & Record<string, unknown> {
  return typeof v === 'object' && v !== null && goType in v;
}

/** A Go nil slice or map that prints as `[]` / `map[]` (not `<nil>`), and marshals as null. */
export const nilSlice: readonly unknown[] = Object.freeze([]);
export const nilMap: Record<string, unknown> = goMap(Object.freeze({}));

// ---------------------------------------------------------------------------------------------
// Errors

/** A parse error: `template: NAME:LINE: message`. */
export class TemplateParseError extends Error {}

/** An execution error: `template: NAME:LINE:COL: executing "NAME" at <NODE>: message`; `partial` is what was written before it. */
export class TemplateExecError extends Error {
  partial = '';
}

// ---------------------------------------------------------------------------------------------
// Lexer (text/template/parse/lex.go)

type TokType =
  | 'text'
  | 'left'
  | 'right'
  | 'space'
  | 'ident'
  | 'field'
  | 'var'
  | 'string'
  | 'number'
  | 'bool'
  | 'nil'
  | 'dot'
  | 'pipe'
  | 'lparen'
  | 'rparen'
  | 'declare'
  | 'assign'
  | 'comma'
  | 'keyword'
  | 'char'
  | 'eof'
  | 'error';

interface Tok {
  t: TokType;
  v: string;
  pos: number;
  line: number;
  /** Parsed value of string, number and char constants. */
  val?: string | number;
  /** For numbers: whether the literal is an integer (Go's untyped int vs float). */
  isInt?: boolean;
}

const KEYWORDS = new Set(['if', 'else', 'end', 'range', 'with', 'define', 'template', 'block', 'break', 'continue']);

function goRune(cp: number): string {
  const hex = cp.toString(16).toUpperCase().padStart(4, '0');
  return `U+${hex} '${String.fromCodePoint(cp)}'`;
}

function isSpaceCh(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\n';
}

function isAlnum(c: string | undefined): boolean {
  return c !== undefined && /[\p{L}\p{Nd}_]/u.test(c);
}

function unquoteGo(body: string): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = body[++i];
    switch (n) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case 'a': out += '\x07'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'v': out += '\v'; break;
      case '\\': out += '\\'; break;
      case '"': out += '"'; break;
      case "'": out += "'"; break;
      case 'x': out += String.fromCharCode(parseInt(body.slice(i + 1, i + 3), 16)); i += 2; break;
      case 'u': out += String.fromCodePoint(parseInt(body.slice(i + 1, i + 5), 16)); i += 4; break;
      case 'U': out += String.fromCodePoint(parseInt(body.slice(i + 1, i + 9), 16)); i += 8; break;
      default:
        if (n !== undefined && /[0-7]/.test(n)) {
          out += String.fromCharCode(parseInt(body.slice(i, i + 3), 8));
          i += 2;
        } else throw new Error('invalid syntax');
    }
  }
  return out;
}

function parseNumber(s: string): { val: number; isInt: boolean } | undefined {
  const clean = s.replace(/_/g, '');
  const sign = clean.startsWith('-') ? -1 : 1;
  const body = clean.replace(/^[+-]/, '');
  if (/^0[xX][0-9a-fA-F]+$/.test(body)) return { val: sign * parseInt(body.slice(2), 16), isInt: true };
  if (/^0[oO][0-7]+$/.test(body)) return { val: sign * parseInt(body.slice(2), 8), isInt: true };
  if (/^0[bB][01]+$/.test(body)) return { val: sign * parseInt(body.slice(2), 2), isInt: true };
  if (/^0[0-7]+$/.test(body)) return { val: sign * parseInt(body, 8), isInt: true };
  if (/^[0-9]+$/.test(body)) return { val: sign * Number(body), isInt: true };
  if (/^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(body)) return { val: sign * Number(body), isInt: false };
  return undefined;
}

function lex(input: string): Tok[] {
  const toks: Tok[] = [];
  let pos = 0;
  let line = 1;
  const push = (t: TokType, start: number, end: number, extra: Partial<Tok> = {}) => {
    toks.push({ t, v: input.slice(start, end), pos: start, line, ...extra });
  };
  const lineAt = (from: number, to: number) => {
    for (let i = from; i < to; i++) if (input[i] === '\n') line++;
  };
  /** Moves past a "…" or '…' literal opened at `start` (escapes skipped); false, with an error token, when the line ends first. */
  const scanQuoted = (start: number, quote: string, unterminated: string): boolean => {
    pos = start + 1;
    for (;;) {
      const d = input[pos];
      if (d === '\\') {
        pos += 2;
        continue;
      }
      if (d === undefined || d === '\n') {
        push('error', start, start, { v: unterminated });
        return false;
      }
      pos++;
      if (d === quote) return true;
    }
  };
  while (pos < input.length) {
    const open = input.indexOf('{{', pos);
    const textEnd = open === -1 ? input.length : open;
    let textStop = textEnd;
    let trimLeft = false;
    if (open !== -1 && input[open + 2] === '-' && isSpaceCh(input[open + 3])) {
      trimLeft = true;
      while (textStop > pos && isSpaceCh(input[textStop - 1])) textStop--;
    }
    if (textStop > pos) push('text', pos, textStop);
    lineAt(pos, textEnd);
    if (open === -1) {
      pos = input.length;
      break;
    }
    pos = open + 2;
    push('left', open, pos);
    if (trimLeft) pos += 2;
    // Comment: the whole action.
    if (input.startsWith('/*', pos)) {
      const close = input.indexOf('*/', pos + 2);
      if (close === -1) {
        push('error', pos, pos, { v: 'unclosed comment' });
        return toks;
      }
      lineAt(pos, close);
      let after = close + 2;
      let trimRight = false;
      if (input[after] !== undefined && isSpaceCh(input[after]) && input.startsWith('-}}', after + 1)) {
        trimRight = true;
        after += 1;
        if (input.startsWith('-}}', after)) after += 1;
      }
      if (!input.startsWith('}}', after)) {
        push('error', pos, pos, { v: 'comment ends before closing delimiter' });
        return toks;
      }
      toks.pop(); // a comment leaves no action
      pos = after + 2;
      if (trimRight) while (pos < input.length && isSpaceCh(input[pos])) pos++;
      continue;
    }
    // Inside an action.
    let parens = 0;
    const atTerminator = () => {
      const next = input[pos];
      return next === undefined || isSpaceCh(next) || '.,|:)('.includes(next) || input.startsWith('}}', pos);
    };
    const badChar = () => {
      push('error', pos, pos, { v: `bad character ${goRune(input.codePointAt(pos)!)}` });
      return toks;
    };
    for (;;) {
      if (pos >= input.length) {
        push('error', pos, pos, { v: 'unclosed action' });
        return toks;
      }
      const c = input[pos]!;
      if (isSpaceCh(c) && input.startsWith('-}}', pos + 1)) {
        push('right', pos + 2, pos + 4);
        lineAt(pos, pos + 1);
        pos += 4;
        while (pos < input.length && isSpaceCh(input[pos])) {
          if (input[pos] === '\n') line++;
          pos++;
        }
        break;
      }
      if (input.startsWith('}}', pos)) {
        if (parens > 0) {
          push('error', pos, pos, { v: 'unclosed left paren' });
          return toks;
        }
        push('right', pos, pos + 2);
        pos += 2;
        break;
      }
      const start = pos;
      if (isSpaceCh(c)) {
        // Stop before a space that starts a right trim marker (" -}}").
        while (pos < input.length && isSpaceCh(input[pos]) && !input.startsWith('-}}', pos + 1)) {
          if (input[pos] === '\n') line++;
          pos++;
        }
        push('space', start, pos);
        continue;
      }
      if (c === '=') {
        pos++;
        push('assign', start, pos);
        continue;
      }
      if (c === ':') {
        if (input[pos + 1] !== '=') {
          push('error', pos, pos, { v: 'expected :=' });
          return toks;
        }
        pos += 2;
        push('declare', start, pos);
        continue;
      }
      if (c === '|') {
        pos++;
        push('pipe', start, pos);
        continue;
      }
      if (c === ',') {
        pos++;
        push('comma', start, pos);
        continue;
      }
      if (c === '(') {
        parens++;
        pos++;
        push('lparen', start, pos);
        continue;
      }
      if (c === ')') {
        parens--;
        pos++;
        push('rparen', start, pos);
        continue;
      }
      if (c === '"') {
        if (!scanQuoted(start, '"', 'unterminated quoted string')) return toks;
        let val: string;
        try {
          val = unquoteGo(input.slice(start + 1, pos - 1));
        } catch {
          push('error', start, start, { v: 'invalid syntax' });
          return toks;
        }
        push('string', start, pos, { val });
        continue;
      }
      if (c === '`') {
        const close = input.indexOf('`', pos + 1);
        if (close === -1) {
          push('error', start, start, { v: 'unterminated raw quoted string' });
          return toks;
        }
        lineAt(pos, close);
        pos = close + 1;
        push('string', start, pos, { val: input.slice(start + 1, close).replace(/\r/g, '') });
        continue;
      }
      if (c === "'") {
        if (!scanQuoted(start, "'", 'unterminated character constant')) return toks;
        let ch = '';
        try {
          ch = unquoteGo(input.slice(start + 1, pos - 1));
        } catch {
          ch = '';
        }
        if ([...ch].length !== 1) {
          push('error', start, start, { v: `malformed character constant: ${input.slice(start, pos)}` });
          return toks;
        }
        push('number', start, pos, { val: ch.codePointAt(0)!, isInt: true });
        continue;
      }
      if (c === '$') {
        pos++;
        while (isAlnum(input[pos])) pos++;
        if (!atTerminator()) return badChar();
        push('var', start, pos);
        continue;
      }
      if (c === '.' && !/[0-9]/.test(input[pos + 1] ?? '')) {
        pos++;
        if (!isAlnum(input[pos])) {
          push('dot', start, pos);
          continue;
        }
        while (isAlnum(input[pos])) pos++;
        if (!atTerminator()) return badChar();
        push('field', start, pos);
        continue;
      }
      if (/[0-9.+-]/.test(c)) {
        // Go's scanNumber: what looks like a number is taken whole; a letter right after it is
        // "bad number syntax", a scan strconv refuses "illegal number syntax" (the parser's).
        const m = /^[+-]?(0[xX][0-9a-fA-F_]*(\.[0-9a-fA-F_]*)?([pP][+-]?[0-9_]*)?|0[oO][0-7_]*|0[bB][01_]*|[0-9_]*(\.[0-9_]*)?([eE][+-]?[0-9_]*)?)/.exec(input.slice(pos))!;
        const text = m[0];
        const end = pos + text.length;
        if (isAlnum(input[end])) {
          push('error', start, start, { v: `bad number syntax: "${input.slice(start, end + 1)}"` });
          return toks;
        }
        const num = parseNumber(text);
        if (!num) {
          push('error', start, start, { v: `illegal number syntax: "${text}"` });
          return toks;
        }
        pos = end;
        push('number', start, pos, { val: num.val, isInt: num.isInt });
        continue;
      }
      if (isAlnum(c)) {
        while (isAlnum(input[pos])) pos++;
        const word = input.slice(start, pos);
        if (!atTerminator()) return badChar();
        if (KEYWORDS.has(word)) push('keyword', start, pos);
        else if (word === 'true' || word === 'false') push('bool', start, pos);
        else if (word === 'nil') push('nil', start, pos);
        else push('ident', start, pos);
        continue;
      }
      // Go's lexer hands a lone printable ASCII character to the parser ("unexpected "/" in command").
      if (c >= ' ' && c <= '~') {
        pos++;
        push('char', start, pos);
        continue;
      }
      push('error', pos, pos, { v: `bad character ${goRune(input.codePointAt(pos)!)}` });
      return toks;
    }
  }
  push('eof', pos, pos);
  return toks;
}

// ---------------------------------------------------------------------------------------------
// Parse tree (text/template/parse/node.go)

type Node =
  | { k: 'text'; pos: number; text: string }
  | { k: 'action'; pos: number; line: number; pipe: Pipe }
  | { k: 'if' | 'with'; pos: number; line: number; pipe: Pipe; list: Node[]; elseList?: Node[] }
  | { k: 'range'; pos: number; line: number; pipe: Pipe; list: Node[]; elseList?: Node[] }
  | { k: 'break' | 'continue'; pos: number }
  | { k: 'template'; pos: number; line: number; name: string; namePos: number; pipe?: Pipe };

interface Pipe {
  pos: number;
  decl: Array<{ name: string; pos: number }>;
  isAssign: boolean;
  cmds: Cmd[];
}

interface Cmd {
  pos: number;
  args: Arg[];
}

type Arg =
  | { k: 'field'; pos: number; ident: string[] }
  | { k: 'chain'; pos: number; node: Arg; field: string[] }
  | { k: 'var'; pos: number; ident: string[] }
  | { k: 'ident'; pos: number; name: string }
  | { k: 'dot'; pos: number }
  | { k: 'nil'; pos: number }
  | { k: 'bool'; pos: number; val: boolean }
  | { k: 'number'; pos: number; val: number; isInt: boolean; text: string }
  | { k: 'string'; pos: number; val: string; text: string }
  | { k: 'pipe'; pos: number; pipe: Pipe };

function argString(a: Arg): string {
  switch (a.k) {
    case 'field':
      return a.ident.map((f) => `.${f}`).join('');
    case 'chain': {
      const inner = a.node.k === 'pipe' ? `(${pipeString(a.node.pipe)})` : argString(a.node);
      return inner + a.field.map((f) => `.${f}`).join('');
    }
    case 'var':
      return a.ident.join('.');
    case 'ident':
      return a.name;
    case 'dot':
      return '.';
    case 'nil':
      return 'nil';
    case 'bool':
      return String(a.val);
    case 'number':
    case 'string':
      return a.text;
    case 'pipe':
      return `(${pipeString(a.pipe)})`;
  }
}

function cmdString(c: Cmd): string {
  return c.args.map((a) => (a.k === 'pipe' ? `(${pipeString(a.pipe)})` : argString(a))).join(' ');
}

function pipeString(p: Pipe): string {
  const decl = p.decl.length ? `${p.decl.map((d) => d.name).join(', ')} ${p.isAssign ? '=' : ':='} ` : '';
  return decl + p.cmds.map(cmdString).join(' | ');
}

/** Function names known at parse time ("function %q not defined" is a parse error in Go). */
type FuncTable = Record<string, GoFunc>;

class Parser {
  private i = 0;
  private vars: string[][] = [['$']];
  private rangeDepth = 0;
  /** Nesting of if/with/range: {{define}} is only allowed outside them. */
  private depth = 0;
  readonly defines = new Map<string, Node[]>();

  constructor(
    private readonly toks: Tok[],
    private readonly name: string,
    private readonly funcs: FuncTable,
  ) {}

  private peek(): Tok {
    return this.toks[this.i]!;
  }
  private next(): Tok {
    return this.toks[this.i++]!;
  }
  private backup(): void {
    this.i--;
  }
  private nextNonSpace(): Tok {
    let t = this.next();
    while (t.t === 'space') t = this.next();
    return t;
  }
  private peekNonSpace(): Tok {
    const t = this.nextNonSpace();
    this.backup();
    return t;
  }

  private errorf(msg: string, tok?: Tok): never {
    const line = (tok ?? this.toks[Math.max(0, this.i - 1)]!).line;
    throw new TemplateParseError(`template: ${this.name}:${line}: ${msg}`);
  }

  private unexpected(tok: Tok, context: string): never {
    if (tok.t === 'error') this.errorf(tok.v, tok);
    // Go's item.String(): keywords (and . and nil, which Go lexes as keywords) in <>, the rest quoted.
    const what = tok.t === 'eof' ? 'EOF' : tok.t === 'right' ? '"}}"' : tok.t === 'left' ? '"{{"' : tok.t === 'keyword' || tok.t === 'dot' || tok.t === 'nil' ? `<${tok.v}>` : JSON.stringify(tok.v);
    this.errorf(`unexpected ${what} in ${context}`, tok);
  }

  parse(): Node[] {
    const list: Node[] = [];
    while (this.peek().t !== 'eof') {
      const { node, stop } = this.textOrAction();
      if (stop) this.errorf(`unexpected {{${stop.v}}}`, stop);
      if (node) list.push(node);
    }
    return list;
  }

  private parseDefine(): void {
    const nameTok = this.nextNonSpace();
    if (nameTok.t !== 'string') this.unexpected(nameTok, 'define clause');
    const close = this.nextNonSpace();
    if (close.t !== 'right') this.unexpected(close, 'define clause');
    const { list, stop } = this.itemList();
    if (stop.v !== 'end') this.errorf(`unexpected {{${stop.v}}}`, stop);
    this.defines.set(String(nameTok.val), list);
  }

  /** Items until {{end}} or {{else}}: returns the list and the stopping keyword token. */
  private itemList(): { list: Node[]; stop: Tok } {
    const list: Node[] = [];
    for (;;) {
      if (this.peekNonSpace().t === 'eof') this.errorf('unexpected EOF', this.peek());
      const { node, stop } = this.textOrAction();
      if (stop) return { list, stop };
      if (node) list.push(node);
    }
  }

  private textOrAction(): { node?: Node; stop?: Tok } {
    const t = this.next();
    if (t.t === 'text') return { node: { k: 'text', pos: t.pos, text: t.v } };
    if (t.t === 'error') this.errorf(t.v, t);
    if (t.t !== 'left') this.unexpected(t, 'input');
    return this.action();
  }

  private action(): { node?: Node; stop?: Tok } {
    const t = this.nextNonSpace();
    if (t.t === 'keyword') {
      switch (t.v) {
        case 'end':
        case 'else': {
          // {{else}} ends a list; {{else if …}} and {{else with …}} are read by the control.
          if (t.v === 'end') {
            const r = this.nextNonSpace();
            if (r.t !== 'right') this.unexpected(r, 'end');
          }
          return { stop: t };
        }
        case 'if':
          return { node: this.control('if', t) };
        case 'with':
          return { node: this.control('with', t) };
        case 'range':
          return { node: this.control('range', t) };
        case 'break':
        case 'continue': {
          if (this.rangeDepth === 0) this.errorf(`{{${t.v}}} outside {{range}}`, t);
          const r = this.nextNonSpace();
          if (r.t !== 'right') this.unexpected(r, `{{${t.v}}}`);
          return { node: { k: t.v, pos: t.pos } };
        }
        case 'template':
        case 'block': {
          const nameTok = this.nextNonSpace();
          if (nameTok.t !== 'string') this.unexpected(nameTok, `${t.v} clause`);
          let pipe: Pipe | undefined;
          if (this.peekNonSpace().t !== 'right') pipe = this.pipeline(`${t.v} clause`, 'right');
          else this.nextNonSpace();
          if (t.v === 'block') {
            const { list, stop } = this.itemList();
            if (stop.v !== 'end') this.errorf(`unexpected {{${stop.v}}}`, stop);
            this.defines.set(String(nameTok.val), list);
          }
          return { node: { k: 'template', pos: t.pos, line: t.line, name: String(nameTok.val), namePos: nameTok.pos, pipe } };
        }
        case 'define':
          if (this.depth > 0) this.errorf('unexpected <define> in command', t);
          this.parseDefine();
          return {};
      }
    }
    this.backup();
    const pipe = this.pipeline('command', 'right');
    return { node: { k: 'action', pos: t.pos, line: t.line, pipe } };
  }

  private control(kind: 'if' | 'with' | 'range', kw: Tok): Node {
    this.vars.push([...this.vars[this.vars.length - 1]!]);
    this.depth++;
    const pipe = this.pipeline(kind, 'right');
    if (kind === 'range') this.rangeDepth++;
    let { list, stop } = this.itemList();
    if (kind === 'range') this.rangeDepth--;
    let elseList: Node[] | undefined;
    if (stop.v === 'else') {
      const nxt = this.peekNonSpace();
      if ((kind === 'if' && nxt.t === 'keyword' && nxt.v === 'if') || (kind === 'with' && nxt.t === 'keyword' && nxt.v === 'with')) {
        // {{else if …}}: an if nested in the else list that shares this {{end}}.
        this.nextNonSpace();
        elseList = [this.control(kind, nxt)];
      } else {
        const r = this.nextNonSpace();
        if (r.t !== 'right') this.unexpected(r, 'else');
        const rest = this.itemList();
        if (rest.stop.v !== 'end') this.errorf('expected end; found {{else}}', rest.stop);
        elseList = rest.list;
      }
    }
    this.vars.pop();
    this.depth--;
    return { k: kind, pos: kw.pos, line: kw.line, pipe, list, elseList } as Node;
  }

  private pipeline(context: string, end: 'right' | 'rparen'): Pipe {
    const first = this.peekNonSpace();
    const pipe: Pipe = { pos: first.pos, decl: [], isAssign: false, cmds: [] };
    // Declarations: $x := / $x = / $i, $v :=
    const save = this.i;
    const v = this.nextNonSpace();
    if (v.t === 'var') {
      const after = this.nextNonSpace();
      if (after.t === 'declare' || after.t === 'assign') {
        pipe.isAssign = after.t === 'assign';
        pipe.decl.push({ name: v.v, pos: v.pos });
        // Go checks an assignment's variable when it runs ("undefined variable: $x").
        if (after.t === 'declare') this.vars[this.vars.length - 1]!.push(v.v);
      } else if (after.t === 'comma' && context === 'range') {
        const v2 = this.nextNonSpace();
        const op = this.nextNonSpace();
        if (v2.t === 'var' && op.t === 'comma') this.errorf(`too many declarations in ${context}`, op);
        if (v2.t !== 'var' || (op.t !== 'declare' && op.t !== 'assign')) this.errorf('range can only initialize variables', v2);
        pipe.isAssign = op.t === 'assign';
        pipe.decl.push({ name: v.v, pos: v.pos }, { name: v2.v, pos: v2.pos });
        if (op.t === 'declare') this.vars[this.vars.length - 1]!.push(v.v, v2.v);
      } else if (after.t === 'comma') {
        this.errorf(`too many declarations in ${context}`, after);
      } else this.i = save;
    } else this.i = save;
    for (;;) {
      const t = this.nextNonSpace();
      if (t.t === end) {
        this.checkPipeline(pipe, context, t);
        return pipe;
      }
      if (['bool', 'dot', 'field', 'ident', 'number', 'nil', 'string', 'var', 'lparen'].includes(t.t) ) {
        this.backup();
        pipe.cmds.push(this.command());
        continue;
      }
      if (t.t === 'error') this.errorf(t.v, t);
      if (t.t === 'eof') this.errorf('unclosed action', t);
      this.unexpected(t, context);
    }
  }

  private checkPipeline(pipe: Pipe, context: string, tok: Tok): void {
    if (pipe.cmds.length === 0) this.errorf(`missing value for ${context}`, tok);
    for (let i = 1; i < pipe.cmds.length; i++) {
      const a = pipe.cmds[i]!.args[0]!;
      if (['bool', 'dot', 'nil', 'number', 'string'].includes(a.k)) this.errorf(`non executable command in pipeline stage ${i + 1}`, tok);
    }
  }

  private hasVar(name: string): boolean {
    return this.vars[this.vars.length - 1]!.includes(name);
  }

  private command(): Cmd {
    const cmd: Cmd = { pos: this.peekNonSpace().pos, args: [] };
    for (;;) {
      this.peekNonSpace();
      const op = this.operand();
      if (op) cmd.args.push(op);
      const t = this.next();
      switch (t.t) {
        case 'space':
          continue;
        case 'right':
        case 'rparen':
          this.backup();
          break;
        case 'pipe':
          break;
        case 'error':
          this.errorf(t.v, t);
          break;
        case 'eof':
          this.errorf('unclosed action', t);
          break;
        default:
          this.unexpected(t, 'operand');
      }
      break;
    }
    if (cmd.args.length === 0) this.errorf('empty command');
    return cmd;
  }

  private operand(): Arg | undefined {
    const node = this.term();
    if (!node) return undefined;
    if (this.peek().t === 'field') {
      const chainPos = this.peek().pos;
      const fields: string[] = [];
      while (this.peek().t === 'field') fields.push(this.next().v.slice(1));
      switch (node.k) {
        case 'field':
          return { k: 'field', pos: chainPos, ident: [...node.ident, ...fields] };
        case 'var':
          return { k: 'var', pos: chainPos, ident: [...node.ident, ...fields] };
        case 'bool':
        case 'string':
        case 'number':
        case 'nil':
        case 'dot':
          this.errorf(`unexpected . after term ${JSON.stringify(argString(node))}`);
          break;
        default:
          return { k: 'chain', pos: chainPos, node, field: fields };
      }
    }
    return node;
  }

  private term(): Arg | undefined {
    const t = this.nextNonSpace();
    switch (t.t) {
      case 'ident':
        if (!(t.v in this.funcs)) this.errorf(`function "${t.v}" not defined`, t);
        return { k: 'ident', pos: t.pos, name: t.v };
      case 'dot':
        return { k: 'dot', pos: t.pos };
      case 'nil':
        return { k: 'nil', pos: t.pos };
      case 'var': {
        if (!this.hasVar(t.v)) this.errorf(`undefined variable "${t.v}"`, t);
        return { k: 'var', pos: t.pos, ident: [t.v] };
      }
      case 'field':
        return { k: 'field', pos: t.pos, ident: [t.v.slice(1)] };
      case 'bool':
        return { k: 'bool', pos: t.pos, val: t.v === 'true' };
      case 'number':
        return { k: 'number', pos: t.pos, val: t.val as number, isInt: Boolean(t.isInt), text: t.v };
      case 'string':
        return { k: 'string', pos: t.pos, val: t.val as string, text: t.v };
      case 'lparen': {
        const pipe = this.pipeline('parenthesized pipeline', 'rparen');
        return { k: 'pipe', pos: t.pos, pipe };
      }
    }
    this.backup();
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Evaluation (text/template/exec.go)

/** A template function. `lazy` functions (and, or) get thunks. Arity: exact count or [min] for variadic. */
export interface GoFunc {
  arity: number | [number];
  fn: (...args: unknown[]) => unknown;
  lazy?: boolean;
}

export interface ExecOptions {
  /** Go's missingkey option for maps: 'default' prints `<no value>`, 'error' fails ("map has no entry for key"). */
  missingKey?: 'default' | 'error';
  /** Plain objects that are not maps are structs: a field they lack is "can't evaluate field" (docker's typed inspect pass). */
  strictStructs?: boolean;
  /** Type name in "can't evaluate field X in type T" for non-struct values (docker's raw inspect fallback says "interface {}"). */
  rawTypes?: boolean;
  /** Every plain object is a Go map (printed `map[…]`, JSON keys sorted): docker's inspect of the raw JSON. */
  allMaps?: boolean;
  /** Names a struct (a plain object that is not a map) does not answer to: JSON names whose Go field differs (`Id` is `ID`). */
  jsonOnly?: ReadonlySet<string>;
}

/** Go's limit on nested {{template}} calls. */
const MAX_DEPTH = 100000;

class ExecState {
  out = '';
  depth = 0;
  vars: Array<{ name: string; value: unknown }> = [];
  node: { pos: number; text: string } = { pos: 0, text: '' };

  constructor(
    readonly tmpl: GoTemplate,
    readonly funcs: FuncTable,
    readonly opts: ExecOptions,
  ) {}

  at(pos: number, text: string): void {
    this.node = { pos, text };
  }

  errorf(msg: string): never {
    const src = this.tmpl.source.slice(0, this.node.pos);
    const nl = src.lastIndexOf('\n');
    const col = nl === -1 ? this.node.pos : this.node.pos - nl - 1;
    const line = 1 + (src.match(/\n/g)?.length ?? 0);
    const name = this.tmpl.name;
    const err = new TemplateExecError(`template: ${name}:${line}:${col}: executing "${name}" at <${this.node.text}>: ${msg}`);
    throw err;
  }

  typeName(v: unknown): string {
    if (this.opts.rawTypes && !isGoStruct(v)) return 'interface {}';
    return goTypeName(v);
  }
}

class Break {}
class Continue {}

export function goTypeName(v: unknown): string {
  if (v === undefined) return '<invalid reflect.Value>';
  if (v === null) return 'interface {}';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float64';
  if (Array.isArray(v)) return '[]interface {}';
  if (isGoStruct(v)) return v[goType];
  if (isGoMap(v)) return 'map[string]interface {}';
  if (typeof v === 'function') return 'func';
  return 'struct';
}

export function truth(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === 'string') return v.length > 0;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'boolean') return v;
  if (Array.isArray(v)) return v.length > 0;
  if (isGoMap(v)) return Object.keys(v).length > 0;
  return true;
}

function walk(s: ExecState, dot: unknown, nodes: Node[]): void {
  for (const n of nodes) walkNode(s, dot, n);
}

function walkNode(s: ExecState, dot: unknown, n: Node): void {
  switch (n.k) {
    case 'text':
      s.out += n.text;
      return;
    case 'action': {
      // Variables declared here live until the end of the enclosing control (its mark is reset there).
      const v = evalPipeline(s, dot, n.pipe);
      if (n.pipe.decl.length === 0) s.out += printValue(s, v);
      return;
    }
    case 'if':
    case 'with': {
      const mark = s.vars.length;
      const v = evalPipeline(s, dot, n.pipe);
      if (truth(v)) walk(s, n.k === 'with' ? v : dot, n.list);
      else if (n.elseList) walk(s, dot, n.elseList);
      s.vars.length = mark;
      return;
    }
    case 'range':
      walkRange(s, dot, n);
      return;
    case 'break':
      throw new Break();
    case 'continue':
      throw new Continue();
    case 'template': {
      s.at(n.namePos, `{{template ${JSON.stringify(n.name)}${n.pipe ? ' ' + pipeString(n.pipe) : ''}}}`);
      const body = s.tmpl.defines.get(n.name);
      if (!body) s.errorf(`template ${JSON.stringify(n.name)} not defined`);
      const newDot = n.pipe ? evalPipeline(s, dot, n.pipe) : undefined;
      const saved = s.vars;
      s.vars = [{ name: '$', value: newDot }];
      if (++s.depth > MAX_DEPTH) s.errorf(`exceeded maximum template depth (${MAX_DEPTH})`);
      try {
        walk(s, newDot, body);
      } catch (e) {
        // JS's stack ends before Go's depth limit: the same error for a template that calls itself.
        if (e instanceof RangeError) s.errorf(`exceeded maximum template depth (${MAX_DEPTH})`);
        throw e;
      }
      s.depth--;
      s.vars = saved;
      return;
    }
  }
}

function walkRange(s: ExecState, dot: unknown, n: Extract<Node, { k: 'range' }>): void {
  const mark = s.vars.length;
  const val = evalPipeline(s, dot, { ...n.pipe, decl: [] });
  s.at(n.pipe.pos, pipeString(n.pipe));
  const items: Array<[unknown, unknown]> = [];
  if (val === undefined || val === null) {
    // nothing: Go ranges over nothing for an invalid or nil value
  } else if (Array.isArray(val)) val.forEach((v, i) => items.push([i, v]));
  else if (typeof val === 'object' && !isGoStruct(val)) for (const k of Object.keys(val).sort()) items.push([k, (val as Record<string, unknown>)[k]]);
  else if (typeof val === 'number' && Number.isInteger(val)) for (let i = 0; i < val; i++) items.push([i, i]);
  else s.errorf(`range can't iterate over ${printValue(s, val)}`);
  for (const [k, v] of items) {
    const inner = s.vars.length;
    if (n.pipe.decl.length === 1) setVar(s, n.pipe.decl[0]!.name, v, n.pipe.isAssign);
    else if (n.pipe.decl.length === 2) {
      setVar(s, n.pipe.decl[0]!.name, k, n.pipe.isAssign);
      setVar(s, n.pipe.decl[1]!.name, v, n.pipe.isAssign);
    }
    try {
      walk(s, v, n.list);
    } catch (e) {
      if (e instanceof Break) {
        s.vars.length = inner;
        break;
      }
      if (!(e instanceof Continue)) throw e;
    }
    s.vars.length = inner;
  }
  if (items.length === 0 && n.elseList) walk(s, dot, n.elseList);
  s.vars.length = mark;
}

function setVar(s: ExecState, name: string, value: unknown, assign: boolean): void {
  if (assign) {
    for (let i = s.vars.length - 1; i >= 0; i--)
      if (s.vars[i]!.name === name) {
        s.vars[i]!.value = value;
        return;
      }
    s.errorf(`undefined variable: ${name}`);
  }
  s.vars.push({ name, value });
}

function getVar(s: ExecState, name: string): unknown {
  for (let i = s.vars.length - 1; i >= 0; i--) if (s.vars[i]!.name === name) return s.vars[i]!.value;
  s.errorf(`undefined variable: ${name}`);
}

function evalPipeline(s: ExecState, dot: unknown, pipe: Pipe): unknown {
  let value: unknown = NO_FINAL;
  for (const cmd of pipe.cmds) value = evalCommand(s, dot, cmd, value);
  for (const d of pipe.decl) setVar(s, d.name, value, pipe.isAssign);
  return value;
}

/** The "final" argument of a pipeline stage is absent for the first command. */
const NO_FINAL = Symbol('noFinal');

function evalCommand(s: ExecState, dot: unknown, cmd: Cmd, final: unknown): unknown {
  const first = cmd.args[0]!;
  switch (first.k) {
    case 'field':
      return evalFieldChain(s, dot, dot, first, first.ident, cmd.args, final);
    case 'chain': {
      const base = evalArg(s, dot, first.node);
      return evalFieldChain(s, dot, base, first, first.field, cmd.args, final);
    }
    case 'ident':
      return evalFunction(s, dot, first, cmd, final);
    case 'pipe':
      notAFunction(s, cmd, final);
      return evalPipeline(s, dot, first.pipe);
    case 'var': {
      s.at(first.pos, argString(first));
      const v = getVar(s, first.ident[0]!);
      if (first.ident.length === 1) {
        notAFunction(s, cmd, final);
        return v;
      }
      return evalFieldChain(s, dot, v, first, first.ident.slice(1), cmd.args, final);
    }
  }
  s.at(first.pos, argString(first));
  notAFunction(s, cmd, final);
  switch (first.k) {
    case 'bool':
      return first.val;
    case 'dot':
      return dot;
    case 'nil':
      s.errorf('nil is not a command');
      break;
    case 'number':
      return first.val;
    case 'string':
      return first.val;
  }
  return undefined;
}

function notAFunction(s: ExecState, cmd: Cmd, final: unknown): void {
  if (cmd.args.length > 1 || final !== NO_FINAL) s.errorf(`can't give argument to non-function ${argString(cmd.args[0]!)}`);
}

function evalArg(s: ExecState, dot: unknown, a: Arg): unknown {
  s.at(a.pos, argString(a));
  switch (a.k) {
    case 'dot':
      return dot;
    case 'nil':
      return null;
    case 'bool':
      return a.val;
    case 'number':
      return a.val;
    case 'string':
      return a.val;
    case 'field':
      return evalFieldChain(s, dot, dot, a, a.ident, [a], NO_FINAL);
    case 'var': {
      const v = getVar(s, a.ident[0]!);
      return a.ident.length === 1 ? v : evalFieldChain(s, dot, v, a, a.ident.slice(1), [a], NO_FINAL);
    }
    case 'chain':
      return evalFieldChain(s, dot, evalArg(s, dot, a.node), a, a.field, [a], NO_FINAL);
    case 'pipe':
      return evalPipeline(s, dot, a.pipe);
    case 'ident':
      return evalFunction(s, dot, a, { pos: a.pos, args: [a] }, NO_FINAL);
  }
}

function evalFieldChain(s: ExecState, dot: unknown, receiver: unknown, node: Arg, ident: string[], args: Arg[], final: unknown): unknown {
  const n = ident.length;
  for (let i = 0; i < n - 1; i++) receiver = evalField(s, dot, ident[i]!, node, [], NO_FINAL, receiver);
  return evalField(s, dot, ident[n - 1]!, node, args, final, receiver);
}

function evalField(s: ExecState, dot: unknown, name: string, node: Arg, args: Arg[], final: unknown, receiver: unknown): unknown {
  s.at(node.pos, argString(node));
  const hasArgs = args.length > 1 || final !== NO_FINAL;
  if (receiver === undefined) {
    if (s.opts.missingKey === 'error') s.errorf(`nil data; no entry for key "${name}"`);
    return undefined;
  }
  if (receiver === null) s.errorf(`nil pointer evaluating ${s.typeName(null)}.${name}`);
  const callMethod = (fn: (...a: unknown[]) => unknown): unknown => {
    const argv = args.slice(1).map((a) => evalArg(s, dot, a));
    if (final !== NO_FINAL) argv.push(final);
    s.at(node.pos, argString(node));
    if (argv.length !== fn.length) s.errorf(`wrong number of args for ${name}: want ${fn.length} got ${argv.length}`);
    try {
      return fn.apply(receiver, argv);
    } catch (e) {
      s.errorf(`error calling ${name}: ${(e as Error).message}`);
    }
  };
  if (isGoStruct(receiver)) {
    if (!hasMember(receiver, name)) s.errorf(`can't evaluate field ${name} in type ${receiver[goType]}`);
    const member = receiver[name];
    if (typeof member === 'function') return callMethod(member as (...a: unknown[]) => unknown);
    if (hasArgs) s.errorf(`${name} is not a method but has arguments`);
    return member;
  }
  if (typeof receiver === 'object' && !Array.isArray(receiver)) {
    const obj = receiver as Record<string, unknown>;
    const member = Object.hasOwn(obj, name) ? obj[name] : undefined;
    // A method of a map type (docker's header context has .Label).
    if (typeof member === 'function') return callMethod(member as (...a: unknown[]) => unknown);
    if (s.opts.jsonOnly?.has(name) && !isGoMap(obj)) s.errorf(`can't evaluate field ${name} in type ${s.typeName(obj)}`);
    if (hasArgs) s.errorf(`${name} is not a method but has arguments`);
    // A JSON null in a decoded map is Go's nil interface, which prints <no value>.
    if (Object.hasOwn(obj, name)) return member === undefined || member === null ? (isGoMap(obj) && s.opts.allMaps ? undefined : null) : member;
    if (isGoMap(obj) || !s.opts.strictStructs) {
      if (s.opts.missingKey === 'error') s.errorf(`map has no entry for key "${name}"`);
      return undefined;
    }
    s.errorf(`can't evaluate field ${name} in type ${s.typeName(obj)}`);
  }
  s.errorf(`can't evaluate field ${name} in type ${s.typeName(receiver)}`);
}

/** An own field or a method of the struct's class (not Object's). */
function hasMember(o: object, name: string): boolean {
  for (let p: object | null = o; p && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) if (Object.hasOwn(p, name)) return name !== 'constructor';
  return false;
}

function evalFunction(s: ExecState, dot: unknown, id: Extract<Arg, { k: 'ident' }>, cmd: Cmd, final: unknown): unknown {
  s.at(id.pos, id.name);
  const f = s.funcs[id.name]!;
  const argNodes = cmd.args.slice(1);
  const count = argNodes.length + (final !== NO_FINAL ? 1 : 0);
  const cmdText = cmdString(cmd);
  if (typeof f.arity === 'number' ? count !== f.arity : count < f.arity[0]) {
    s.at(id.pos, id.name);
    s.errorf(`wrong number of args for ${id.name}: want ${typeof f.arity === 'number' ? f.arity : `at least ${f.arity[0]}`} got ${count}`);
  }
  if (f.lazy) {
    const thunks = argNodes.map((a) => () => evalArg(s, dot, a));
    if (final !== NO_FINAL) thunks.push(() => final);
    return f.fn(...thunks);
  }
  const argv = argNodes.map((a) => evalArg(s, dot, a));
  if (final !== NO_FINAL) argv.push(final);
  s.at(cmd.pos, cmdText);
  try {
    return f.fn(...argv);
  } catch (e) {
    if (e instanceof TemplateExecError) throw e;
    s.errorf(`error calling ${id.name}: ${(e as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Printing (fmt's %v) and JSON (encoding/json)

/** Go's %v of a float64 (strconv 'g', shortest): exponent form below 1e-4 and from 1e6, two-digit exponents. */
export function goFloat(n: number): string {
  if (!Number.isFinite(n)) return Number.isNaN(n) ? 'NaN' : n > 0 ? '+Inf' : '-Inf';
  if (n === 0) return Object.is(n, -0) ? '-0' : '0';
  const [mant, expStr] = n.toExponential().split('e') as [string, string];
  const exp = Number(expStr);
  if (exp < -4 || exp >= 6) return `${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return String(n);
}

function formatValue(v: unknown, top: boolean, names = false): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'number') return Number.isInteger(v) && Math.abs(v) < 1e21 ? String(v) : goFloat(v);
  if (typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return `[${v.map((x) => formatValue(x, false, names)).join(' ')}]`;
  if (isGoMap(v)) return `map[${Object.keys(v).sort().map((k) => `${k}:${formatValue(v[k], false, names)}`).join(' ')}]`;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const fields = isGoStruct(v) ? Object.keys(o).filter((k) => typeof o[k] !== 'function') : Object.keys(o);
    const body = `{${fields.map((k) => (names ? `${k}:` : '') + formatValue(o[k] ?? null, false, names)).join(' ')}}`;
    return top || !isGoStruct(v) ? body : `&${body}`;
  }
  return String(v);
}

function printValue(s: ExecState, v: unknown): string {
  if (typeof v === 'function') s.errorf(`can't print ${s.node.text} of type func`);
  return formatValue(v, true);
}

/** fmt.Sprint's %v of a value (what `{{.}}` prints). */
export function goSprint(v: unknown): string {
  return formatValue(v, true);
}

function jsonString(s: string, escapeHTML: boolean): string {
  let out = JSON.stringify(s).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
  if (escapeHTML) out = out.replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
  return out;
}

/** encoding/json's Marshal: map keys sorted, struct fields in order, a GoStruct through its [goJSON]. */
export function goJSONEncode(v: unknown, escapeHTML = false): string {
  if (v === undefined || v === null) return 'null';
  if (typeof v === 'string') return jsonString(v, escapeHTML);
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : 'null';
  if (typeof v === 'boolean') return String(v);
  if (v === nilSlice || v === nilMap) return 'null';
  if (Array.isArray(v)) return `[${v.map((x) => goJSONEncode(x, escapeHTML)).join(',')}]`;
  if (isGoStruct(v)) {
    const marshal = v[goJSON];
    // docker's contexts marshal with json.Marshal, which escapes <, > and &.
    return goJSONEncode(marshal ? marshal.call(v) : null, true);
  }
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const omit = OMIT_EMPTY.get(o);
    let keys = Object.keys(o).filter((k) => o[k] !== undefined && typeof o[k] !== 'function' && !(omit?.has(k) && isEmptyValue(o[k])));
    if (isGoMap(o)) keys = keys.sort();
    return `{${keys.map((k) => `${jsonString(k, escapeHTML)}:${goJSONEncode(o[k], escapeHTML)}`).join(',')}}`;
  }
  return 'null';
}

// ---------------------------------------------------------------------------------------------
// Builtin functions (text/template/funcs.go)

function goLen(v: unknown): number {
  if (typeof v === 'string') return Buffer.byteLength(v);
  if (Array.isArray(v)) return v.length;
  if (isGoMap(v)) return Object.keys(v).length;
  if (v !== null && typeof v === 'object' && !isGoStruct(v)) return Object.keys(v).length;
  throw new Error(`len of type ${goTypeName(v)}`);
}

function goIndex(item: unknown, ...keys: unknown[]): unknown {
  let v = item;
  for (const k of keys) {
    if (v === undefined || v === null) throw new Error('index of untyped nil');
    if (Array.isArray(v) || typeof v === 'string') {
      if (typeof k !== 'number' || !Number.isInteger(k)) throw new Error(`cannot index slice/array with type ${goTypeName(k)}`);
      if (k < 0 || k >= v.length) throw new Error(`index out of range: ${k}`);
      v = typeof v === 'string' ? Buffer.from(v)[k] : v[k];
      continue;
    }
    if (typeof v === 'object' && !isGoStruct(v)) {
      if (typeof k !== 'string') throw new Error(`value has type ${goTypeName(k)}; should be string`);
      const o = v as Record<string, unknown>;
      if (Object.hasOwn(o, k)) v = o[k] ?? null;
      else {
        // The zero value of the map's element type: "" for maps of strings (labels, options).
        const vals = Object.values(o);
        v = vals.every((x) => typeof x === 'string') ? '' : undefined;
      }
      continue;
    }
    throw new Error(`can't index item of type ${goTypeName(v)}`);
  }
  return v;
}

function goSlice(item: unknown, ...idx: unknown[]): unknown {
  if (typeof item !== 'string' && !Array.isArray(item)) throw new Error(`can't slice item of type ${goTypeName(item)}`);
  if (idx.length > 3) throw new Error(`too many slice indexes: ${idx.length}`);
  if (typeof item === 'string' && idx.length === 3) throw new Error('cannot 3-index slice a string');
  const len = typeof item === 'string' ? Buffer.byteLength(item) : item.length;
  const n = idx.map((i) => {
    if (typeof i !== 'number' || !Number.isInteger(i)) throw new Error(`cannot index slice/array with type ${goTypeName(i)}`);
    return i;
  });
  const lo = n[0] ?? 0;
  const hi = n[1] ?? len;
  for (const i of n) if (i < 0 || i > len) throw new Error(`index out of range: ${i}`);
  if (lo > hi) throw new Error(`invalid slice index: ${lo} > ${hi}`);
  return typeof item === 'string' ? Buffer.from(item).subarray(lo, hi).toString() : item.slice(lo, hi);
}

type Basic = 'bool' | 'int' | 'float' | 'string' | 'nil' | 'other';

function basicKind(v: unknown): Basic {
  if (v === null || v === undefined) return 'nil';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'string') return 'string';
  return 'other';
}

function goEq(a: unknown, ...bs: unknown[]): boolean {
  const ka = basicKind(a);
  for (const b of bs) {
    const kb = basicKind(b);
    if (ka === 'nil' || kb === 'nil') {
      if (ka === kb) return true;
      continue;
    }
    if (ka !== kb) throw new Error('incompatible types for comparison');
    if (ka === 'other' && typeof a === 'object') throw new Error('non-comparable types');
    if (a === b) return true;
  }
  return false;
}

function goLess(a: unknown, b: unknown): boolean {
  const ka = basicKind(a);
  const kb = basicKind(b);
  if (ka === 'bool' || ka === 'nil' || ka === 'other') throw new Error('invalid type for comparison');
  if (ka !== kb) throw new Error('incompatible types for comparison');
  return (a as number | string) < (b as number | string);
}

function htmlEscape(s: string): string {
  return s.replace(/[<>&'"\0]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&#39;', '"': '&#34;', '\0': '\uFFFD' })[c]!);
}

function jsEscape(s: string): string {
  return s.replace(/[\\'"<>&=\n\r\t\u0000-\u001f]/g, (c) => {
    switch (c) {
      case '\\': return '\\\\';
      case "'": return "\\'";
      case '"': return '\\"';
      case '<': return '\\u003C';
      case '>': return '\\u003E';
      case '&': return '\\u0026';
      case '=': return '\\u003D';
      case '\n': return '\\n';
      case '\r': return '\\r';
      case '\t': return '\\t';
      default: return `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
    }
  });
}

/** Go's fmt.Sprint: spaces between operands when neither side is a string. */
function goSprintArgs(args: unknown[]): string {
  let out = '';
  args.forEach((a, i) => {
    if (i > 0 && typeof a !== 'string' && typeof args[i - 1] !== 'string') out += ' ';
    out += formatValue(a, true);
  });
  return out;
}

/** fmt.Sprintf for the verbs templates use: %v %+v %s %q %d %x %X %o %b %c %e %f %g %t %T %%, flags, width and precision. */
export function goSprintf(format: string, ...args: unknown[]): string {
  let out = '';
  let argi = 0;
  for (let i = 0; i < format.length; i++) {
    const c = format[i]!;
    if (c !== '%') {
      out += c;
      continue;
    }
    let flags = '';
    while ('+-# 0'.includes(format[i + 1] ?? 'x')) flags += format[++i];
    let width = '';
    if (format[i + 1] === '*') {
      i++;
      width = String(args[argi++]);
    } else while (/[0-9]/.test(format[i + 1] ?? '')) width += format[++i];
    let prec: string | undefined;
    if (format[i + 1] === '.') {
      i++;
      prec = '';
      if (format[i + 1] === '*') {
        i++;
        prec = String(args[argi++]);
      } else while (/[0-9]/.test(format[i + 1] ?? '')) prec += format[++i];
    }
    const verb = format[++i];
    if (verb === undefined) {
      out += '%!(NOVERB)';
      break;
    }
    if (verb === '%') {
      out += '%';
      continue;
    }
    if (argi >= args.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    const a = args[argi++];
    const p = prec === undefined ? undefined : Number(prec || '0');
    // fmt applies a verb other than %v and %T to each element of a slice.
    let s = Array.isArray(a) && verb !== 'v' && verb !== 'T' ? `[${a.map((x) => formatVerb(verb, flags, p, x)).join(' ')}]` : formatVerb(verb, flags, p, a);
    if (width) {
      const w = Number(width);
      const len = [...s].length;
      if (len < w) {
        if (flags.includes('-')) s = s + ' '.repeat(w - len);
        else if (flags.includes('0') && /[dxXofeEgGb]/.test(verb)) {
          const sign = /^[+-]/.test(s) ? s[0]! : '';
          s = sign + '0'.repeat(w - len) + s.slice(sign.length);
        } else s = ' '.repeat(w - len) + s;
      }
    }
    out += s;
  }
  if (argi < args.length) out += `%!(EXTRA ${args.slice(argi).map((a) => `${goTypeName(a)}=${formatValue(a, true)}`).join(', ')})`;
  return out;
}

/** One fmt verb applied to one operand. */
function formatVerb(verb: string, flags: string, p: number | undefined, a: unknown): string {
  let s: string;
  switch (verb) {
    case 'v':
      s = flags.includes('#') && typeof a === 'string' ? JSON.stringify(a) : formatValue(a, true, flags.includes('+'));
      break;
    case 's':
      s = formatValue(a, true);
      if (p !== undefined) s = [...s].slice(0, p).join('');
      break;
    case 'q':
      s = typeof a === 'number' && Number.isInteger(a) ? `'${String.fromCodePoint(a)}'` : JSON.stringify(formatValue(a, true));
      break;
    case 'd':
      s = typeof a === 'number' && Number.isInteger(a) ? String(Math.abs(a)) : `%!d(${goTypeName(a)}=${formatValue(a, true)})`;
      if (typeof a === 'number' && Number.isInteger(a)) s = (a < 0 ? '-' : flags.includes('+') ? '+' : '') + s;
      break;
    case 'x':
    case 'X': {
      if (typeof a === 'number' && Number.isInteger(a)) s = (a < 0 ? '-' : '') + Math.abs(a).toString(16);
      else if (typeof a === 'string') s = Buffer.from(a).toString('hex');
      else s = `%!${verb}(${goTypeName(a)}=${formatValue(a, true)})`;
      if (flags.includes('#')) s = '0x' + s;
      if (verb === 'X') s = s.toUpperCase();
      break;
    }
    case 'o':
      s = typeof a === 'number' ? Math.trunc(a).toString(8) : `%!o(${goTypeName(a)})`;
      break;
    case 'b':
      s = typeof a === 'number' ? Math.trunc(a).toString(2) : `%!b(${goTypeName(a)})`;
      break;
    case 'c':
      s = typeof a === 'number' ? String.fromCodePoint(a) : `%!c(${goTypeName(a)})`;
      break;
    case 'e':
    case 'E':
    case 'f':
    case 'F':
    case 'g':
    case 'G': {
      if (typeof a !== 'number') {
        s = `%!${verb}(${goTypeName(a)}=${formatValue(a, true)})`;
        break;
      }
      if (verb === 'f' || verb === 'F') s = a.toFixed(p ?? 6);
      else if (verb === 'e' || verb === 'E') s = a.toExponential(p ?? 6).replace(/e([+-])(\d)$/, 'e$10$2');
      else s = p === undefined ? goFloat(a) : String(Number(a.toPrecision(p || 1)));
      if (verb === verb.toUpperCase()) s = s.toUpperCase();
      if (flags.includes('+') && a >= 0) s = '+' + s;
      break;
    }
    case 't':
      s = typeof a === 'boolean' ? String(a) : `%!t(${goTypeName(a)}=${formatValue(a, true)})`;
      break;
    case 'T':
      s = goTypeName(a);
      break;
    default:
      s = `%!${verb}(${goTypeName(a)}=${formatValue(a, true)})`;
  }
  return s;
}

export const BUILTINS: FuncTable = {
  and: {
    arity: [1],
    lazy: true,
    fn: (...thunks) => {
      let v: unknown;
      for (const t of thunks as Array<() => unknown>) {
        v = t();
        if (!truth(v)) return v;
      }
      return v;
    },
  },
  or: {
    arity: [1],
    lazy: true,
    fn: (...thunks) => {
      let v: unknown;
      for (const t of thunks as Array<() => unknown>) {
        v = t();
        if (truth(v)) return v;
      }
      return v;
    },
  },
  not: { arity: 1, fn: (v) => !truth(v) },
  len: { arity: 1, fn: goLen },
  index: { arity: [1], fn: goIndex },
  slice: { arity: [1], fn: goSlice },
  eq: { arity: [1], fn: (a, ...b) => { if (b.length === 0) throw new Error('missing argument for comparison'); return goEq(a, ...b); } },
  ne: { arity: 2, fn: (a, b) => !goEq(a, b) },
  lt: { arity: 2, fn: (a, b) => goLess(a, b) },
  le: { arity: 2, fn: (a, b) => goLess(a, b) || goEq(a, b) },
  gt: { arity: 2, fn: (a, b) => !goLess(a, b) && !goEq(a, b) },
  ge: { arity: 2, fn: (a, b) => !goLess(a, b) },
  print: { arity: [0], fn: (...a) => goSprintArgs(a) },
  println: { arity: [0], fn: (...a) => a.map((x) => formatValue(x, true)).join(' ') + '\n' },
  printf: { arity: [1], fn: (f, ...a) => { if (typeof f !== 'string') throw new Error(`wrong type for value; expected string; got ${goTypeName(f)}`); return goSprintf(f, ...a); } },
  html: { arity: [0], fn: (...a) => htmlEscape(goSprintArgs(a)) },
  js: { arity: [0], fn: (...a) => jsEscape(goSprintArgs(a)) },
  urlquery: { arity: [0], fn: (...a) => new URLSearchParams({ q: goSprintArgs(a) }).toString().slice(2) },
  call: {
    arity: [1],
    fn: (f, ...a) => {
      if (typeof f !== 'function') throw new Error(`non-function of type ${goTypeName(f)}`);
      return (f as (...x: unknown[]) => unknown)(...a);
    },
  },
};

// ---------------------------------------------------------------------------------------------
// Templates

export class GoTemplate {
  readonly defines: Map<string, Node[]>;
  private readonly root: Node[];

  /** Parses `source`; throws TemplateParseError with Go's text. `name` appears in messages (docker's are mostly ""). */
  constructor(
    readonly source: string,
    readonly name = '',
    private readonly funcs: FuncTable = BUILTINS,
  ) {
    const parser = new Parser(lex(source), name, funcs);
    this.root = parser.parse();
    this.defines = parser.defines;
  }

  /** Executes with `data` as dot; `funcs` may replace functions of the same names (docker's header functions). */
  execute(data: unknown, opts: ExecOptions = {}, funcs?: FuncTable): string {
    const s = new ExecState(this, funcs ? { ...this.funcs, ...funcs } : this.funcs, opts);
    s.vars.push({ name: '$', value: data });
    const saved = allMaps;
    allMaps = Boolean(opts.allMaps);
    try {
      walk(s, data, this.root);
    } catch (e) {
      if (e instanceof TemplateExecError) e.partial = s.out;
      throw e;
    } finally {
      allMaps = saved;
    }
    return s.out;
  }
}
