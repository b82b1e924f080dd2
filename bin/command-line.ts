// docker's command-line grammar on commander, for every berth verb: `--help`/-h on each verb and
// subcommand, docker's lines for usage errors (`unknown flag: --bogus` + `See 'berth run --help'.`,
// `"berth rm" requires at least 1 argument.`) with exit code 125, `--flag=true|false` for
// booleans, and an action's returned number as the exit code. Verbs are defined in
// bin/commands.ts; a layer's cli/ modules hold what the actions run.
import Module, { createRequire } from 'node:module';
import type { Argument, Option } from 'commander';

/** Defined (true) by scripts/bundle-cli.mjs in the CLI bundle; absent in dist/'s ES modules. */
declare const BERTH_BUNDLE: boolean | undefined;

/**
 * commander, loaded without node:child_process: commander requires it when it loads, for
 * executable (git-style) subcommands, which berth never uses; that builtin and what it pulls in
 * (net, dgram, …) cost ~4 ms of every start on Node 20. While commander loads it gets a stand-in
 * that loads the real module on first use.
 */
function loadCommander(): typeof import('commander') {
  const loader = Module as unknown as { _load(request: string, ...rest: unknown[]): unknown };
  const original = loader._load;
  let real: Record<string | symbol, unknown> | undefined;
  const childProcess = new Proxy({}, { get: (_, key) => (real ??= original('node:child_process') as Record<string | symbol, unknown>)[key] });
  loader._load = function (this: unknown, request: string, ...rest: unknown[]) {
    return request === 'node:child_process' || request === 'child_process' ? childProcess : original.call(this, request, ...rest);
  };
  try {
    // In the CLI bundle (scripts/bundle-cli.mjs, CommonJS) a plain require, so that commander is bundled.
    return (typeof BERTH_BUNDLE !== 'undefined' ? require('commander') : createRequire(import.meta.url)('commander')) as typeof import('commander');
  } finally {
    loader._load = original;
  }
}
const { Command, CommanderError } = loadCommander();
type Command = import('commander').Command;

// Every berth command is a BerthCommand (createCommand below): an action may resolve to the exit
// code. The layers' define functions (server/cli.ts, …) take commander's Command type.
declare module 'commander' {
  interface Command {
    action(fn: (this: Command, ...args: any[]) => number | Promise<number>): this;
  }
}

/** A usage error found while parsing (or thrown by an action that validates its options). */
export class CommandLineError extends Error {
  constructor(
    message: string,
    readonly command: Command | undefined,
    /** docker adds the usage line and summary after an operand-count error. */
    readonly withUsage = false,
  ) {
    super(message);
  }
}

/** `berth network create`: the command's full name, as docker's messages print it. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

let actionResult: number | undefined;

/** docker's operand-count sentences (cli/required.go). */
function arityMessage(cmd: Command): string {
  const args = cmd.registeredArguments as readonly Argument[];
  const min = args.filter((a) => a.required).length;
  const max = args.some((a) => a.variadic) ? Infinity : args.length;
  const n = (k: number) => `${k} argument${k === 1 ? '' : 's'}`;
  const name = `"${commandPath(cmd)}"`;
  if (max === 0) return `${name} accepts no arguments.`;
  if (min === max) return `${name} requires exactly ${n(min)}.`;
  if (max === Infinity) return `${name} requires at least ${n(min)}.`;
  if (min === 0) return `${name} accepts at most ${n(max)}.`;
  return `${name} requires at least ${min} and at most ${n(max)}.`;
}

const takesValue = (o: Option) => o.required || o.optional;

export class BerthCommand extends Command {
  /** The words this command parsed last, to name a flag as the user wrote it (-s or --signal). */
  private words: string[] = [];

  override createCommand(name?: string): BerthCommand {
    return new BerthCommand(name).helpCommand(false);
  }

