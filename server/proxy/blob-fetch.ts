// One upstream download of a blob, shared by every request for it that arrives meanwhile: the
// bytes go to a temp file as they come, each client streams ("tails") that file at its own pace,
// and the file becomes the cached blob once its digest checks out. Memory stays bounded whatever
// the blob's size and however many clients wait.
import { open, type FileHandle } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Digester, parseDigest } from '../../oci/digest.js';
import { RegistryError } from '../../oci/errors.js';
import type { RegistryStore } from '../../storage/registry-store.js';
import { unlinkQuietly } from '../../storage/durable-file.js';
import type { Upstream } from './upstream.js';

const READ_CHUNK = 1 << 20;
/** How long a replica waits for another replica's download of the same blob. */
const WAIT_ELSEWHERE_MS = 10 * 60 * 1000;
const WRITE_BATCH = 1 << 20;

export class BlobFetch {
  /** Settles once upstream answered with the blob (size known) or failed before any byte. */
  readonly ready: Promise<void>;
  /** Settles when the download ended, stored or failed. */
  readonly finished: Promise<void>;
  size: number | undefined;
  written = 0;
  /** Every byte arrived and hashes to the digest (the file may not be durable yet). */
  verified = false;
  done = false;
  /** Another replica sharing the metadata was downloading this digest: this one waited for it instead. */
  elsewhere = false;
  error: Error | undefined;
  private fh: FileHandle | undefined;
  private readers = 0;
  private waiters: Array<() => void> = [];
  private settleReady!: (e?: Error) => void;
  private readonly tmp: string;

  constructor(
    private readonly store: RegistryStore,
    private readonly upstream: Upstream,
    readonly name: string,
    readonly digest: string,
    private readonly onFinished: (f: BlobFetch) => void,
  ) {
    this.tmp = join(store.layout.tmpDir, `proxy-${randomUUID()}`);
    this.ready = new Promise<void>((resolve, reject) => {
      this.settleReady = (e) => (e ? reject(e) : resolve());
    });
    // Nobody may be waiting on `ready` when it fails (every client left): keep that quiet.
    this.ready.catch(() => undefined);
    this.finished = this.run();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /**
   * With metadata shared by replicas, one download per digest across all of them: the download
   * runs under a cluster-wide job lock; a replica that finds it taken waits until it is free
   * (polling, so no connection is held), and then serves what the other stored.
   */
  private async run(): Promise<void> {
    if (!this.store.meta.shared) return this.download();
    const job = `mirror-fetch:${this.digest}`;
    let downloading = false;
    try {
      const ran = await this.store.meta.runJob(job, async () => {
        downloading = true;
        await this.download();
        return true;
      });
      if (ran) return;
      this.elsewhere = true;
      const deadline = Date.now() + WAIT_ELSEWHERE_MS;
      while ((await this.store.meta.runJob(job, async () => true)) === undefined) {
        if (Date.now() > deadline) throw new Error(`another replica is still downloading ${this.digest} after ${WAIT_ELSEWHERE_MS / 1000} s`);
        await sleep(200);
      }
      this.done = true;
      this.settleReady();
    } catch (e) {
      this.error ??= e instanceof Error ? e : new Error(String(e));
      this.settleReady(this.error);
    } finally {
      // download() reports its own end.
      if (!downloading) this.onFinished(this);
    }
  }

  private async download(): Promise<void> {
    try {
      const res = await this.upstream.fetch('GET', this.name, `/v2/${this.name}/blobs/${this.digest}`);
      if (res.statusCode === 404) {
        await res.body.dump();
        throw new RegistryError('BLOB_UNKNOWN', `blob ${this.digest} is not in ${this.name} upstream`, { detail: { digest: this.digest } });
      }
      if (res.statusCode !== 200) {
        await res.body.dump();
        throw new RegistryError('UNKNOWN', `upstream answered ${res.statusCode} for blob ${this.digest}`, { status: 502 });
      }
      const len = Number(res.headers['content-length']);
      this.size = Number.isFinite(len) && len >= 0 ? len : undefined;
      this.fh = await open(this.tmp, 'w+', 0o644);
      this.settleReady();
      const digester = new Digester(parseDigest(this.digest).algorithm);
      // Chunks are gathered into ~1 MiB writes (one syscall per network chunk halves throughput),
      // and the network is read on while the previous batch is written: at most one write in
      // flight, so memory stays at two batches.
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      let writing: Promise<void> = Promise.resolve();
      const writeBatch = async (data: Buffer) => {
        let off = 0;
        while (off < data.length) {
          const { bytesWritten } = await this.fh!.write(data, off, data.length - off, this.written);
          off += bytesWritten;
          this.written += bytesWritten;
        }
        this.wake();
      };
      const flush = async () => {
        await writing;
        if (pendingBytes === 0) return;
        const data = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
        pending = [];
        pendingBytes = 0;
        writing = writeBatch(data);
        // A failed write surfaces at the next flush; keep it from being an unhandled rejection meanwhile.
        writing.catch(() => undefined);
      };
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        digester.update(chunk);
        pending.push(chunk);
        pendingBytes += chunk.length;
        if (pendingBytes >= WRITE_BATCH) await flush();
      }
      await flush();
      await writing;
      if (this.size !== undefined && this.written !== this.size) throw new Error(`upstream sent ${this.written} of ${this.size} bytes`);
      const got = digester.digest();
      if (got !== this.digest) throw new Error(`upstream content hashes to ${got}, not ${this.digest}`);
      this.size = this.written;
      this.verified = true;
      this.wake();
      await this.fh.sync();
      // The file is renamed into the store while readers still hold it open: same inode, same bytes.
      await this.store.commitLocalFile(this.name, this.tmp, this.digest, this.written);
      this.done = true;
    } catch (e) {
      this.error = e instanceof Error ? e : new Error(String(e));
      this.settleReady(this.error);
      await unlinkQuietly(this.tmp);
    } finally {
      this.wake();
      this.maybeClose();
      this.onFinished(this);
    }
  }

