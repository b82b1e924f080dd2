// Where the client keeps things. The interface contract: BERTH_ROOT selects the local image store,
// BERTH_CONFIG the daemon.json-style config, HOME decides where ~/.docker/config.json is read.
import { homedir } from 'node:os';
import { join } from 'node:path';

function home(): string {
  return process.env.HOME || homedir();
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** The local store: `$BERTH_ROOT`, else /var/lib/berth for root, else ~/.local/share/berth. */
export function berthRoot(): string {
  if (process.env.BERTH_ROOT) return process.env.BERTH_ROOT;
  if (isRoot()) return '/var/lib/berth';
  return join(process.env.XDG_DATA_HOME || join(home(), '.local', 'share'), 'berth');
}

function configDir(): string {
  if (isRoot() && !process.env.XDG_CONFIG_HOME) return '/etc/berth';
  return join(process.env.XDG_CONFIG_HOME || join(home(), '.config'), 'berth');
}

/** The daemon.json-style config: `--config`, else `$BERTH_CONFIG`, else /etc/berth/daemon.json (root) or ~/.config/berth/daemon.json. */
export function configPath(flag?: string): string {
  return flag || process.env.BERTH_CONFIG || join(configDir(), 'daemon.json');
}

/** Berth's own credentials file (docker config.json format), written by `berth login`. */
export function berthAuthPath(): string {
  return process.env.BERTH_AUTH_CONFIG || join(process.env.XDG_CONFIG_HOME || join(home(), '.config'), 'berth', 'auth.json');
}

/** Docker's credentials file, read so a user logged in with docker needs nothing more. */
export function dockerConfigPath(): string {
  return join(process.env.DOCKER_CONFIG || join(home(), '.docker'), 'config.json');
}
