// `berth exec`: run a command inside a running container (the helper enters its namespaces with
// setns and joins its cgroups). Exit code: the command's, or 125/126/127 as docker's.
import { allCapabilities, CAPABILITIES } from '../confinement.js';
import { ContainerStore } from '../container-store.js';
import { launchHelper, StartError } from '../launch.js';
import { mergeEnv } from '../process-spec.js';
import { RuntimeLayout } from '../runtime-layout.js';

/** `berth exec`'s flags (bin/commands.ts declares them). */
export interface ExecFlags {
  interactive?: boolean;
  tty?: boolean;
  env: string[];
  workdir?: string;
  user?: string;
  privileged?: boolean;
}

export async function exec(ref: string, cmd: string[], p: ExecFlags): Promise<number> {
  const store = new ContainerStore(new RuntimeLayout());
  try {
    const id = await store.lookup(ref);
    const config = await store.config(id);
    const state = await store.state(id);
    if (state.Status !== 'running') throw new StartError(125, `container ${id} is not running`);
    const launched = await launchHelper(
      'exec',
      {
        pid: state.Pid,
        args: cmd,
        env: mergeEnv(config.Config.Env, p.env),
        cwd: p.workdir ?? config.Config.WorkingDir,
        user: p.user ?? config.Config.User,
        cgroups: config.cgroups.dirs,
        tty: Boolean(p.tty),
        // docker exec: the container's capabilities (all with --privileged), seccomp profile (even
        // with --privileged: runc applies the container's) and no_new_privs.
        capabilities: p.privileged ? allCapabilities().map((c) => CAPABILITIES[c]!) : config.helper.capabilities,
        seccomp: config.helper.seccomp ?? null,
        seccompCache: config.helper.seccompCache,
        noNewPrivileges: config.helper.noNewPrivileges,
        rlimits: [],
      },
      [p.interactive || p.tty ? 'inherit' : 'ignore', 'inherit', 'inherit'],
    );
    await launched.pid;
    return await launched.exit;
  } catch (err) {
    process.stderr.write(`berth: ${(err as Error).message}\n`);
    return err instanceof StartError ? err.code : 125;
  }
}
