// Web UI sessions: after a login with the registry's own users, the browser holds an HMAC-signed
// cookie naming the account and its expiry (nothing secret in it; no server-side state, so any
// replica sharing the key file accepts it). The key is 32 random bytes in <data>/ui/session-key
// (mode 0600, made on first use; replicas share it by sharing the file). Forms carry a CSRF token
// equal to a SameSite=Strict cookie: another site can neither read the cookie nor make the
// browser send it, so a forged POST lacks one of the two.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';

export const SESSION_COOKIE = 'berth_session';
export const CSRF_COOKIE = 'berth_csrf';
/** A login lasts 12 hours. */
export const SESSION_MS = 12 * 3600 * 1000;

async function loadKey(dir: string): Promise<Buffer> {
  const file = join(dir, 'session-key');
  try {
    return Buffer.from((await readFile(file, 'utf8')).trim(), 'hex');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // temp + fsync + rename: a crash leaves no half-written key; a replica racing us keeps its own
  // rename's key only until it reads the file again, so both read the file after the rename.
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(randomBytes(32).toString('hex') + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  return Buffer.from((await readFile(file, 'utf8')).trim(), 'hex');
}

export class Sessions {
  private constructor(private readonly key: Buffer) {}

  static async load(dataDir: string): Promise<Sessions> {
    const key = await loadKey(join(dataDir, 'ui'));
    if (key.length < 32) throw new Error(`${join(dataDir, 'ui', 'session-key')}: expected 64 hex digits`);
    return new Sessions(key);
  }

  private mac(payload: string): Buffer {
    return createHmac('sha256', this.key).update(payload).digest();
  }

  issue(account: string, now = Date.now()): string {
    const payload = Buffer.from(JSON.stringify({ u: account, e: now + SESSION_MS })).toString('base64url');
    return `${payload}.${this.mac(payload).toString('base64url')}`;
  }

  /** The account of a valid, unexpired cookie value. */
  read(value: string | undefined, now = Date.now()): string | undefined {
    if (!value) return undefined;
    const dot = value.indexOf('.');
    if (dot <= 0) return undefined;
    const payload = value.slice(0, dot);
    const given = Buffer.from(value.slice(dot + 1), 'base64url');
    const want = this.mac(payload);
    if (given.length !== want.length || !timingSafeEqual(given, want)) return undefined;
    try {
      const p = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { u?: unknown; e?: unknown };
      return typeof p.u === 'string' && typeof p.e === 'number' && p.e > now ? p.u : undefined;
    } catch {
      return undefined;
    }
  }
}

export function newCsrfToken(): string {
  return randomBytes(16).toString('hex');
}

export function sameToken(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a), Buffer.from(b));
}
