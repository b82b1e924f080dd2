// The one suite every metadata backend passes (storage/registry-metadata.ts). A backend shared by
// many processes also gets a second instance on the same data, standing in for another replica.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RegistryMetadata, ManifestLink } from './registry-metadata.js';
import { NamespaceScheme, QuotaExceededError } from './quota.js';

export interface MetadataSuiteTarget {
  /** A fresh, opened backend with no data. */
  open(): Promise<RegistryMetadata>;
  /** Another instance on the same data (another replica), opened; only for shared backends. */
  openAnother?(): Promise<RegistryMetadata>;
  cleanup(): Promise<void>;
}

const D = (c: string) => `sha256:${c.repeat(64)}`;

function link(refs: string[], subject?: string): ManifestLink {
  return { mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 123, refs, ...(subject ? { subject } : {}) };
}

/** A link as read back, without its push time (checked on its own). */
function bare(l: ManifestLink | undefined): ManifestLink | undefined {
  if (!l) return l;
  const { pushed: _pushed, ...rest } = l;
  return rest;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

export function defineMetadataSuite(name: string, target: MetadataSuiteTarget | { skip: string }): void {
  describe(`metadata suite: ${name}`, 'skip' in target ? { skip: target.skip } : {}, () => {
    if ('skip' in target) {
      it('skipped');
      return;
    }
    let m: RegistryMetadata;
    before(async () => {
      m = await target.open();
    });
    after(async () => {
      await m?.close();
      await target.cleanup();
    });

    it('repositories list in byte order and page with `after`', async () => {
      for (const n of ['b/app', 'a/app', 'a-b/x', 'A/x', 'a/app2']) await m.linkBlob(n, D('1'), 1);
      assert.deepEqual(await m.listRepositories(100), ['A/x', 'a-b/x', 'a/app', 'a/app2', 'b/app']);
      assert.deepEqual(await m.listRepositories(2, 'a-b/x'), ['a/app', 'a/app2']);
      assert.deepEqual(await m.listRepositories(0), []);
      assert.equal(await m.repositoryExists('a/app'), true);
      assert.equal(await m.repositoryExists('a'), false);
    });

    it('a manifest PUT stores the link, its tags, its referrer entry and touches content, at once', async () => {
      const before = Date.now();
      await m.putManifest({ name: 'team/app', digest: D('a'), link: link([D('1'), D('2')]), tags: ['v1', 'latest', 'V1', '1.0'], touched: [{ digest: D('a'), size: 123 }, { digest: D('1'), size: 7 }, { digest: D('1'), size: 7 }] });
      assert.deepEqual(bare(await m.getManifest('team/app', D('a'))), link([D('1'), D('2')]));
      assert.deepEqual(await m.listTags('team/app', 10), ['1.0', 'V1', 'latest', 'v1']);
      assert.deepEqual(await m.listTags('team/app', 2, '1.0'), ['V1', 'latest']);
      assert.equal(await m.getTag('team/app', 'v1'), D('a'));
      assert.equal(await m.getTag('team/app', 'v2'), undefined);
      assert.equal(await m.getTag('team/other', 'v1'), undefined);
      const c = await m.getContent(D('1'));
      assert.ok(c && c.size === 7 && c.touched >= before, 'the referenced blob is touched');
      assert.ok(await m.repositoryExists('team/app'));
      // A tag moves to another manifest.
      await m.putManifest({ name: 'team/app', digest: D('b'), link: link([D('1')]), tags: ['latest'], touched: [] });
      assert.equal(await m.getTag('team/app', 'latest'), D('b'));
    });

    it('deleting a manifest removes every tag pointing at it and its referrer entry, and says which tags', async () => {
      await m.putManifest({ name: 'ref/app', digest: D('c'), link: link([]), tags: ['one'], touched: [] });
      const referrer = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D('d'), size: 50, artifactType: 'application/x-sig', annotations: { k: 'v' } };
      await m.putManifest({ name: 'ref/app', digest: D('d'), link: link([], D('c')), tags: ['sig', 'sig2'], referrer, touched: [] });
      assert.deepEqual(await m.referrers('ref/app', D('c')), [referrer]);
      assert.deepEqual(await m.referrers('ref/app', D('e')), []);
      assert.deepEqual(await m.referrers('team/app', D('c')), []);
      assert.deepEqual((await m.deleteManifest('ref/app', D('d')))?.sort(), ['sig', 'sig2']);
      assert.deepEqual(await m.referrers('ref/app', D('c')), []);
      assert.deepEqual(await m.listTags('ref/app', 10), ['one']);
      assert.equal(await m.deleteManifest('ref/app', D('d')), undefined);
      assert.equal(await m.deleteTag('ref/app', 'one'), true);
      assert.equal(await m.deleteTag('ref/app', 'one'), false);
      assert.ok(await m.getManifest('ref/app', D('c')), 'deleting a tag keeps the manifest');
    });

    it('blob links: link, read, unlink; a link touches the content record', async () => {
      const t0 = Date.now();
      await m.linkBlob('blob/app', D('5'), 5000);
      assert.deepEqual(await m.getBlobLink('blob/app', D('5')), { size: 5000 });
      assert.equal(await m.getBlobLink('blob/other', D('5')), undefined);
      const c = await m.getContent(D('5'));
      assert.ok(c && c.size === 5000 && c.touched >= t0);
      assert.equal(await m.unlinkBlob('blob/app', D('5')), true);
      assert.equal(await m.unlinkBlob('blob/app', D('5')), false);
      assert.equal(await m.getBlobLink('blob/app', D('5')), undefined);
    });

    it('referenced digests: blob links, manifests and what they reference', async () => {
      await m.linkBlob('gc/app', D('6'), 6);
      await m.putManifest({ name: 'gc/app', digest: D('7'), link: link([D('8'), D('9')]), tags: [], touched: [] });
      const live = await m.referencedDigests();
      for (const d of [D('6'), D('7'), D('8'), D('9')]) assert.ok(live.has(d), d);
      assert.ok(!live.has(D('f')));
    });

    it('full listings of a repository (fsck): tags with digests, manifest links, blob links, referrer entries, past a page', async () => {
      // More tags than one page of any backend's listing (PostgreSQL reads 1000 rows at a time).
      const tags = Array.from({ length: 1234 }, (_, i) => `t${String(i).padStart(5, '0')}`);
      await m.putManifest({ name: 'fsck/app', digest: D('a'), link: link([D('1')]), tags: tags.slice(0, 1000), touched: [] });
      await m.putManifest({ name: 'fsck/app', digest: D('b'), link: link([D('2')], D('a')), tags: tags.slice(1000), touched: [], referrer: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D('b'), size: 123, artifactType: 'application/x-sig' } });
      await m.putManifest({ name: 'fsck/app', digest: D('c'), link: link([], D('a')), tags: [], touched: [], referrer: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D('c'), size: 123 } });
      await m.putManifest({ name: 'fsck/app2', digest: D('d'), link: link([]), tags: ['other'], touched: [] });
      await m.linkBlob('fsck/app', D('2'), 2);
      await m.linkBlob('fsck/app', D('1'), 1);
      await m.linkBlob('fsck/app2', D('3'), 3);

      const tagEntries = await collect(m.tagEntries('fsck/app'));
      assert.equal(tagEntries.length, 1234);
      assert.deepEqual(tagEntries.map((t) => t.tag), tags, 'every tag once, in byte order');
      assert.ok(tagEntries.every((t, i) => t.digest === (i < 1000 ? D('a') : D('b'))));
      assert.deepEqual((await collect(m.manifestEntries('fsck/app'))).map((e) => ({ digest: e.digest, link: bare(e.link) })), [
        { digest: D('a'), link: link([D('1')]) },
        { digest: D('b'), link: link([D('2')], D('a')) },
        { digest: D('c'), link: link([], D('a')) },
      ]);
      assert.deepEqual(await collect(m.blobLinks('fsck/app')), [{ digest: D('1'), size: 1 }, { digest: D('2'), size: 2 }]);
      assert.deepEqual((await collect(m.referrerEntries('fsck/app'))).map((r) => [r.subject, r.digest, r.descriptor.digest]), [
        [D('a'), D('b'), D('b')],
        [D('a'), D('c'), D('c')],
      ]);
      assert.deepEqual((await collect(m.tagEntries('fsck/app2'))).map((t) => ({ tag: t.tag, digest: t.digest })), [{ tag: 'other', digest: D('d') }], 'one repository only');
      assert.deepEqual(await collect(m.tagEntries('fsck/none')), []);
      assert.equal(await m.deleteReferrer('fsck/app', D('a'), D('c')), true);
      assert.equal(await m.deleteReferrer('fsck/app', D('a'), D('c')), false);
      assert.deepEqual((await m.referrers('fsck/app', D('a'))).map((d) => d.digest), [D('b')]);
      assert.ok(await m.getManifest('fsck/app', D('c')), 'the manifest stays');
    });

    it('push times: each tag and manifest records its last PUT; a tag pushed again moves; compare-and-delete of a tag', async () => {
      const t0 = Date.now();
      await m.putManifest({ name: 'time/app', digest: D('1'), link: link([]), tags: ['a', 'b'], touched: [] });
      const t1 = Date.now();
      const first = await collect(m.tagEntries('time/app'));
      assert.equal(first.length, 2);
      for (const t of first) assert.ok(t.pushed !== undefined && t.pushed >= t0 && t.pushed <= t1, `${t.tag} pushed ${t.pushed}`);
      const m1 = await m.getManifest('time/app', D('1'));
      assert.ok(m1?.pushed !== undefined && m1.pushed >= t0 && m1.pushed <= t1);
      await sleep(5);
      await m.putManifest({ name: 'time/app', digest: D('2'), link: link([]), tags: ['b'], touched: [] });
      const again = new Map((await collect(m.tagEntries('time/app'))).map((t) => [t.tag, t]));
      assert.equal(again.get('b')?.digest, D('2'));
      assert.ok(again.get('b')!.pushed! > again.get('a')!.pushed!, 'the tag pushed again is newer');
      assert.ok((await collect(m.manifestEntries('time/app'))).every((e) => e.link.pushed !== undefined));
      // Compare-and-delete: refused when the tag moved or was pushed again since it was read.
      const a = again.get('a')!;
      assert.equal(await m.deleteTag('time/app', 'a', { digest: D('2'), pushed: a.pushed! }), false, 'another digest');
      assert.equal(await m.deleteTag('time/app', 'a', { digest: D('1'), pushed: a.pushed! - 1 }), false, 'pushed again since');
      assert.equal(await m.getTag('time/app', 'a'), D('1'));
      assert.equal(await m.deleteTag('time/app', 'a', { digest: D('1'), pushed: a.pushed! }), true);
      assert.equal(await m.getTag('time/app', 'a'), undefined);
      assert.deepEqual((await collect(m.tagEntries('time/app'))).map((t) => t.tag), ['b']);
    });

    it('referencedBy: a manifest of the repository that references the digest', async () => {
      await m.putManifest({ name: 'refby/app', digest: D('1'), link: link([D('a'), D('b')]), tags: [], touched: [] });
      await m.putManifest({ name: 'refby/other', digest: D('2'), link: link([D('c')]), tags: [], touched: [] });
      assert.equal(await m.referencedBy('refby/app', D('b')), D('1'));
      assert.equal(await m.referencedBy('refby/app', D('c')), undefined, 'another repository does not count');
      assert.equal(await m.referencedBy('refby/app', D('1')), undefined);
    });

    it('namespace usage: each digest counted once per namespace, links and manifests; unlinks and deletes decrease it', async () => {
      const used = async (ns: string) => (await m.namespaceUsage(ns)).usedBytes;
      await m.linkBlob('nsa/one', D('1'), 1000);
      await m.linkBlob('nsa/two', D('1'), 1000);
      await m.linkBlob('nsa/two/deep', D('1'), 1000);
      await m.linkBlob('nsa/one', D('1'), 1000);
      assert.equal(await used('nsa'), 1000, 'one blob in three repositories of the namespace: counted once');
      await m.linkBlob('nsb', D('1'), 1000);
      assert.equal(await used('nsb'), 1000, 'another namespace counts it too');
      await m.linkBlob('nsa/one', D('2'), 20);
      await m.putManifest({ name: 'nsa/one', digest: D('3'), link: { ...link([D('1'), D('2')]), size: 300 }, tags: ['v1'], touched: [] });
      await m.putManifest({ name: 'nsa/one', digest: D('3'), link: { ...link([D('1'), D('2')]), size: 300 }, tags: ['v2'], touched: [] });
      assert.equal(await used('nsa'), 1320, 'a manifest counts its own bytes, once');
      assert.deepEqual(await m.namespaceUsage('nsa', D('2')), { usedBytes: 1320, holds: true });
      assert.equal((await m.namespaceUsage('nsa', D('9'))).holds, false);
      assert.equal(await m.unlinkBlob('nsa/one', D('1')), true);
      assert.equal(await m.unlinkBlob('nsa/two', D('1')), true);
      assert.equal(await used('nsa'), 1320, 'still linked in nsa/two/deep');
      assert.equal(await m.unlinkBlob('nsa/two/deep', D('1')), true);
      assert.equal(await used('nsa'), 320);
      assert.deepEqual((await m.deleteManifest('nsa/one', D('3')))?.sort(), ['v1', 'v2']);
      assert.equal(await used('nsa'), 20);
      const listed = new Map((await m.listNamespaceUsage()).map((c) => [c.namespace, c.usedBytes]));
      assert.equal(listed.get('nsa'), 20);
      assert.equal(listed.get('nsb'), 1000);
      assert.deepEqual(await m.recountUsage(false), [], 'the counters agree with the links');
    });

    it('quotas: a link or manifest that would exceed the namespace quota is refused with nothing written', async () => {
      await m.linkBlob('q/app', D('1'), 600);
      await assert.rejects(m.linkBlob('q/app', D('2'), 500, { quota: 1000 }), (e: unknown) => {
        assert.ok(e instanceof QuotaExceededError);
        assert.equal(e.code, 'DENIED');
        assert.match(e.message, /quota exceeded for namespace "q": 1000 bytes \(used 600 B \+ 500 B\)/);
        return true;
      });
      assert.equal(await m.getBlobLink('q/app', D('2')), undefined, 'not linked');
      assert.equal(await m.repositoryExists('q/app'), true);
      assert.equal((await m.namespaceUsage('q')).usedBytes, 600, 'usage unchanged');
      await assert.rejects(m.linkBlob('q/new', D('2'), 500, { quota: 1000 }), QuotaExceededError);
      assert.equal(await m.repositoryExists('q/new'), false, 'a refused first push creates no repository');
      await m.linkBlob('q/other', D('1'), 600, { quota: 600 });
      assert.ok(await m.getBlobLink('q/other', D('1')), 'content the namespace holds already costs nothing');
      await m.linkBlob('q/app', D('2'), 400, { quota: 1000 });
      assert.equal((await m.namespaceUsage('q')).usedBytes, 1000, 'exactly at the quota is allowed');
      await assert.rejects(m.putManifest({ name: 'q/app', digest: D('3'), link: { ...link([D('1')]), size: 10 }, tags: ['v1'], touched: [], quota: 1000 }), QuotaExceededError);
      assert.equal(await m.getManifest('q/app', D('3')), undefined);
      assert.equal(await m.getTag('q/app', 'v1'), undefined);
      assert.equal((await m.namespaceUsage('q')).usedBytes, 1000);
    });

    it('recount: another namespace grouping shows as drift; a repair rewrites the counters to match', async () => {
      await m.linkBlob('grp/x/cache', D('1'), 100);
      await m.linkBlob('grp/y/cache', D('2'), 10);
      await m.linkBlob('grp/x/app', D('3'), 1);
      assert.equal((await m.namespaceUsage('grp')).usedBytes, 111);
      m.useNamespaces(new NamespaceScheme(['grp/*/cache']));
      const drift = await m.recountUsage(false);
      const byNs = new Map(drift.map((d) => [d.namespace, d]));
      assert.deepEqual(byNs.get('grp/*/cache'), { namespace: 'grp/*/cache', storedBytes: 0, countedBytes: 110, digests: 2 });
      assert.deepEqual(byNs.get('grp'), { namespace: 'grp', storedBytes: 111, countedBytes: 1, digests: 2 });
      assert.equal((await m.namespaceUsage('grp/*/cache')).usedBytes, 0, 'a check changes nothing');
      assert.equal((await m.recountUsage(true)).length, drift.length);
      assert.deepEqual(await m.recountUsage(false), []);
      assert.equal((await m.namespaceUsage('grp/*/cache')).usedBytes, 110);
      assert.equal((await m.namespaceUsage('grp')).usedBytes, 1);
      await m.linkBlob('grp/z/cache', D('4'), 5);
      assert.equal((await m.namespaceUsage('grp/*/cache')).usedBytes, 115, 'new links follow the new grouping');
      m.useNamespaces(new NamespaceScheme());
      await m.recountUsage(true);
      assert.equal((await m.namespaceUsage('grp')).usedBytes, 116);
    });

    it('content records: touch, read, forget', async () => {
      assert.equal(await m.getContent(D('0')), undefined);
      await m.touchContent(D('0'), 42);
      const c = await m.getContent(D('0'));
      assert.equal(c?.size, 42);
      await m.forgetContent(D('0'));
      assert.equal(await m.getContent(D('0')), undefined);
    });

    it('mark points: a content record written after the point says so, one written before does not', async () => {
      await m.touchContent(D('3'), 3);
      await m.linkBlob('mark/app', D('4'), 4);
      const point = await m.markPoint();
      assert.equal((await m.getContent(D('3'), point))?.afterMark, false);
      assert.equal((await m.getContent(D('4'), point))?.afterMark, false);
      await m.touchContent(D('3'), 3);
      await m.putManifest({ name: 'mark/app', digest: D('5'), link: link([D('4')]), tags: [], touched: [{ digest: D('5'), size: 5 }, { digest: D('4'), size: 4 }] });
      assert.equal((await m.getContent(D('3'), point))?.afterMark, true, 'touched after the point');
      assert.equal((await m.getContent(D('4'), point))?.afterMark, true, 'referenced by a manifest after the point');
      assert.equal((await m.getContent(D('5'), point))?.afterMark, true);
      assert.equal((await m.getContent(D('5')))?.afterMark, undefined, 'no point, no answer');
      // A write begun before the point and finished after it counts as after: here, concurrent ones.
      const racing = m.touchContent(D('6'), 6);
      const p2 = await m.markPoint();
      await racing;
      const r6 = await m.getContent(D('6'), p2);
      assert.ok(r6, 'written');
    });

    it('upload sessions: create, read, compare-and-set on the offset, list, delete; driver state and hash kept', async () => {
      const id = '0b7c2f9e-4d5a-4e1b-9c3d-2a1b0c9d8e7f';
      const rec = { name: 'up/app', algorithm: 'sha256' as const, offset: 0, started: '2026-12-06T00:00:00.000Z', updated: '2026-12-06T00:00:00.000Z' };
      await m.createUpload(id, rec);
      assert.deepEqual(await m.getUpload(id), rec);
      const next = { ...rec, offset: 10, updated: '2026-12-06T00:00:01.000Z', driver: { uploadId: 'x', parts: [{ n: 1, etag: '"e"', size: 10 }] }, hash: 'AAEC' };
      assert.equal(await m.updateUpload(id, next, 5), false, 'a stale offset is refused');
      assert.deepEqual(await m.getUpload(id), rec);
      assert.equal(await m.updateUpload(id, next, 0), true);
      assert.deepEqual(await m.getUpload(id), next);
      assert.ok((await collect(m.listUploads())).some(([i, r]) => i === id && r.offset === 10));
      await m.deleteUpload(id);
      assert.equal(await m.getUpload(id), undefined);
      assert.equal(await m.updateUpload(id, next, 10), false, 'a deleted session is not revived');
    });

    it('exclusive: one holder per digest at a time, others run in parallel, nesting in sorted order works', async () => {
      const events: string[] = [];
      const hold = (digest: string, tag: string, ms: number) =>
        m.exclusive(digest, async () => {
          events.push(`${tag}+`);
          await sleep(ms);
          events.push(`${tag}-`);
        });
      await Promise.all([hold(D('a'), 'x', 80), hold(D('a'), 'y', 10)]);
      assert.deepEqual(events, ['x+', 'x-', 'y+', 'y-']);
      events.length = 0;
      // x holds digest a until y, on digest b, has run (or 5 s pass): no waiting on each other.
      let yDone!: () => void;
      const yRan = new Promise<void>((r) => (yDone = r));
      await Promise.all([
        m.exclusive(D('a'), async () => {
          events.push('x+');
          await Promise.race([yRan, sleep(5000)]);
          events.push('x-');
        }),
        (async () => {
          await sleep(20);
          await hold(D('b'), 'y', 1);
          yDone();
        })(),
      ]);
      assert.deepEqual(events, ['x+', 'y+', 'y-', 'x-'], 'different digests do not wait for each other');
      const inner = await m.exclusive(D('a'), () => m.exclusive(D('b'), async () => {
        await m.touchContent(D('b'), 1);
        return 'nested';
      }));
      assert.equal(inner, 'nested');
      assert.equal((await m.getContent(D('b')))?.size, 1, 'work done under the guard is kept');
      await assert.rejects(m.exclusive(D('c'), async () => {
        throw new Error('boom');
      }), /boom/);
      assert.equal(await m.exclusive(D('c'), async () => 'free again'), 'free again');
    });

    it('mirror records: tag checks, last use, unused since, forget', async () => {
      assert.equal(await m.getMirrorTagChecked('mir/app', 'latest'), undefined);
      await m.setMirrorTagChecked('mir/app', 'latest', 1000);
      await m.setMirrorTagChecked('mir/app', 'latest', 2000);
      assert.equal(await m.getMirrorTagChecked('mir/app', 'latest'), 2000);
      await m.touchMirrorAccess({ name: 'mir/app', digest: D('1'), kind: 'blob' }, 100);
      await m.touchMirrorAccess({ name: 'mir/app', digest: D('2'), kind: 'manifest' }, 5000);
      await m.touchMirrorAccess({ name: 'mir/other', digest: D('1'), kind: 'blob' }, 200);
      const unused = (await collect(m.mirrorUnusedSince(1000))).sort((a, b) => a.name.localeCompare(b.name));
      assert.deepEqual(unused, [
        { name: 'mir/app', digest: D('1'), kind: 'blob' },
        { name: 'mir/other', digest: D('1'), kind: 'blob' },
      ]);
      await m.touchMirrorAccess({ name: 'mir/app', digest: D('1'), kind: 'blob' }, 6000);
      await m.forgetMirrorAccess('mir/other', D('1'));
      assert.deepEqual(await collect(m.mirrorUnusedSince(1000)), []);
    });

    it('search index: names containing a term, in byte order, paged by after and offset, counted; LIKE wildcards are plain characters', async () => {
      for (const n of ['zq/beta', 'zq/alpha', 'x/zq-gamma', 'zq/a_b', 'zq/axb']) await m.linkBlob(n, D('1'), 1);
      assert.deepEqual(await m.searchRepositories('zq', { limit: 100 }), ['x/zq-gamma', 'zq/a_b', 'zq/alpha', 'zq/axb', 'zq/beta']);
      assert.equal(await m.countRepositories('zq'), 5);
      assert.deepEqual(await m.searchRepositories('zq', { limit: 2 }), ['x/zq-gamma', 'zq/a_b']);
      assert.deepEqual(await m.searchRepositories('zq', { limit: 2, after: 'zq/a_b' }), ['zq/alpha', 'zq/axb']);
      assert.deepEqual(await m.searchRepositories('zq', { limit: 2, offset: 3 }), ['zq/axb', 'zq/beta']);
      assert.deepEqual(await m.searchRepositories('zq', { limit: 0 }), []);
      assert.deepEqual(await m.searchRepositories('a_b', { limit: 10 }), ['zq/a_b'], '_ is no wildcard');
      assert.deepEqual(await m.searchRepositories('%', { limit: 10 }), [], '% is no wildcard');
      assert.equal(await m.countRepositories('%'), 0);
      assert.deepEqual(await m.searchRepositories('nothing-has-this', { limit: 10 }), []);
      // Only names under the given prefixes (an ACL's literal heads), paged the same way; _ and % plain there too.
      assert.deepEqual(await m.searchRepositories('zq', { limit: 100, prefixes: ['zq/a'] }), ['zq/a_b', 'zq/alpha', 'zq/axb']);
      assert.deepEqual(await m.searchRepositories('zq', { limit: 100, prefixes: ['x/', 'zq/b'] }), ['x/zq-gamma', 'zq/beta']);
      assert.deepEqual(await m.searchRepositories('zq', { limit: 1, after: 'zq/a_b', prefixes: ['zq/a'] }), ['zq/alpha']);
      assert.deepEqual(await m.searchRepositories('zq', { limit: 100, prefixes: ['zq/a_'] }), ['zq/a_b']);
      assert.deepEqual(await m.searchRepositories('zq', { limit: 100, prefixes: ['zq/%'] }), []);
      assert.deepEqual(await m.searchRepositories('', { limit: 100, prefixes: [] }), []);
      // Every name for the empty term, the same as the catalog.
      const all = await m.listRepositories(1000);
      assert.deepEqual(await m.searchRepositories('', { limit: 1000 }), all);
      assert.equal(await m.countRepositories(''), all.length);
      // A repository created after the index was read is found at once (by a manifest PUT too).
      await m.putManifest({ name: 'zq/delta', digest: D('a'), link: link([]), tags: [], touched: [] });
      assert.deepEqual(await m.searchRepositories('zq/d', { limit: 10 }), ['zq/delta']);
      assert.equal(await m.countRepositories('zq'), 6);
    });

    it('tags newest first: push time recorded by each manifest PUT, paged by cursor, moved and deleted tags follow', async () => {
      const before = Date.now();
      await m.putManifest({ name: 'time/app', digest: D('a'), link: link([]), tags: ['old', 'b', 'a'], touched: [] });
      await sleep(5);
      await m.putManifest({ name: 'time/app', digest: D('b'), link: link([]), tags: ['mid'], touched: [] });
      await sleep(5);
      await m.putManifest({ name: 'time/app', digest: D('c'), link: link([]), tags: ['new'], touched: [] });
      const all = await m.recentTags('time/app', 10);
      assert.deepEqual(all.map((t) => [t.tag, t.digest]), [['new', D('c')], ['mid', D('b')], ['a', D('a')], ['b', D('a')], ['old', D('a')]]);
      assert.ok(all.every((t) => t.pushed >= before && t.pushed <= Date.now()), 'push times are the time of the PUT');
      assert.ok(all[0]!.pushed > all[1]!.pushed && all[1]!.pushed > all[2]!.pushed);
      assert.equal(all[2]!.pushed, all[4]!.pushed, 'tags of one PUT share its time');
      const second = await m.recentTags('time/app', 2, { pushed: all[1]!.pushed, tag: all[1]!.tag });
      assert.deepEqual(second.map((t) => t.tag), ['a', 'b']);
      assert.deepEqual((await m.recentTags('time/app', 10, { pushed: all[3]!.pushed, tag: all[3]!.tag })).map((t) => t.tag), ['old']);
      // A tag pushed again moves to the front with its new manifest, listed once.
      await sleep(5);
      await m.putManifest({ name: 'time/app', digest: D('b'), link: link([]), tags: ['old'], touched: [] });
      assert.deepEqual((await m.recentTags('time/app', 10)).map((t) => [t.tag, t.digest]), [['old', D('b')], ['new', D('c')], ['mid', D('b')], ['a', D('a')], ['b', D('a')]]);
      // Deleting a tag, or the manifest its tags point at, removes them from the listing.
      assert.equal(await m.deleteTag('time/app', 'new'), true);
      assert.deepEqual((await m.deleteManifest('time/app', D('a')))?.sort(), ['a', 'b']);
      assert.deepEqual((await m.recentTags('time/app', 10)).map((t) => t.tag), ['old', 'mid']);
      assert.deepEqual(await m.recentTags('time/app', 0), []);
      const newest = await m.newestTags(['time/app', 'time/none', 'zq/delta']);
      assert.deepEqual([...newest.keys()], ['time/app'], 'names without tags are left out');
      assert.deepEqual({ ...newest.get('time/app'), pushed: 0 }, { tag: 'old', digest: D('b'), pushed: 0 });
      assert.equal(newest.get('time/app')!.pushed, (await m.recentTags('time/app', 1))[0]!.pushed);
      assert.equal((await m.newestTags([])).size, 0);
      assert.deepEqual(await m.recentTags('time/none', 10), []);
    });

    it('runJob: a job already running is not run again', async () => {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const first = m.runJob('gc', async () => {
        await gate;
        return 'ran';
      });
      await sleep(50);
      assert.equal(await m.runJob('gc', async () => 'twice'), undefined);
      assert.equal(await m.runJob('purge', async () => 'other job'), 'other job');
      release();
      assert.equal(await first, 'ran');
      assert.equal(await m.runJob('gc', async () => 'again'), 'again');
    });

    it('webhook queues: per endpoint, in order, oldest first, until removed', async () => {
      const ev = (i: number) => JSON.stringify({ id: `e${i}` });
      await m.enqueueNotifications([{ endpoint: 'hook', event: ev(1) }, { endpoint: 'other', event: ev(2) }, { endpoint: 'hook', event: ev(3) }]);
      await m.enqueueNotifications([]);
      await m.enqueueNotifications([{ endpoint: 'hook', event: ev(4) }]);
      // An endpoint whose name is a prefix of another's sees only its own queue.
      await m.enqueueNotifications([{ endpoint: 'hook2', event: ev(5) }]);
      const all = await m.pendingNotifications('hook', 10);
      assert.deepEqual(all.map((n) => n.event), [ev(1), ev(3), ev(4)]);
      assert.deepEqual(all.map((n) => [n.endpoint, n.attempts, n.notBefore]), [['hook', 0, 0], ['hook', 0, 0], ['hook', 0, 0]]);
      assert.deepEqual((await m.pendingNotifications('hook', 2)).map((n) => n.event), [ev(1), ev(3)]);
      assert.equal(await m.countNotifications('hook'), 3);
      assert.equal(await m.countNotifications('other'), 1);
      assert.equal(await m.countNotifications('nobody'), 0);
      assert.deepEqual(await m.pendingNotifications('nobody', 10), []);

      await m.deferNotification('hook', all[0]!.id, 2, 12345);
      const head = (await m.pendingNotifications('hook', 1))[0]!;
      assert.deepEqual([head.event, head.attempts, head.notBefore], [ev(1), 2, 12345]);
      assert.equal(await m.removeNotification('hook', all[0]!.id), true);
      assert.equal(await m.removeNotification('hook', all[0]!.id), false, 'removed once');
      assert.equal(await m.removeNotification('other', all[1]!.id), false, 'an id of another endpoint');
      await m.deferNotification('hook', all[0]!.id, 3, 1); // gone: nothing comes back
      assert.deepEqual((await m.pendingNotifications('hook', 10)).map((n) => n.event), [ev(3), ev(4)]);
      await m.enqueueNotifications([{ endpoint: 'hook', event: ev(6) }]);
      assert.deepEqual((await m.pendingNotifications('hook', 10)).map((n) => n.event), [ev(3), ev(4), ev(6)], 'a new event goes last');
      for (const n of await m.pendingNotifications('hook', 10)) await m.removeNotification('hook', n.id);
      assert.equal(await m.countNotifications('hook'), 0);
    });

    it('a manifest PUT queues its notifications in the same step', async () => {
      await m.putManifest({ name: 'hooked/app', digest: D('h'), link: link([]), tags: ['v1'], touched: [], notifications: [{ endpoint: 'same', event: '{"action":"push"}' }] });
      assert.deepEqual((await m.pendingNotifications('same', 10)).map((n) => n.event), ['{"action":"push"}']);
    });

    if (target.openAnother) {
      const openAnother = target.openAnother;
      describe('shared by replicas', () => {
        let other: RegistryMetadata;
        before(async () => {
          other = await openAnother();
        });
        after(async () => {
          await other?.close();
        });

        it('is marked shared, so nothing is cached in a process', () => {
          assert.equal(m.shared, true);
        });

        it('search and newest-first tags see what another replica wrote, at once', async () => {
          await other.putManifest({ name: 'replica-b/searched', digest: D('e'), link: link([]), tags: ['x'], touched: [] });
          assert.deepEqual(await m.searchRepositories('replica-b', { limit: 10 }), ['replica-b/searched']);
          assert.deepEqual((await m.recentTags('replica-b/searched', 10)).map((t) => t.tag), ['x']);
        });

        it('a tag moved or deleted through one replica is seen through the other at once', async () => {
          await m.putManifest({ name: 'rep/app', digest: D('1'), link: link([]), tags: ['t'], touched: [] });
          assert.equal(await other.getTag('rep/app', 't'), D('1'));
          await other.putManifest({ name: 'rep/app', digest: D('2'), link: link([]), tags: ['t'], touched: [] });
          assert.equal(await m.getTag('rep/app', 't'), D('2'));
          assert.equal(await other.deleteTag('rep/app', 't'), true);
          assert.equal(await m.getTag('rep/app', 't'), undefined);
        });

        it('exclusive and runJob hold across replicas', async () => {
          const events: string[] = [];
          await Promise.all([
            m.exclusive(D('e'), async () => {
              events.push('a+');
              await sleep(150);
              events.push('a-');
            }),
            (async () => {
              await sleep(30);
              await other.exclusive(D('e'), async () => {
                events.push('b+');
                events.push('b-');
              });
            })(),
          ]);
          assert.deepEqual(events, ['a+', 'a-', 'b+', 'b-']);
          let release!: () => void;
          const gate = new Promise<void>((r) => (release = r));
          const first = m.runJob('gc', () => gate.then(() => 'a'));
          await sleep(50);
          assert.equal(await other.runJob('gc', async () => 'b'), undefined, 'the other replica skips the job');
          release();
          assert.equal(await first, 'a');
          assert.equal(await other.runJob('gc', async () => 'b'), 'b');
        });

        it('a webhook queue is one queue for every replica', async () => {
          await m.enqueueNotifications([{ endpoint: 'shared', event: '1' }]);
          await other.enqueueNotifications([{ endpoint: 'shared', event: '2' }]);
          await m.enqueueNotifications([{ endpoint: 'shared', event: '3' }]);
          const seen = await other.pendingNotifications('shared', 10);
          assert.deepEqual(seen.map((n) => n.event), ['1', '2', '3']);
          assert.equal(await m.removeNotification('shared', seen[0]!.id), true);
          assert.equal(await other.removeNotification('shared', seen[0]!.id), false, 'delivered once');
          assert.equal(await other.countNotifications('shared'), 2);
        });

        it('an upload record changed by one replica is a stale write for the other', async () => {
          const id = '1b7c2f9e-4d5a-4e1b-9c3d-2a1b0c9d8e7f';
          const rec = { name: 'up/app', algorithm: 'sha256' as const, offset: 0, started: 's', updated: 'u' };
          await m.createUpload(id, rec);
          assert.equal(await other.updateUpload(id, { ...rec, offset: 5 }, 0), true);
          assert.equal(await m.updateUpload(id, { ...rec, offset: 9 }, 0), false);
          assert.equal((await m.getUpload(id))?.offset, 5);
        });
      });
    }
  });
}
