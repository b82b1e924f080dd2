// Registry credentials in docker's config.json format (`{"auths": {"host": {"auth": base64(user:pass)}}}`),
// read from Berth's own file first, then ~/.docker/config.json; `berth login` writes Berth's file only.
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
    for (const [key, entry] of Object.entries(file.auths ?? {})) {
      if (keyHost(key) === registry && entry) {
        const c = decode(entry);
        if (c) return c;
      }
    }
  }
  return undefined;
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
