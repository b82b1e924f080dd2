// The Dockerfile's word processing (moby/buildkit frontend/dockerfile/shell/lex.go): quotes,
// the escape character and $VAR / ${VAR} / ${VAR:-x} / ${VAR-x} / ${VAR:+x} / ${VAR+x} /
// ${VAR:?msg} expansion, as applied to ENV, ARG, LABEL, FROM, COPY, WORKDIR, USER, EXPOSE,
// VOLUME and STOPSIGNAL. RUN, CMD and ENTRYPOINT are left to the shell in the container.

/** Variables visible to an instruction: ARGs (build args) and ENV of the stage so far. */
export type Vars = ReadonlyMap<string, string>;

export class ExpansionError extends Error {}

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;

/**
 * Splits `text` into words (unquoted whitespace separates them), removing quotes and escapes and
 * expanding variables. An expansion never splits a word (docker does not field-split).
 */
export function processWords(text: string, vars: Vars, escape = '\\'): string[] {
  return new Lexer(text, vars, escape).words();
}

/** One word: the whole text, quotes removed and variables expanded, whitespace kept. */
export function processWord(text: string, vars: Vars, escape = '\\'): string {
  return new Lexer(text, vars, escape).word();
}

class Lexer {
  private pos = 0;
  constructor(
    private readonly s: string,
    private readonly vars: Vars,
    private readonly esc: string,
  ) {}

  words(): string[] {
    const out: string[] = [];
    let cur = '';
    let inWord = false;
    while (this.pos < this.s.length) {
      const ch = this.s[this.pos]!;
      if (/\s/.test(ch)) {
        if (inWord) out.push(cur);
        cur = '';
        inWord = false;
        this.pos++;
        continue;
      }
      inWord = true;
      cur += this.unit();
    }
    if (inWord) out.push(cur);
    return out;
  }

  word(): string {
    let cur = '';
    while (this.pos < this.s.length) cur += this.unit();
    return cur;
  }

  /** One quoted string, escaped char, variable or plain char, processed. */
  private unit(): string {
    const ch = this.s[this.pos]!;
    if (ch === this.esc) {
      this.pos++;
      if (this.pos >= this.s.length) return ''; // a trailing escape is dropped
      return this.s[this.pos++]!;
    }
    if (ch === "'") return this.single();
    if (ch === '"') return this.double();
    if (ch === '$') return this.variable();
    this.pos++;
    return ch;
  }

  private single(): string {
    const end = this.s.indexOf("'", this.pos + 1);
    if (end < 0) throw new ExpansionError(`unexpected end of statement while looking for matching single-quote`);
    const text = this.s.slice(this.pos + 1, end);
    this.pos = end + 1;
    return text;
  }

  private double(): string {
    this.pos++;
    let out = '';
    while (this.pos < this.s.length) {
      const ch = this.s[this.pos]!;
      if (ch === '"') {
        this.pos++;
        return out;
      }
      if (ch === '$') {
        out += this.variable();
        continue;
      }
      if (ch === this.esc && this.pos + 1 < this.s.length) {
        const next = this.s[this.pos + 1]!;
        // Inside double quotes the escape only escapes what would otherwise be special.
        out += next === '"' || next === '$' || next === this.esc ? next : ch + next;
        this.pos += 2;
        continue;
      }
      out += ch;
      this.pos++;
    }
    throw new ExpansionError('unexpected end of statement while looking for matching double-quote');
  }

  private lookup(name: string): string | undefined {
    return this.vars.get(name);
  }

  private variable(): string {
    this.pos++; // '$'
    const ch = this.s[this.pos];
    if (ch === undefined) return '$';
    if (ch === '{') return this.braced();
    if (!NAME_START.test(ch)) {
      // "$1", "$@" and friends mean nothing to the builder: kept literally as docker does for non-names
      return '$';
    }
    let name = '';
    while (this.pos < this.s.length && NAME_CHAR.test(this.s[this.pos]!)) name += this.s[this.pos++];
    return this.lookup(name) ?? '';
  }

  private braced(): string {
    this.pos++; // '{'
    let name = '';
    while (this.pos < this.s.length && NAME_CHAR.test(this.s[this.pos]!)) name += this.s[this.pos++];
    if (name === '') throw new ExpansionError(`bad substitution: missing variable name in \${...}`);
    const ch = this.s[this.pos];
    if (ch === '}') {
      this.pos++;
      return this.lookup(name) ?? '';
    }
    let op = '';
    if (ch === ':') {
      op = ':';
      this.pos++;
    }
    const mod = this.s[this.pos];
    if (mod !== '-' && mod !== '+' && mod !== '?') throw new ExpansionError(`unsupported modifier (${op}${mod ?? 'end of text'}) in substitution of ${name}`);
    op += mod;
    this.pos++;
    const word = this.untilBrace();
    const value = this.lookup(name);
    const set = op.startsWith(':') ? value !== undefined && value !== '' : value !== undefined;
    switch (op.replace(':', '')) {
      case '-':
        return set ? value! : word;
      case '+':
        return set ? word : '';
      default:
        if (!set) throw new ExpansionError(`${name}: ${word || 'is not allowed to be unset'}`);
        return value!;
    }
  }

  /** The word of ${VAR:-word} up to the closing brace, itself processed (nested ${…} allowed). */
  private untilBrace(): string {
    let out = '';
    while (this.pos < this.s.length) {
      const ch = this.s[this.pos]!;
      if (ch === '}') {
        this.pos++;
        return out;
      }
      out += this.unit();
    }
    throw new ExpansionError('syntax error: missing } in substitution');
  }
}
