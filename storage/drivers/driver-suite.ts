// The one suite every blob driver passes (distribution's registry/storage/driver/testsuites is the
// model): storage/drivers/<driver>.test.ts calls defineDriverSuite with a factory of fresh stores.
// Blob contents are deterministic pseudo-random bytes produced on demand, never held whole, and
// compared by digest.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Readable } from 'node:stream';
import { Digester, digestOf } from '../../oci/digest.js';
import { RegistryError } from '../../oci/errors.js';
import type { BlobDriver, CommitGuard, UploadState } from '../blob-driver.js';

export interface DriverHarness {
  driver: BlobDriver;
  /** A fresh driver instance over the same store, as another replica has. */
  replica(): Promise<BlobDriver>;
  /** Closes the drivers and removes the store. */
  cleanup(): Promise<void>;
}

export interface DriverSuiteOptions {
  /** The driver's part size (the s3 driver's unit of multipart uploads); 5 MiB by default. */
  partSize?: number;
  /** A reason to skip the whole suite (the store is not available here), shown by the runner. */
  skip?: string;
}

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * `length` deterministic pseudo-random bytes (xorshift32 from `seed`), produced on demand in chunks
 * of at most `chunk` (the bytes do not depend on the chunking).
 */
export function* pattern(seed: number, length: number, chunk = 64 * KiB): Generator<Uint8Array> {
  const BLOCK = 64 * KiB;
  let x = seed >>> 0 || 1;
  for (let at = 0; at < length; at += BLOCK) {
    const n = Math.min(BLOCK, length - at);
    const words = new Uint32Array(Math.ceil(n / 4));
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      words[i] = x >>> 0;
    }
    const block = new Uint8Array(words.buffer, 0, n);
    for (let off = 0; off < n; off += chunk) yield block.subarray(off, Math.min(n, off + chunk));
  }
}

/** `pattern` as a ByteSource (an async iterable, as a request body is). */
export async function* bytes(seed: number, length: number, chunk = 64 * KiB): AsyncGenerator<Uint8Array> {
  yield* pattern(seed, length, chunk);
}

function digestOfPattern(seed: number, length: number): string {
  const d = new Digester('sha256');
  for (const c of pattern(seed, length)) d.update(c);
  return d.digest();
}

