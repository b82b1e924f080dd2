// What process a container runs, from the image config and `run` flags, by docker's rules:
// --entrypoint replaces Entrypoint and drops the image's Cmd; CMD args replace Cmd; -e overrides Env.
import type { ImageRunConfig } from '../oci/image.js';

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ProcessOverrides {
  entrypoint?: string; // '' clears the image's entrypoint
  cmd: string[];
  env: string[]; // K=V, or K (taken from the caller's environment when set)
  workdir?: string;
  user?: string;
}

export interface ProcessSpec {
  args: string[];
  env: string[];
  cwd: string;
  user: string;
}

export class UsageError extends Error {
  /** `helpHint`: whether the verb follows the message with "See 'berth VERB --help'.". */
  constructor(message: string, readonly helpHint = true) {
    super(message);
  }
}

/** Merges K=V lists: later keys win, order of first appearance kept. */
export function mergeEnv(...lists: string[][]): string[] {
  const map = new Map<string, string>();
  for (const list of lists) {
    for (const kv of list) {
      const eq = kv.indexOf('=');
      if (eq === 0) throw new UsageError(`invalid environment variable: ${kv}`);
      if (eq < 0) {
        const host = process.env[kv];
        if (host !== undefined) map.set(kv, host);
        continue;
      }
      map.set(kv.slice(0, eq), kv.slice(eq + 1));
    }
  }
  return [...map].map(([k, v]) => `${k}=${v}`);
}

export function processSpec(image: ImageRunConfig, o: ProcessOverrides, hostname: string): ProcessSpec {
  let entrypoint = image.Entrypoint ?? [];
  let cmd = image.Cmd ?? [];
  if (o.entrypoint !== undefined) {
    entrypoint = o.entrypoint === '' ? [] : [o.entrypoint];
    cmd = [];
  }
  if (o.cmd.length > 0) cmd = o.cmd;
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) throw new UsageError('no command specified');
  const imageEnv = image.Env ?? [];
  const base = imageEnv.some((e) => e.startsWith('PATH=')) ? [] : [DEFAULT_PATH];
  return {
    args,
    env: mergeEnv(base, [`HOSTNAME=${hostname}`], imageEnv, o.env),
    cwd: o.workdir || image.WorkingDir || '/',
    user: o.user ?? image.User ?? '',
  };
}