  /** The action's resolved number, if any, is the exit code (0 otherwise). */
  override action(fn: (...args: any[]) => void | number | Promise<void | number>): this {
    return super.action(async (...args: unknown[]) => {
      const r = await fn.apply(this, args);
      if (typeof r === 'number') actionResult = r;
    });
  }

  /** A repeatable option collected into a list (docker's `list` flags: -e, -v, -p, --filter). */
  list(flags: string, description: string): this {
    return this.option(flags, description, (v: string, acc: string[]) => [...acc, v], [] as string[]);
  }

  /** docker's `run`/`exec` rule: flags stop at the first operand (the image, the container). */
  flagsBeforeOperands(): this {
    return this.passThroughOptions();
  }

  /** pflag's `--flag=true|false` and `-d=false` for booleans and `-t=5`, which commander does not parse. */
  override parseOptions(args: string[]): { operands: string[]; unknown: string[] } {
    const out: string[] = [];
    const options = this.options as readonly Option[];
    const long = (name: string) => options.find((o) => o.long === name);
    const short = (name: string) => options.find((o) => o.short === name);
    const passThrough = (this as unknown as { _passThroughOptions: boolean })._passThroughOptions;
    for (let i = 0; i < args.length; i++) {
      const arg = args[i]!;
      if (arg === '--' || !arg.startsWith('-') || arg === '-') {
        if (arg === '--' || passThrough) {
          out.push(...args.slice(i));
          break;
        }
        out.push(arg);
        continue;
      }
      const eq = arg.indexOf('=');
      const flag = eq < 0 ? arg : arg.slice(0, eq);
      const opt = arg.startsWith('--') ? long(flag) : flag.length === 2 ? short(flag) : undefined;
      // pflag's `-t=5`: the value after '=' (commander would take "=5").
      if (opt && takesValue(opt) && !arg.startsWith('--') && eq === 2) {
        out.push(flag, arg.slice(3));
        continue;
      }
      if (opt && !takesValue(opt) && eq >= 0) {
        const value = arg.slice(eq + 1);
        if (value !== 'true' && value !== 'false') throw new CommandLineError(`invalid argument "${value}" for "${opt.flags.replace(/ .*$/, '')}" flag: expected true or false`, this);
        if (value === 'true') out.push(flag);
        continue;
      }
      out.push(arg);
      // A value-taking flag's value is the next word unless attached (--name=x, -m512m).
      if (arg.startsWith('--') ? opt && takesValue(opt) && eq < 0 : !arg.startsWith('--') && arg.length > 1) {
        if (arg.startsWith('--')) {
          if (i + 1 < args.length) out.push(args[++i]!);
          continue;
        }
        // -dit / -m512m / -m 512m: the first letter that takes a value ends the group.
        for (let j = 1; j < arg.length; j++) {
          const s = short(`-${arg[j]}`);
          if (!s) break;
          if (takesValue(s)) {
            if (j === arg.length - 1 && i + 1 < args.length) out.push(args[++i]!);
            break;
          }
        }
      }
    }
    this.words = out;
    return super.parseOptions(out);
  }

