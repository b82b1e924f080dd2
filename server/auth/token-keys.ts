// The token service's signing keys, kept in <data>/auth/keys/: EC P-256 (ES256) private keys, one
// PEM file each, named by creation time. The newest signs; older ones verify until every token they
// signed (refresh tokens included) has expired, so rotating keys logs nobody out.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

export interface SigningKey {
  kid: string;
  created: number;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32(buf: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of buf) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** libtrust's key ID (jwt.md#getting-a-bearer-token): the first 240 bits of SHA-256 over the DER public key, base32, in groups of four. */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const b32 = base32(createHash('sha256').update(der).digest().subarray(0, 30));
  return b32.match(/.{4}/g)!.join(':');
}

const FILE_RE = /^signing-(\d+)\.pem$/;

export class KeyRing {
  private keys: SigningKey[] = [];
  readonly dir: string;
  private readonly rotateMs: number;
  private readonly keepMs: number;

  private recentReads: number[] = [];

  /**
   * `dir`: the keys' folder, which replicas may share. `keepMs`: how long a key verifies after a
   * newer key replaced it (the longest token lifetime).
   */
  constructor(dir: string, opts: { rotateMs: number; keepMs: number }) {
    this.dir = dir;
    this.rotateMs = opts.rotateMs;
    this.keepMs = opts.keepMs;
  }

  async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await this.read();
    await this.rotate();
  }

  /** Reads the folder again: keys another replica sharing it made or retired. */
  private async read(): Promise<void> {
    const keys: SigningKey[] = [];
    for (const f of await readdir(this.dir)) {
      const m = FILE_RE.exec(f);
      if (!m) continue;
      const pem = await readFile(join(this.dir, f), 'utf8').catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return undefined; // retired by another replica meanwhile
        throw e;
      });
      if (pem !== undefined) keys.push(toSigningKey(pem, Number(m[1])));
    }
    this.keys = keys.sort((a, b) => b.created - a.created);
  }

  /**
   * A token names a key this process does not hold: another replica sharing the folder may have
   * made it since. Reads the folder again, at most 10 times a second (a flood of forged kids costs
   * no more than that).
   */
  async learn(kid: string): Promise<void> {
    if (this.byKid(kid)) return;
    const now = Date.now();
    this.recentReads = this.recentReads.filter((t) => now - t < 1000);
    if (this.recentReads.length >= 10) return;
    this.recentReads.push(now);
    await this.read();
  }

  /** Makes a new key when the newest is due, and drops keys no live token can carry any more. */
  async rotate(now = Date.now()): Promise<void> {
    // Another replica sharing the folder may have rotated already.
    await this.read();
    const newest = this.keys[0];
    if (!newest || now - newest.created >= this.rotateMs) {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
      const created = Math.max(now, (newest?.created ?? 0) + 1);
      const tmp = join(this.dir, `.tmp-${randomBytes(6).toString('hex')}`);
      const fh = await open(tmp, 'w', 0o600);
      await fh.writeFile(pem);
      await fh.sync();
      await fh.close();
      await rename(tmp, join(this.dir, `signing-${created}.pem`));
      this.keys.unshift(toSigningKey(pem, created));
    }
    // A key retires when its successor has been signing for longer than any token lives.
    const kept: SigningKey[] = [this.keys[0]!];
    for (let i = 1; i < this.keys.length; i++) {
      const successor = this.keys[i - 1]!;
      if (now - successor.created < this.keepMs) kept.push(this.keys[i]!);
      else await unlink(join(this.dir, `signing-${this.keys[i]!.created}.pem`)).catch(() => undefined);
    }
    this.keys = kept;
  }

  current(): SigningKey {
    const k = this.keys[0];
    if (!k) throw new Error('key ring not loaded');
    return k;
  }

  byKid(kid: string): SigningKey | undefined {
    return this.keys.find((k) => k.kid === kid);
  }

  all(): readonly SigningKey[] {
    return this.keys;
  }
}

function toSigningKey(pem: string, created: number): SigningKey {
  const publicKey = createPublicKey(pem);
  return { kid: libtrustKeyId(publicKey), created, privateKey: createPrivateKey(pem), publicKey };
}