  private maybeClose(): void {
    if ((this.done || this.error) && this.readers === 0 && this.fh) {
      const fh = this.fh;
      this.fh = undefined;
      void fh.close().catch(() => undefined);
    }
  }

  /**
   * The blob's bytes as they arrive. The last byte is held back until the digest is verified, so a
   * client never receives a complete-looking body of corrupt content; it does not wait for the
   * fsync (a crash then loses the cache entry, not the client's copy). Call after `ready`.
   */
  async *tail(): AsyncGenerator<Buffer> {
    this.readers++;
    try {
      let pos = 0;
      for (;;) {
        const fh = this.fh;
        const limit = this.verified ? this.written : this.size !== undefined ? Math.min(this.written, this.size - 1) : this.written;
        if (pos < limit && fh) {
          const n = Math.min(READ_CHUNK, limit - pos);
          const buf = Buffer.allocUnsafe(n);
          const { bytesRead } = await fh.read(buf, 0, n, pos);
          if (bytesRead === 0) throw new Error('cached blob file shrank while being read');
          pos += bytesRead;
          yield buf.subarray(0, bytesRead);
          continue;
        }
        if (this.verified) return;
        if (this.error) throw this.error;
        await new Promise<void>((resolve) => this.waiters.push(resolve));
      }
    } finally {
      this.readers--;
      this.maybeClose();
    }
  }
}

/** In-flight fetches by repository and digest: the single-flight table. */
export class BlobFetches {
  private readonly inflight = new Map<string, BlobFetch>();
  /** Upstream GETs started, for the logs and the tests (N concurrent misses must make 1). */
  started = 0;

  constructor(
    private readonly store: RegistryStore,
    private readonly upstream: Upstream,
  ) {}

  get(name: string, digest: string): BlobFetch | undefined {
    return this.inflight.get(`${name}@${digest}`);
  }

  /** The running fetch of this blob, or a new one: never two at once. */
  join(name: string, digest: string): BlobFetch {
    const key = `${name}@${digest}`;
    let f = this.inflight.get(key);
    // A finished download lingers only to catch requests racing its end; its blob may since have been evicted.
    if (!f || f.done) {
      this.started++;
      f = new BlobFetch(this.store, this.upstream, name, digest, (done) => {
        // Kept a moment after the end, so a request that looked for the file just before it was
        // committed joins this fetch instead of starting another.
        setTimeout(() => {
          if (this.inflight.get(key) === done) this.inflight.delete(key);
        }, 1000).unref();
      });
      this.inflight.set(key, f);
    }
    return f;
  }

  /** Waits for running downloads to end (the server's shutdown). */
  async idle(): Promise<void> {
    await Promise.all([...this.inflight.values()].map((f) => f.finished));
  }
}
