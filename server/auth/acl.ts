// Authorization rules: `{"access": [{"account": "alice", "name": "team/*", "actions": ["pull", "push"]}],
// "groups": {"devs": ["alice", "bob"]}}`. `name` is a glob on repository names (`*` within a path
// component, `**` across them; a trailing `/*` also matches deeper names as `team/*` reads to a
// person); `account` is a user, a group, or `*` for every authenticated user. Accounts that no
// rule names get nothing.
import { readFile } from 'node:fs/promises';
import { repositoryGlob } from '../../oci/names.js';

export type Action = 'pull' | 'push' | 'delete';
export const ALL_ACTIONS: readonly Action[] = ['pull', 'push', 'delete'];

interface Rule {
  account: string;
  pattern: RegExp;
  /** The glob's text before its first wildcard: every name it matches starts with this. */
  prefix: string;
  actions: Set<Action>;
}

export class Acl {
  private readonly rules: Rule[];
  private readonly groups: Map<string, Set<string>>;

  constructor(doc: unknown, source = 'ACL') {
    if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { access?: unknown }).access)) {
      throw new Error(`${source}: expected {"access": [{"account": ..., "name": ..., "actions": [...]}]}`);
    }
    const d = doc as { access: unknown[]; groups?: unknown };
    this.groups = new Map();
    if (d.groups !== undefined) {
      if (typeof d.groups !== 'object' || d.groups === null) throw new Error(`${source}: groups must map a group name to a list of users`);
      for (const [g, members] of Object.entries(d.groups)) {
        if (!Array.isArray(members) || !members.every((m) => typeof m === 'string')) throw new Error(`${source}: groups.${g} must be a list of user names`);
        this.groups.set(g, new Set(members as string[]));
      }
    }
    this.rules = d.access.map((r, i) => {
      const rule = r as { account?: unknown; name?: unknown; actions?: unknown };
      if (typeof rule.account !== 'string' || typeof rule.name !== 'string' || !Array.isArray(rule.actions)) {
        throw new Error(`${source}: access[${i}] needs account (string), name (glob) and actions (list)`);
      }
      const actions = new Set<Action>();
      for (const a of rule.actions) {
        if (a === '*') ALL_ACTIONS.forEach((x) => actions.add(x));
        else if (a === 'pull' || a === 'push' || a === 'delete') actions.add(a);
        else throw new Error(`${source}: access[${i}]: unknown action ${JSON.stringify(a)} (pull, push, delete or *)`);
      }
      return { account: rule.account, pattern: repositoryGlob(rule.name), prefix: rule.name.split(/[*?]/, 1)[0]!, actions };
    });
  }

  static async load(path: string): Promise<Acl> {
    const text = await readFile(path, 'utf8');
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new Error(`${path}: not valid JSON: ${(e as Error).message}`);
    }
    return new Acl(doc, path);
  }

  private applies(rule: Rule, account: string): boolean {
    return rule.account === account || rule.account === '*' || (this.groups.get(rule.account)?.has(account) ?? false);
  }

  /**
   * Prefixes that every name `account` may pull starts with (the literal heads of its pull rules'
   * globs), for a search to read only those names; undefined when a rule starts with a wildcard.
   */
  pullPrefixes(account: string): string[] | undefined {
    const heads: string[] = [];
    for (const rule of this.rules) {
      if (!rule.actions.has('pull') || !this.applies(rule, account)) continue;
      if (rule.prefix === '') return undefined;
      heads.push(rule.prefix);
    }
    // Shortest first; a prefix another one already covers adds nothing.
    heads.sort((a, b) => a.length - b.length || (a < b ? -1 : 1));
    return heads.filter((p, i) => !heads.slice(0, i).some((q) => p.startsWith(q)));
  }

  /** Actions `account` may take on repository `name`. */
  actionsFor(account: string, name: string): Set<Action> {
    const out = new Set<Action>();
    for (const rule of this.rules) {
      if (this.applies(rule, account) && rule.pattern.test(name)) rule.actions.forEach((a) => out.add(a));
    }
    return out;
  }
}
