// `berth exec`: run a command inside a running container (the helper enters its namespaces with
// setns and joins its cgroups). Exit code: the command's, or 125/126/127 as docker's.
import { bool, list, parseFlags, str, type FlagSpec } from './cli-flags.js';
import { allCapabilities, CAPABILITIES } from './confinement.js';
import { ContainerStore } from './container-store.js';
import { launchHelper, StartError } from './launch.js';
import { mergeEnv, UsageError } from './process-spec.js';
import { RuntimeLayout } from './runtime-layout.js';

const FLAGS: FlagSpec[] = [
  { name: 'interactive', short: 'i', kind: 'bool' },
  { name: 'tty', short: 't', kind: 'bool' },
  { name: 'detach', short: 'd', kind: 'bool' },
  { name: 'env', short: 'e', kind: 'list' },
  { name: 'workdir', short: 'w', kind: 'string' },
  { name: 'user', short: 'u', kind: 'string' },
  { name: 'privileged', kind: 'bool' },
];

export async function main(argv: string[]): Promise<number> {
  const store = new ContainerStore(new RuntimeLayout());
  try {
    const p = parseFlags(argv, FLAGS);
    const [ref, ...cmd] = p.operands;
    if (!ref || cmd.length === 0) throw new UsageError('"berth exec" requires at least 2 arguments.');
    const id = await store.lookup(ref);
    const config = await store.config(id);
    const state = await store.state(id);
    if (state.Status !== 'running') throw new StartError(125, `container ${id} is not running`);
    const launched = await launchHelper(
      'exec',
      {
        pid: state.Pid,
        args: cmd,
        env: mergeEnv(config.Config.Env, list(p, 'env')),
        cwd: str(p, 'workdir') ?? config.Config.WorkingDir,
        user: str(p, 'user') ?? config.Config.User,
        cgroups: config.cgroups.dirs,
        tty: bool(p, 'tty'),
        // docker exec: the container's capabilities (all with --privileged), seccomp profile (even
        // with --privileged: runc applies the container's) and no_new_privs.
        capabilities: bool(p, 'privileged') ? allCapabilities().map((c) => CAPABILITIES[c]!) : config.helper.capabilities,
        seccomp: config.helper.seccomp ?? null,
        seccompCache: config.helper.seccompCache,
        noNewPrivileges: config.helper.noNewPrivileges,
        rlimits: [],
      },
      [bool(p, 'interactive') || bool(p, 'tty') ? 'inherit' : 'ignore', 'inherit', 'inherit'],
    );
    await launched.pid;
    return await launched.exit;
  } catch (err) {
    process.stderr.write(`berth: ${(err as Error).message}\n`);
    return err instanceof StartError ? err.code : err instanceof UsageError ? 125 : 125;
  }
}
