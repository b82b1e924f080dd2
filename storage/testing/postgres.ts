// A throwaway PostgreSQL (Debian `postgresql`, binaries under /usr/lib/postgresql/<major>/bin) for
// tests and benchmarks: a fresh cluster (initdb) in a mkdtemp folder under /tmp, the postmaster in
// the foreground as a child of the test process (not `pg_ctl start`, which would detach it),
// listening on 127.0.0.1 at a port picked at run time, its unix socket inside the folder.
// Durability is off (fsync, synchronous_commit, full_page_writes): a test cluster lives for one
// process. initdb and postgres refuse to run as root: as root, they run as the `postgres` user and
// the folder is chowned to it (that is why it is under /tmp, not under root's home).
// The superuser `berth` logs in over TCP with a random password (scram-sha-256); the unix socket
// trusts local users (psql for the fixture's own administration). docs/testing-services.md.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, releaseDir, removeAtExit, spawnDaemon, stopDaemon, treeMemoryBytes, type Daemon } from './processes.js';

const run = promisify(execFile);

const PSQL = '/usr/bin/psql';

/** The newest /usr/lib/postgresql/<major>/bin holding initdb and postgres, or undefined. */
function serverBinDir(): string | undefined {
  const override = process.env.BERTH_PG_BIN;
  if (override) return existsSync(join(override, 'initdb')) && existsSync(join(override, 'postgres')) ? override : undefined;
  let majors: string[] = [];
  try {
    majors = readdirSync('/usr/lib/postgresql').filter((d) => /^\d+$/.test(d));
  } catch {
    return undefined;
  }
  for (const m of majors.sort((a, b) => Number(b) - Number(a))) {
    const bin = `/usr/lib/postgresql/${m}/bin`;
    if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'postgres'))) return bin;
  }
  return undefined;
}

/** uid and gid of `name` from /etc/passwd, or undefined. */
function systemUser(name: string): { uid: number; gid: number } | undefined {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === name && f[2] && f[3]) return { uid: Number(f[2]), gid: Number(f[3]) };
    }
  } catch {
    // no /etc/passwd
  }
  return undefined;
}

/** Why a test PostgreSQL cannot be started here (a skip reason), or undefined. */
export function postgresMissing(): string | undefined {
  if (!serverBinDir()) return 'PostgreSQL server binaries (/usr/lib/postgresql/<major>/bin/initdb, postgres) not installed (apt-get install postgresql; .ci/run does)';
  if (!existsSync(PSQL)) return `${PSQL} not installed (apt-get install postgresql-client)`;
  if (process.getuid?.() === 0 && !systemUser('postgres')) return 'running as root and there is no `postgres` user to run initdb/postgres as (Debian postgresql creates it)';
  return undefined;
}

export interface PostgresOptions {
  /** More server settings (`-c name=value`), e.g. { max_connections: '300' }. */
  settings?: Record<string, string>;
}

export interface TestPostgres {
  /** postgres://berth:PASSWORD@127.0.0.1:PORT/berth */
  url: string;
  host: string;
  port: number;
  user: string;
  password: string;
  /** The temp folder (data directory under data/, unix socket under sock/). */
  dir: string;
  /** Creates database `name` ([a-z_][a-z0-9_]*) owned by the superuser; resolves with its URL. */
  createDatabase(name: string): Promise<string>;
  /** Runs SQL with psql (unaligned, tuples only) on `database` (default `berth`); resolves with its stdout. */
  psql(sql: string, database?: string): Promise<string>;
  /** Fast shutdown (clients are disconnected), then the same cluster starts again on the same port. */
  restart(): Promise<void>;
  /** Memory of the postmaster and its backends (sum of PSS), bytes. */
  memoryBytes(): number;
  /** Stops the server and removes the folder. */
  stop(): Promise<void>;
}

const USER = 'berth';