  /** commander's other errors (an argument parser's InvalidArgumentError, …) in docker's words. */
  override error(message: string, errorOptions?: { code?: string; exitCode?: number }): never {
    const invalid = /^error: option '([^\s,]+)(?:, (\S+))?[^']*' argument '(.*)' is invalid\.\s*(.*)$/s.exec(message);
    if (errorOptions?.code === 'commander.invalidArgument' && invalid) {
      const flag = invalid[2] ? `${invalid[1]}, ${invalid[2]}` : invalid[1]!;
      throw new CommandLineError(`invalid argument "${invalid[3]}" for "${flag}" flag: ${invalid[4]}`, this);
    }
    throw new CommandLineError(message.replace(/^error: /, ''), this);
  }

  unknownOption(flag: string): never {
    const name = flag.replace(/=.*$/, '');
    throw new CommandLineError(name.startsWith('--') ? `unknown flag: ${name}` : `unknown shorthand flag: '${name.slice(1, 2)}' in ${name}`, this);
  }

  optionMissingArgument(option: Option): never {
    const last = this.words[this.words.length - 1] ?? '';
    const short = option.short && last.startsWith('-') && !last.startsWith('--') && last.endsWith(option.short.slice(1));
    throw new CommandLineError(short ? `flag needs an argument: '${option.short!.slice(1)}' in ${last}` : `flag needs an argument: ${option.long ?? option.short}`, this);
  }

  missingArgument(): never {
    throw new CommandLineError(arityMessage(this), this, true);
  }

  _excessArguments(): never {
    throw new CommandLineError(arityMessage(this), this, true);
  }

  unknownCommand(): never {
    throw new CommandLineError(`unknown command: ${commandPath(this)} ${this.args[0] ?? ''}`.trimEnd(), this);
  }
}

/** A verb or subcommand with docker's help option (`-h, --help`; `--help` alone where -h is a flag). */
export function configure(cmd: BerthCommand, help: '-h, --help' | '--help' = '-h, --help'): BerthCommand {
  return cmd
    // A command's own flags come before its subcommand (`berth serve user add --htpasswd F`:
    // --htpasswd is user add's, not serve's), as docker's.
    .enablePositionalOptions()
    .helpOption(help, 'Print usage')
    .helpCommand(false)
    // A group's help lists its subcommands by name, as docker's (`  create      Create a network`).
    .configureHelp({ subcommandTerm: (c) => c.name() })
    .exitOverride()
    .showSuggestionAfterError(false)
    .configureOutput({
      writeOut: (s) => process.stdout.write(s),
      // Only help goes through writeErr here (a group run without its subcommand): docker prints
      // the group's usage on stdout and exits 0. Errors are CommandLineError, printed by run().
      writeErr: (s) => process.stdout.write(s),
      outputError: () => undefined,
    });
}

/** The usage line and summary docker prints after an operand-count error. */
function usageTail(cmd: Command): string {
  return `\n\nUsage:  ${commandPath(cmd)} ${cmd.usage()}\n\n${cmd.summary() || cmd.description()}`;
}

/** An error an action throws that is a usage error: CommandLineError, or runtime's UsageError (helpHint). */
function usageErrorOf(err: unknown): { message: string; hint: boolean; command?: Command; tail: string } | undefined {
  if (err instanceof CommandLineError) return { message: err.message, hint: true, command: err.command, tail: err.withUsage && err.command ? usageTail(err.command) : '' };
  if (err instanceof Error && typeof (err as { helpHint?: unknown }).helpHint === 'boolean') return { message: `berth: ${err.message}`, hint: (err as unknown as { helpHint: boolean }).helpHint, tail: '' };
  return undefined;
}

/**
 * Parses `argv` (the words after `berth`) against `program` and runs the chosen action. Exit code:
 * the action's number, 0 after help, 125 for a usage error (docker's), 1 for an error the action
 * did not handle (one line on stderr).
 */
export async function run(program: BerthCommand, argv: string[]): Promise<number> {
  actionResult = undefined;
  let current: Command = program;
  program.hook('preSubcommand', (_cmd, sub) => {
    current = sub;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return actionResult ?? 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.help' || err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      // An argument parser's InvalidArgumentError and the like: commander's sentence, docker's frame.
      process.stderr.write(`${err.message.replace(/^error: /, '')}\nSee '${commandPath(current)} --help'.\n`);
      return 125;
    }
    const usage = usageErrorOf(err);
    if (usage) {
      const where = usage.command ?? current;
      process.stderr.write(`${usage.message}${usage.hint ? `\nSee '${commandPath(where)} --help'.` : ''}${usage.tail}\n`);
      return 125;
    }
    process.stderr.write(`berth: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}\n`);
    return 1;
  }
}
