// Users file in Apache htpasswd format, bcrypt entries only (`htpasswd -B`), as the reference
// registry reads it: one `user:$2y$...` line per user. Verification is constant-time per attempt:
// an unknown user costs the same bcrypt comparison as a known one.
import { createHmac, randomBytes } from 'node:crypto';
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import bcrypt from 'bcryptjs';

const BCRYPT_RE = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;
/** htpasswd's user names may not contain ':'; newlines would corrupt the file. */
const USER_RE = /^[^:\s][^:\r\n]{0,254}$/;
/** Cost of hashes Berth writes (htpasswd -B uses 5; 10 is the bcrypt default). */
export const BCRYPT_COST = 10;
/** A successful check is remembered this long so a pull of 50 layers costs one bcrypt, not 50. */
const VERIFIED_CACHE_MS = 60_000;
/** The file is re-read when it changed, checked at most this often. */
const RELOAD_CHECK_MS = 1000;

export function isValidUserName(name: string): boolean {
  return USER_RE.test(name);
}

export function parseHtpasswd(text: string): { users: Map<string, string>; skipped: string[] } {
  const users = new Map<string, string>();
  const skipped: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const user = line.slice(0, i);
    const hash = line.slice(i + 1);
    if (BCRYPT_RE.test(hash)) users.set(user, hash);
    else skipped.push(user);
  }
  return { users, skipped };
}

export function formatHtpasswd(users: Map<string, string>): string {
  return [...users].map(([u, h]) => `${u}:${h}\n`).join('');
}

export async function hashPassword(password: string): Promise<string> {
  return bcrypt.hash(password, BCRYPT_COST);
}

/** Writes the users file crash-safely (temp file, fsync, rename), readable by its owner only. */
export async function writeHtpasswd(path: string, users: Map<string, string>): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(formatHtpasswd(users));
    await fh.sync();
  } catch (e) {
    await fh.close();
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  await rename(tmp, path);
  const dir = await open(dirname(path), 'r');
  await dir.sync().finally(() => dir.close());
}

export async function readHtpasswdFile(path: string): Promise<Map<string, string>> {
  try {
    return parseHtpasswd(await readFile(path, 'utf8')).users;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw e;
  }
}

function costOf(hash: string): number | undefined {
  const m = /^\$2[aby]\$(\d{2})\$/.exec(hash);
  return m ? Number(m[1]) : undefined;
}

/** The most common cost among `hashes` (the higher on a tie); Berth's own without any. */
export function commonCost(hashes: Iterable<string>): number {
  const counts = new Map<number, number>();
  for (const h of hashes) {
    const c = costOf(h);
    if (c !== undefined) counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  let best = BCRYPT_COST;
  let seen = 0;
  for (const [c, n] of counts) if (n > seen || (n === seen && c > best)) [best, seen] = [c, n];
  return best;
}

/** The users file as the server reads it: reloaded when it changes on disk. */
export class Htpasswd {
  private users = new Map<string, string>();
  private loadedStamp = '';
  private lastCheck = 0;
  /** HMAC(secret, length-prefixed user + password) → expiry of a recent successful check; the secret never leaves memory. */
  private readonly verified = new Map<string, number>();
  private readonly secret = randomBytes(32);
  private dummyHash = '';
  /** bcrypt comparisons made (a test seam: one per uncached check, whether or not the user exists). */
  compares = 0;
  private readonly path: string;
  private readonly onSkipped: ((users: string[]) => void) | undefined;
  private readonly onReloadError: ((e: Error) => void) | undefined;

  constructor(path: string, hooks: { onSkipped?: (users: string[]) => void; onReloadError?: (e: Error) => void } = {}) {
    this.path = path;
    this.onSkipped = hooks.onSkipped;
    this.onReloadError = hooks.onReloadError;
  }

  async load(): Promise<void> {
    const st = await stat(this.path);
    const stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    this.lastCheck = Date.now();
    if (stamp === this.loadedStamp) return;
    const { users, skipped } = parseHtpasswd(await readFile(this.path, 'utf8'));
    if (skipped.length > 0) this.onSkipped?.(skipped);
    this.users = users;
    this.loadedStamp = stamp;
    // The dummy costs what the file's hashes cost (htpasswd -B writes cost 5, Berth 10); in a file
    // mixing costs, the most common one, so that most users are indistinguishable from nobody.
    this.dummyHash = bcrypt.hashSync(randomBytes(16).toString('hex'), commonCost(users.values()));
    this.verified.clear();
  }

  private async refresh(): Promise<void> {
    if (Date.now() - this.lastCheck < RELOAD_CHECK_MS) return;
    try {
      await this.load();
    } catch (e) {
      // A file caught mid-edit or briefly missing: keep the users last read rather than fail every request.
      this.lastCheck = Date.now();
      this.onReloadError?.(e as Error);
    }
  }

  /** Cost of the hash an unknown user is compared against. */
  get dummyCost(): number {
    return costOf(this.dummyHash) ?? BCRYPT_COST;
  }

  async has(user: string): Promise<boolean> {
    await this.refresh();
    return this.users.has(user);
  }

  /** True when `password` is the user's; takes one bcrypt comparison whether or not the user exists. */
  async verify(user: string, password: string): Promise<boolean> {
    await this.refresh();
    const mac = createHmac('sha256', this.secret).update(`${Buffer.byteLength(user)}:${user}`).update(password).digest('base64');
    const until = this.verified.get(mac);
    if (until !== undefined && until > Date.now() && this.users.has(user)) return true;
    const hash = this.users.get(user);
    // bcrypt's own comparison of the computed and stored hash is constant-time; the dummy hash
    // makes an unknown user as slow as a wrong password.
    this.compares++;
    const ok = await bcrypt.compare(password, hash ?? this.dummyHash);
    if (ok && hash !== undefined) {
      if (this.verified.size > 10_000) this.verified.clear();
      this.verified.set(mac, Date.now() + VERIFIED_CACHE_MS);
      return true;
    }
    return false;
  }
}