export async function startPostgres(opts: PostgresOptions = {}): Promise<TestPostgres> {
  const reason = postgresMissing();
  if (reason) throw new Error(reason);
  const bin = serverBinDir()!;
  const asUser = process.getuid?.() === 0 ? systemUser('postgres') : undefined;
  const dir = await mkdtemp('/tmp/berth-pg-');
  removeAtExit(dir);
  const data = join(dir, 'data');
  const sock = join(dir, 'sock');
  const password = randomBytes(18).toString('base64url');
  const env = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C', LC_ALL: 'C', HOME: dir };
  let server: Daemon | undefined;
  let port = 0;
  const stopServer = async () => {
    // SIGINT: PostgreSQL's fast shutdown (active sessions are ended, no waiting for clients).
    if (server) await stopDaemon(server, 15_000, 'SIGINT');
    server = undefined;
  };
  const stop = async () => {
    await stopServer();
    await rm(dir, { recursive: true, force: true });
    releaseDir(dir);
  };
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: sock,
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    log_min_messages: 'warning',
    ...opts.settings,
  };
  /** Starts the postmaster on `port`; resolves false when the port was taken meanwhile. */
  const startServer = async (): Promise<boolean> => {
    const args = ['-D', data, '-p', String(port), ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
    const d = spawnDaemon('postgres', join(bin, 'postgres'), args, { env, cwd: dir, ...(asUser ?? {}) });
    server = d;
    const end = Date.now() + 60_000;
    for (;;) {
      // The postmaster logs this line once it accepts connections (log_min_messages does not hide it).
      if (d.log().includes('database system is ready to accept connections')) return true;
      if (!d.running()) {
        await d.exited;
        if (/could not bind|Address already in use/.test(d.log())) return false;
        throw new Error(`postgres exited before it was ready:\n${d.log()}`);
      }
      if (Date.now() > end) throw new Error(`postgres not ready after 60 s:\n${d.log()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const psql = async (sql: string, database = USER): Promise<string> => {
    try {
      const r = await run(PSQL, ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', sock, '-p', String(port), '-U', USER, '-d', database, '-c', sql], { env: { ...env, HOME: dir }, ...(asUser ?? {}) });
      return r.stdout;
    } catch (e) {
      const err = e as Error & { stderr?: string };
      throw new Error(`psql ${JSON.stringify(sql)} failed: ${(err.stderr || err.message).trim()}`);
    }
  };
  try {
    await mkdir(sock);
    await writeFile(join(dir, 'pwfile'), `${password}\n`, { mode: 0o600 });
    if (asUser) for (const p of [dir, sock, join(dir, 'pwfile')]) await chown(p, asUser.uid, asUser.gid);
    try {
      await run(
        join(bin, 'initdb'),
        ['-D', data, '-U', USER, `--pwfile=${join(dir, 'pwfile')}`, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'],
        { env, cwd: dir, ...(asUser ?? {}) },
      );
    } catch (e) {
      const err = e as Error & { stderr?: string };
      throw new Error(`initdb failed: ${(err.stderr || err.message).trim()}`);
    }
    await rm(join(dir, 'pwfile'));
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      if (await startServer()) break;
      if (attempt >= 5) throw new Error(`postgres: no free port after ${attempt + 1} attempts`);
    }
    // The database the URL names, so that the URL works as is.
    await psql(`CREATE DATABASE ${USER}`, 'postgres');
  } catch (e) {
    await stop();
    throw e;
  }
  const urlFor = (db: string) => `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${db}`;
  return {
    url: urlFor(USER),
    host: '127.0.0.1',
    port,
    user: USER,
    password,
    dir,
    async createDatabase(name) {
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`database name ${JSON.stringify(name)}: use [a-z_][a-z0-9_]*`);
      await psql(`CREATE DATABASE ${name}`, 'postgres');
      return urlFor(name);
    },
    psql,
    async restart() {
      await stopServer();
      if (!(await startServer())) throw new Error(`postgres restart: port ${port} was taken meanwhile`);
    },
    memoryBytes: () => (server?.child.pid ? treeMemoryBytes([server.child.pid]) : 0),
    stop,
  };
}