async function digestOfStream(stream: Readable): Promise<{ digest: string; size: number }> {
  const d = new Digester('sha256');
  for await (const c of stream) d.update(c as Uint8Array);
  return { size: d.size, digest: d.digest() };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** A source that yields `good` bytes of `seed` and then fails, as a client connection cut off. */
async function* cutOff(seed: number, good: number): AsyncGenerator<Uint8Array> {
  yield* pattern(seed, good);
  throw new Error('connection reset by the test');
}

function isRegistryError(code: string, status?: number) {
  return (e: unknown): boolean => e instanceof RegistryError && e.code === code && (status === undefined || e.status === status);
}

/** Appends one piece to a session, checking that onChunk saw exactly its bytes. */
async function append(driver: BlobDriver, id: string, state: UploadState, offset: number, seed: number, length: number): Promise<UploadState> {
  const seen = new Digester('sha256');
  const r = await driver.appendUpload(id, state, bytes(seed, length, 48 * KiB + 7), { offset, limit: Number.MAX_SAFE_INTEGER, onChunk: (c) => seen.update(c) });
  assert.equal(r.received, length);
  assert.equal(seen.size, length);
  assert.equal(seen.digest(), digestOfPattern(seed, length), 'onChunk saw the appended bytes in order');
  return r.state;
}

/** The digest of the concatenation of pattern pieces. */
function digestOfPieces(pieces: Array<[seed: number, length: number]>): string {
  const d = new Digester('sha256');
  for (const [seed, length] of pieces) for (const c of pattern(seed, length, 48 * KiB + 7)) d.update(c);
  return d.digest();
}

function uuid(): string {
  return globalThis.crypto.randomUUID();
}

/** A guard that records its calls and checks that the blob is invisible until `place` runs. */
function recordingGuard(get: () => BlobDriver) {
  const calls: Array<{ digest: string; size: number; visibleBefore: boolean; visibleAfter: boolean }> = [];
  const guard: CommitGuard = {
    async committing(digest, size, place) {
      const before = await get().stat(digest);
      await place();
      const afterPlace = await get().stat(digest);
      calls.push({ digest, size, visibleBefore: before !== undefined, visibleAfter: afterPlace === size });
    },
  };
  return { guard, calls };
}

export function defineDriverSuite(name: string, makeDriver: (opts: { guard?: CommitGuard }) => Promise<DriverHarness>, opts: DriverSuiteOptions = {}): void {
  const partSize = opts.partSize ?? 5 * MiB;
  describe(`blob driver suite: ${name}`, { skip: opts.skip ?? false }, () => {
    let h: DriverHarness;
    let d: BlobDriver;
    before(async () => {
      h = await makeDriver({});
      d = h.driver;
      await d.open();
    });
    after(async () => {
      await h?.cleanup();
    });

    async function put(seed: number, length: number): Promise<string> {
      const digest = digestOfPattern(seed, length);
      assert.deepEqual(await d.put(bytes(seed, length), { digest, size: length }), { digest, size: length });
      return digest;
    }

    it('put, then stat, read and list', async () => {
      const a = await put(1, 1000);
      const b = await put(2, 70 * KiB);
      assert.equal(await d.stat(a), 1000);
      assert.equal(await d.stat(b), 70 * KiB);
      assert.deepEqual(await digestOfStream(await d.read(b)), { digest: b, size: 70 * KiB });
      const listed = await collect(d.list());
      assert.ok(listed.includes(a) && listed.includes(b), 'list shows both');
      assert.equal(new Set(listed).size, listed.length, 'list shows each digest once');
    });

    it('range reads', async () => {
      const content = Buffer.concat([...pattern(3, 10_000)]);
      const digest = await put(3, 10_000);
      for (const [start, end] of [[0, 0], [0, 9_999], [1, 100], [5_000, 9_999], [9_999, 9_999]] as const) {
        const got = Buffer.concat(await collect((await d.read(digest, { start, end })) as AsyncIterable<Buffer>));
        assert.ok(got.equals(content.subarray(start, end + 1)), `bytes ${start}-${end}`);
      }
    });

    it('an absent blob: stat undefined, read rejects with ENOENT, delete is quiet', async () => {
      const absent = digestOf('never stored');
      assert.equal(await d.stat(absent), undefined);
      await assert.rejects(d.read(absent), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
      await d.delete(absent);
    });

    it('delete removes a blob from stat, read and list', async () => {
      const digest = await put(4, 2000);
      await d.delete(digest);
      assert.equal(await d.stat(digest), undefined);
      await assert.rejects(d.read(digest), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
      assert.ok(!(await collect(d.list())).includes(digest));
    });

    it('a digest mismatch is DIGEST_INVALID and leaves nothing', async () => {
      const wrong = digestOfPattern(5, 1000);
      await assert.rejects(d.put(bytes(6, 1000), { digest: wrong, size: 1000 }), isRegistryError('DIGEST_INVALID'));
      assert.equal(await d.stat(wrong), undefined);
      assert.ok(!(await collect(d.list())).includes(wrong));
    });

    it('a size mismatch is SIZE_INVALID and leaves nothing', async () => {
      const digest = digestOfPattern(7, 1000);
      await assert.rejects(d.put(bytes(7, 1000), { digest, size: 999 }), isRegistryError('SIZE_INVALID'));
      await assert.rejects(d.put(bytes(7, 1000), { digest, size: 1001 }), isRegistryError('SIZE_INVALID'));
      assert.equal(await d.stat(digest), undefined);
      assert.ok(!(await collect(d.list())).includes(digest));
    });

    it('over the limit is SIZE_INVALID 413 and leaves nothing', async () => {
      const digest = digestOfPattern(8, partSize + 10);
      await assert.rejects(d.put(bytes(8, partSize + 10), { digest, limit: partSize }), isRegistryError('SIZE_INVALID', 413));
      assert.equal(await d.stat(digest), undefined);
    });

    it('putting a stored digest again is idempotent', async () => {
      const digest = await put(9, 3000);
      await put(9, 3000);
      assert.equal(await d.stat(digest), 3000);
      assert.deepEqual(await digestOfStream(await d.read(digest)), { digest, size: 3000 });
      assert.equal((await collect(d.list())).filter((x) => x === digest).length, 1);
    });

    it('a blob of 0 bytes', async () => {
      const digest = await put(10, 0);
      assert.equal(await d.stat(digest), 0);
      assert.deepEqual(await digestOfStream(await d.read(digest)), { digest, size: 0 });
    });

    it('a blob of 3 parts + 1 byte, streamed from a generator, reads back identical', async () => {
      const size = 3 * partSize + 1;
      const digest = await put(11, size);
      assert.equal(await d.stat(digest), size);
      assert.deepEqual(await digestOfStream(await d.read(digest)), { digest, size });
      const tail = Buffer.concat(await collect((await d.read(digest, { start: size - 2, end: size - 1 })) as AsyncIterable<Buffer>));
      assert.equal(tail.length, 2);
    });

    it('a digest mismatch on a multi-part blob leaves nothing', async () => {
      const wrong = digestOfPattern(12, 2 * partSize + 5);
      await assert.rejects(d.put(bytes(13, 2 * partSize + 5), { digest: wrong }), isRegistryError('DIGEST_INVALID'));
      assert.equal(await d.stat(wrong), undefined);
      assert.ok(!(await collect(d.list())).includes(wrong));
    });

    it('the commit guard runs once per put, and the blob is invisible until place', async () => {
      let g!: DriverHarness;
      const { guard, calls } = recordingGuard(() => g.driver);
      g = await makeDriver({ guard });
      try {
        await g.driver.open();
        const small = digestOfPattern(14, 100);
        const large = digestOfPattern(15, 2 * partSize + 3);
        await g.driver.put(bytes(14, 100), { digest: small });
        await g.driver.put(bytes(15, 2 * partSize + 3), { digest: large });
        assert.deepEqual(calls, [
          { digest: small, size: 100, visibleBefore: false, visibleAfter: true },
          { digest: large, size: 2 * partSize + 3, visibleBefore: false, visibleAfter: true },
        ]);
        // A stored digest: the commit is recorded again (GC's grace period), nothing else changes.
        await g.driver.put(bytes(14, 100), { digest: small });
        assert.equal(calls.length, 3);
        assert.deepEqual(calls[2], { digest: small, size: 100, visibleBefore: true, visibleAfter: true });
        // The caller holding the guard: not called.
        const held = digestOfPattern(16, 10);
        await g.driver.put(bytes(16, 10), { digest: held, guardHeld: true });
        assert.equal(calls.length, 3);
        assert.equal(await g.driver.stat(held), 10);
        // A failed put never reaches the guard.
        await assert.rejects(g.driver.put(bytes(17, 10), { digest: small }), isRegistryError('DIGEST_INVALID'));
        assert.equal(calls.length, 3);
        // Uploads commit through the guard too.
        const id = uuid();
        let state = await g.driver.startUpload(id);
        state = await append(g.driver, id, state, 0, 18, partSize + 9);
        const uploaded = digestOfPattern(18, partSize + 9);
        await g.driver.finishUpload(id, state, partSize + 9, uploaded);
        assert.deepEqual(calls[3], { digest: uploaded, size: partSize + 9, visibleBefore: false, visibleAfter: true });
        assert.equal(calls.length, 4);
        // afterCommit runs inside the guard, after the blob is visible, with its size: once per
        // commit, also when the digest was already stored and when the caller holds the guard.
        const seen: Array<{ size: number; inGuard: boolean; visible: boolean }> = [];
        let inGuard = false;
        const hooked: CommitGuard = {
          async committing(_d, _s, place) {
            inGuard = true;
            try {
              await place();
            } finally {
              inGuard = false;
            }
          },
        };
        const h = await makeDriver({ guard: hooked });
        try {
          await h.driver.open();
          const hook = (digest: string) => async (size: number) => {
            seen.push({ size, inGuard, visible: (await h.driver.stat(digest)) === size });
          };
          const big = digestOfPattern(21, 2 * partSize + 5);
          await h.driver.put(bytes(21, 2 * partSize + 5), { digest: big, afterCommit: hook(big) });
          await h.driver.put(bytes(21, 2 * partSize + 5), { digest: big, afterCommit: hook(big) });
          const tiny = digestOfPattern(22, 7);
          await h.driver.put(bytes(22, 7), { digest: tiny, guardHeld: true, afterCommit: hook(tiny) });
          const hid = uuid();
          let hs = await h.driver.startUpload(hid);
          hs = await append(h.driver, hid, hs, 0, 23, partSize + 1);
          const up = digestOfPattern(23, partSize + 1);
          await h.driver.finishUpload(hid, hs, partSize + 1, up, { afterCommit: hook(up) });
          await assert.rejects(h.driver.put(bytes(24, 10), { digest: big, afterCommit: hook(big) }), isRegistryError('DIGEST_INVALID'));
          assert.deepEqual(seen, [
            { size: 2 * partSize + 5, inGuard: true, visible: true },
            { size: 2 * partSize + 5, inGuard: true, visible: true },
            { size: 7, inGuard: false, visible: true },
            { size: partSize + 1, inGuard: true, visible: true },
          ]);
        } finally {
          await h.cleanup();
        }
      } finally {
        await g.cleanup();
      }
    });

    it('a guard that refuses leaves nothing', async () => {
      const refusing: CommitGuard = {
        async committing() {
          throw new Error('refused by the test');
        },
      };
      const g = await makeDriver({ guard: refusing });
      try {
        await g.driver.open();
        for (const size of [100, 2 * partSize + 1]) {
          const digest = digestOfPattern(19, size);
          await assert.rejects(g.driver.put(bytes(19, size), { digest }), /refused by the test/);
          assert.equal(await g.driver.stat(digest), undefined);
          assert.deepEqual(await collect(g.driver.list()), []);
        }
      } finally {
        await g.cleanup();
      }
    });

    it('an upload in appends of odd sizes: onChunk sees each, finish gives the blob', async () => {
      const pieces: Array<[number, number]> = [
        [20, 1],
        [21, 100 * KiB],
        [22, 7 * MiB],
        [23, 3],
        [24, partSize - 5],
        [25, 2 * partSize + 17],
        [26, 1],
      ];
      const id = uuid();
      let state = await d.startUpload(id);
      let offset = 0;
      for (const [seed, length] of pieces) {
        state = JSON.parse(JSON.stringify(await append(d, id, state, offset, seed, length))) as UploadState; // as stored by the caller
        offset += length;
      }
      const digest = digestOfPieces(pieces);
      await d.finishUpload(id, state, offset, digest);
      assert.equal(await d.stat(digest), offset);
      assert.deepEqual(await digestOfStream(await d.read(digest)), { digest, size: offset });
      assert.ok(!(await collect(d.listUploads())).some((u) => u.id === id), 'the session data is gone');
    });

    it('an append cut off midway is replaced by the next append at the same offset', async () => {
      const id = uuid();
      let state = await d.startUpload(id);
      state = await append(d, id, state, 0, 30, 3);
      const seen = new Digester('sha256');
      await assert.rejects(
        d.appendUpload(id, state, cutOff(31, partSize + 1000), { offset: 3, limit: Number.MAX_SAFE_INTEGER, onChunk: (c) => seen.update(c) }),
        /connection reset by the test/,
      );
      assert.ok(seen.size > 0, 'the cut-off append passed bytes to onChunk');
      state = await append(d, id, state, 3, 32, partSize + 5000);
      state = await append(d, id, state, 3 + partSize + 5000, 33, 10);
      const size = 3 + partSize + 5000 + 10;
      const digest = digestOfPieces([
        [30, 3],
        [32, partSize + 5000],
        [33, 10],
      ]);
      await d.finishUpload(id, state, size, digest);
      assert.deepEqual(await digestOfStream(await d.read(digest)), { digest, size });
    });

    it('another driver instance continues an upload from the state alone', async () => {
      const id = uuid();
      let state = await d.startUpload(id);
      state = await append(d, id, state, 0, 40, partSize + 123);
      const other = await h.replica();
      await other.open();
      state = await append(other, id, JSON.parse(JSON.stringify(state)) as UploadState, partSize + 123, 41, 77);
      const third = await h.replica();
      await third.open();
      const size = partSize + 123 + 77;
      const digest = digestOfPieces([
        [40, partSize + 123],
        [41, 77],
      ]);
      await third.finishUpload(id, JSON.parse(JSON.stringify(state)) as UploadState, size, digest);
      assert.deepEqual(await digestOfStream(await d.read(digest)), { digest, size });
    });

    it('finishing sessions of 0 bytes, less than a part, exactly one and two parts', async () => {
      for (const [seed, size] of [
        [50, 0],
        [51, 10],
        [52, partSize],
        [53, 2 * partSize],
      ] as const) {
        const id = uuid();
        let state = await d.startUpload(id);
        if (size > 0) state = await append(d, id, state, 0, seed, size);
        const digest = digestOfPattern(seed, size);
        await d.finishUpload(id, state, size, digest);
        assert.deepEqual(await digestOfStream(await d.read(digest)), { digest, size }, `a session of ${size} bytes`);
        assert.ok(!(await collect(d.listUploads())).some((u) => u.id === id));
      }
    });

    it('finishing a session whose digest is already stored keeps the blob and removes the session', async () => {
      const digest = await put(54, partSize + 1);
      const id = uuid();
      let state = await d.startUpload(id);
      state = await append(d, id, state, 0, 54, partSize + 1);
      await d.finishUpload(id, state, partSize + 1, digest);
      assert.deepEqual(await digestOfStream(await d.read(digest)), { digest, size: partSize + 1 });
      assert.ok(!(await collect(d.listUploads())).some((u) => u.id === id));
    });

    it('an append over the limit is SIZE_INVALID 413', async () => {
      const id = uuid();
      const state = await d.startUpload(id);
      await assert.rejects(
        d.appendUpload(id, state, bytes(55, 2000), { offset: 0, limit: 1000, onChunk: () => undefined }),
        isRegistryError('SIZE_INVALID', 413),
      );
      await d.abortUpload(id, state);
    });

    it('abortUpload removes the session and its bytes', async () => {
      const id = uuid();
      let state = await d.startUpload(id);
      state = await append(d, id, state, 0, 60, partSize + 10);
      assert.ok((await collect(d.listUploads())).some((u) => u.id === id));
      await d.abortUpload(id, state);
      assert.ok(!(await collect(d.listUploads())).some((u) => u.id === id));
      await d.abortUpload(id, state); // again: quiet
      await d.abortUpload(uuid(), {}); // a session with no data: quiet
    });

    it('listUploads shows an orphan, and abortUpload with {} removes it', async () => {
      const id = uuid();
      const t0 = Date.now();
      let state = await d.startUpload(id);
      state = await append(d, id, state, 0, 61, 10);
      state = await append(d, id, state, 10, 62, partSize);
      // The session record is lost: only the store knows the data.
      const found = (await collect(d.listUploads())).find((u) => u.id === id);
      assert.ok(found, 'listed');
      assert.ok(found.modified >= t0 - 2000 && found.modified <= Date.now() + 2000, `modified ${found.modified} is about now (${t0})`);
      await d.abortUpload(id, {});
      assert.ok(!(await collect(d.listUploads())).some((u) => u.id === id));
    });

    it('readUpload reads back the first bytes of a session', async (t) => {
      if (!d.readUpload) {
        t.skip(`the ${d.kind} driver has no readUpload`);
        return;
      }
      const id = uuid();
      let state = await d.startUpload(id);
      state = await append(d, id, state, 0, 63, 5000);
      assert.deepEqual(await digestOfStream(await d.readUpload(id, 5000)), { digest: digestOfPattern(63, 5000), size: 5000 });
      assert.equal((await digestOfStream(await d.readUpload(id, 0))).size, 0);
      const first = Buffer.concat(await collect((await d.readUpload(id, 100)) as AsyncIterable<Buffer>));
      assert.ok(first.equals(Buffer.concat([...pattern(63, 5000)]).subarray(0, 100)));
      await d.abortUpload(id, state);
    });
  });
}
