// `berth network ls|create|rm|inspect|connect|disconnect|prune` and `berth port`: flags here, the
// work in network-verbs.ts.
import { bool, list, parseFlags, str, type FlagSpec } from './cli-flags.js';
import * as verbs from './network-verbs.js';

const FLAGS: Record<string, FlagSpec[]> = {
  ls: [
    { name: 'quiet', short: 'q', kind: 'bool' },
    { name: 'no-trunc', kind: 'bool' },
    { name: 'filter', short: 'f', kind: 'list' },
  ],
  create: [
    { name: 'driver', short: 'd', kind: 'string' },
    { name: 'subnet', kind: 'string' },
    { name: 'gateway', kind: 'string' },
    { name: 'label', kind: 'list' },
  ],
  rm: [],
  inspect: [],
  connect: [
    { name: 'alias', kind: 'list' },
    { name: 'ip', kind: 'string' },
  ],
  disconnect: [{ name: 'force', short: 'f', kind: 'bool' }],
  prune: [{ name: 'force', short: 'f', kind: 'bool' }],
};
const ALIASES: Record<string, string> = { list: 'ls', remove: 'rm' };
const OPERANDS: Record<string, [number, number]> = { ls: [0, 0], create: [1, 1], rm: [1, Infinity], inspect: [1, Infinity], connect: [2, 2], disconnect: [2, 2], prune: [0, 0] };

export async function main(argv: string[]): Promise<number> {
  const [given, ...rest] = argv;
  const sub = ALIASES[given ?? ''] ?? given ?? '';
  const spec = FLAGS[sub];
  if (!spec) {
    process.stderr.write('Usage: berth network ls|create|rm|inspect|connect|disconnect|prune\n');
    return given === undefined || given === '--help' ? 0 : 125;
  }
  let p;
  try {
    p = parseFlags(rest, spec, false);
    const [min, max] = OPERANDS[sub]!;
    if (p.operands.length < min || p.operands.length > max) throw new Error(`"berth network ${sub}" requires ${min === max ? `exactly ${min}` : `at least ${min}`} argument${min === 1 ? '' : 's'}.`);
  } catch (err) {
    process.stderr.write(`berth: ${(err as Error).message}\n`);
    return 125;
  }
  const [a, b] = p.operands;
  switch (sub) {
    case 'ls':
      return verbs.ls({ quiet: bool(p, 'quiet'), noTrunc: bool(p, 'no-trunc'), filter: list(p, 'filter') });
    case 'create':
      return verbs.create({ name: a!, driver: str(p, 'driver'), subnet: str(p, 'subnet'), gateway: str(p, 'gateway'), labels: verbs.parseLabels(list(p, 'label')) });
    case 'rm':
      return verbs.rm(p.operands);
    case 'inspect':
      return verbs.inspect(p.operands);
    case 'connect':
      return verbs.connect(a!, b!, { aliases: list(p, 'alias'), ip: str(p, 'ip') });
    case 'disconnect':
      return verbs.disconnect(a!, b!);
    default:
      return verbs.prune({ force: bool(p, 'force') });
  }
}

export async function port(argv: string[]): Promise<number> {
  const operands = argv.filter((x) => !x.startsWith('-'));
  if (operands.length < 1 || operands.length > 2 || operands.length !== argv.length) {
    process.stderr.write('"berth port" requires at least 1 and at most 2 arguments.\nUsage:  berth port CONTAINER [PRIVATE_PORT[/PROTO]]\n');
    return 1;
  }
  return verbs.port(operands[0]!, operands[1]);
}
