// Registry credentials in docker's config.json format (`{"auths": {"host": {"auth": base64(user:pass)}}}`),
// read from Berth's own file first, then ~/.docker/config.json, where, as docker does, a
// `credHelpers` entry for the registry or a `credsStore` names the credential helper that holds
// them (`docker-credential-NAME get`); `berth login` writes Berth's file only.
import { open, readFile, rename, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { randomUUID } from 'node:crypto';
import { berthAuthPath, dockerConfigPath } from './paths.js';
import { DOCKER_HUB } from '../oci/reference.js';

export interface Credentials {
  username: string;
  password: string;
}

interface AuthFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [k: string]: unknown;
}

/** Docker keys Docker Hub as its v1 index URL; every other registry by host (sometimes with scheme/path). */
const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';

function keyHost(key: string): string {
  const host = key.replace(/^https?:\/\//, '').split('/')[0]!.toLowerCase();
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? DOCKER_HUB : host;
}

async function readAuthFile(path: string): Promise<AuthFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw e;
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as AuthFile) : {};
  } catch {
    throw new Error(`${path}: invalid JSON`);
  }
}

function decode(entry: NonNullable<AuthFile['auths']>[string]): Credentials | undefined {
  if (entry.auth) {
    const text = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = text.indexOf(':');
    if (colon > 0) return { username: text.slice(0, colon), password: text.slice(colon + 1) };
  }
  if (entry.username && entry.password) return { username: entry.username, password: entry.password };
  return undefined;
}

/** Credentials for `registry` (normalised host[:port]), or undefined. */
export async function findCredentials(registry: string): Promise<Credentials | undefined> {
  for (const path of [berthAuthPath(), dockerConfigPath()]) {
    const file = await readAuthFile(path);
    // docker's order: a helper for this registry, else the default store, else `auths` itself.
    const helper = Object.entries(file.credHelpers ?? {}).find(([key]) => keyHost(key) === registry)?.[1] ?? file.credsStore;
    if (helper) {
      const c = await fromHelper(helper, registry, path);
      if (c) return c;
      continue;
    }
    for (const [key, entry] of Object.entries(file.auths ?? {})) {
      if (keyHost(key) === registry && entry) {
        const c = decode(entry);
        if (c) return c;
      }
    }
  }
  return undefined;
}

/**
 * Asks `docker-credential-NAME get` (the docker-credential-helpers protocol: the server URL on
 * stdin, `{"ServerURL","Username","Secret"}` on stdout; a failure means "not stored").
 */
async function fromHelper(name: string, registry: string, configPath: string): Promise<Credentials | undefined> {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`${configPath}: invalid credential helper name ${JSON.stringify(name)}`);
  const { spawn } = await import('node:child_process');
  const program = `docker-credential-${name}`;
  const serverUrl = registry === DOCKER_HUB ? DOCKER_HUB_KEY : registry;
  const out = await new Promise<string | undefined>((resolve, reject) => {
    const child = spawn(program, ['get'], { stdio: ['pipe', 'pipe', 'ignore'] });
    let text = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (text += d));
    // A helper that is not installed (Docker Desktop gone, config.json left behind) holds nothing:
    // anonymous pulls still work, and a registry that wants a login says so.
    child.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? resolve(undefined) : reject(new Error(`${program} (named in ${configPath}): ${e.message}`))));
    child.on('close', (code) => resolve(code === 0 ? text : undefined));
    child.stdin.on('error', () => undefined);
    child.stdin.end(serverUrl);
  });
  if (out === undefined) return undefined;
  let reply: { Username?: unknown; Secret?: unknown };
  try {
    reply = JSON.parse(out) as typeof reply;
  } catch {
    throw new Error(`${program} get returned invalid JSON`);
  }
  // "<token>" marks an identity token (OAuth refresh token), which Berth does not exchange.
  if (typeof reply.Username !== 'string' || typeof reply.Secret !== 'string' || reply.Username === '<token>' || !reply.Username) return undefined;
  return { username: reply.Username, password: reply.Secret };
}

async function writeAuthFile(path: string, file: AuthFile): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${randomUUID()}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(JSON.stringify(file, null, '\t') + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

export async function storeCredentials(registry: string, c: Credentials): Promise<string> {
  const path = berthAuthPath();
  const file = await readAuthFile(path);
  const auths = { ...(file.auths ?? {}) };
  for (const key of Object.keys(auths)) if (keyHost(key) === registry) delete auths[key];
  auths[registry === DOCKER_HUB ? DOCKER_HUB_KEY : registry] = { auth: Buffer.from(`${c.username}:${c.password}`).toString('base64') };
  await writeAuthFile(path, { ...file, auths });
  return path;
}

/** Removes Berth's stored credentials for `registry`; returns whether there were any. */
export async function removeCredentials(registry: string): Promise<boolean> {
  const path = berthAuthPath();
  const file = await readAuthFile(path);
  const auths = { ...(file.auths ?? {}) };
  let found = false;
  for (const key of Object.keys(auths)) {
    if (keyHost(key) === registry) {
      delete auths[key];
      found = true;
    }
  }
  if (found) await writeAuthFile(path, { ...file, auths });
  return found;
}
