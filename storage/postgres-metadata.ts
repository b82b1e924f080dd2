// The metadata in PostgreSQL, shared by every replica: the single source of truth for
// repositories, manifests, tags, referrers, blob links, content records and upload sessions.
// Loaded only with `--metadata postgres://…` (the `postgres` client is not on the default path).
// Each write that changes a repository is one transaction; `exclusive(digest)` is a transaction
// holding an advisory lock on the digest, and every statement made inside it (AsyncLocalStorage
// carries the transaction) belongs to it, so a guarded section never waits for a second pooled
// connection (which could deadlock a full pool).
import { AsyncLocalStorage } from 'node:async_hooks';
import postgres from 'postgres';
import type { Descriptor } from '../oci/manifest.js';
import { StorageConfigError, StorageUnavailableError } from './blob-driver.js';
import { MIGRATIONS } from './postgres-migrations.js';
import { NamespaceScheme, QuotaExceededError } from './quota.js';
import type { BlobLink, BlobLinkEntry, ContentRecord, ManifestEntry, ManifestLink, ManifestWrite, MirrorAccess, NamespaceCount, NotificationWrite, QueuedNotification, ReferrerEntry, RegistryMetadata, SearchPage, TagEntry, TagPush, TagPushCursor, UploadRecord, UsageDrift, MarkPoint } from './registry-metadata.js';

type Sql = postgres.Sql<Record<string, unknown>>;
type Tx = postgres.TransactionSql<Record<string, unknown>>;

/** Rows per statement of the full listings (fsck). */
const LIST_PAGE = 1000;

/** Connection-level failures: the database is down or restarting; the request may be retried. */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT', '57P01', '57P02', '57P03']);

function isConnectionError(e: unknown): boolean {
  return CONNECTION_CODES.has(String((e as { code?: unknown }).code));
}

/** Where the database is, for messages: never the password. */
export function describeDatabase(url: string): string {
  try {
    const u = new URL(url);
    return `postgres://${u.username ? `${decodeURIComponent(u.username)}@` : ''}${u.host}${u.pathname}`;
  } catch {
    return 'the PostgreSQL URL';
  }
}

export class PostgresMetadata implements RegistryMetadata {
  readonly kind = 'postgres' as const;
  readonly shared = true;
  private readonly sql: Sql;
  private readonly tx = new AsyncLocalStorage<Tx>();
  private readonly where: string;
  private scheme = new NamespaceScheme();

  constructor(
    private readonly url: string,
    opts: { maxConnections?: number } = {},
  ) {
    this.where = describeDatabase(url);
    this.sql = postgres(url, {
      max: opts.maxConnections ?? 16,
      idle_timeout: 60,
      connect_timeout: 10,
      onnotice: () => undefined,
      // Sizes and times are bigint columns: numbers here, exact below 2^53.
      types: { bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) } },
    }) as unknown as Sql;
  }

  /** The transaction of the enclosing `exclusive`, else the pool. */
  private get db(): Sql {
    return (this.tx.getStore() as unknown as Sql | undefined) ?? this.sql;
  }

  /** Runs `fn` in the enclosing transaction (a savepoint) or a new one. */
  private async atomically<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const outer = this.tx.getStore();
    return this.guard(() => (outer ? (outer.savepoint((sp) => fn(sp as unknown as Tx)) as Promise<T>) : (this.sql.begin((tx) => fn(tx)) as Promise<T>)));
  }

  /**
   * Turns a lost connection into StorageUnavailableError (503, retryable). Outside a guarded
   * section a statement or transaction that failed on a connection the server had closed (a
   * restart while idle) is tried once more on a fresh one: the server rolled back whatever it had
   * begun, and each statement here is idempotent or compare-and-set.
   */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    const retry = this.tx.getStore() === undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (!isConnectionError(e)) throw e;
        if (retry && attempt === 0) continue;
        throw new StorageUnavailableError(`PostgreSQL at ${this.where} is unavailable: ${(e as Error).message}`);
      }
    }
  }

  async open(): Promise<void> {
    try {
      await this.sql`select 1`;
    } catch (e) {
      await this.sql.end({ timeout: 1 }).catch(() => undefined);
      const code = String((e as { code?: unknown }).code);
      if (code === '28P01' || code === '28000') throw new StorageConfigError(`PostgreSQL at ${this.where} refused the credentials (${(e as Error).message})`);
      if (code === '3D000') throw new StorageConfigError(`PostgreSQL database at ${this.where} does not exist (${(e as Error).message})`);
      if (isConnectionError(e) || code === 'ENOTFOUND' || code === 'EAI_AGAIN') throw new StorageConfigError(`PostgreSQL at ${this.where} is unreachable: ${code}`);
      throw new StorageConfigError(`PostgreSQL at ${this.where}: ${(e as Error).message}`);
    }
    await this.migrate();
    // Counters made with another grouping (or before berth kept them) are recounted, once.
    const [row] = await this.sql<Array<{ fingerprint: string }>>`select fingerprint from namespace_scheme where id = 1`;
    if (row?.fingerprint !== this.scheme.fingerprint) await this.recount(true, true);
  }

  useNamespaces(scheme: NamespaceScheme): void {
    this.scheme = scheme;
  }

  /** Applies the migrations this database lacks, one replica at a time (an advisory lock). */
  private async migrate(): Promise<void> {
    const conn = await this.sql.reserve();
    try {
      await conn`select pg_advisory_lock(hashtextextended('berth:migrate', 0))`;
      await conn`create table if not exists berth_schema (version int primary key, applied timestamptz not null default now())`;
      const [row] = await conn<Array<{ v: number | null }>>`select max(version) as v from berth_schema`;
      const current = row?.v ?? 0;
      if (current > MIGRATIONS.length) throw new StorageConfigError(`PostgreSQL at ${this.where} has berth schema version ${current}; this berth knows ${MIGRATIONS.length}: upgrade berth`);
      for (let v = current + 1; v <= MIGRATIONS.length; v++) {
        // One transaction per migration, on the connection holding the lock.
        await conn`begin`;
        try {
          await conn.unsafe(MIGRATIONS[v - 1]!);
          await conn`insert into berth_schema (version) values (${v})`;
          await conn`commit`;
        } catch (e) {
          await conn`rollback`.catch(() => undefined);
          throw e;
        }
      }
    } finally {
      await conn`select pg_advisory_unlock(hashtextextended('berth:migrate', 0))`.catch(() => undefined);
      conn.release();
    }
  }

  async close(): Promise<void> {
    await this.sql.end({ timeout: 5 });
  }

  async repositoryExists(name: string): Promise<boolean> {
    const rows = await this.guard(() => this.db`select 1 from repositories where name = ${name}`);
    return rows.length > 0;
  }

  async listRepositories(limit: number, after?: string): Promise<string[]> {
    const rows = await this.guard(() =>
      after === undefined
        ? this.db<Array<{ name: string }>>`select name from repositories order by name limit ${limit}`
        : this.db<Array<{ name: string }>>`select name from repositories where name > ${after} order by name limit ${limit}`,
    );
    return rows.map((r) => r.name);
  }

  async searchRepositories(term: string, page: SearchPage): Promise<string[]> {
    if (page.limit <= 0 || page.prefixes?.length === 0) return [];
    const like = likePattern(term);
    const after = page.after ?? '';
    // Prefixes as `like 'p%'` patterns (escaped as the term is): rows outside them are not sent.
    const starts = page.prefixes?.map((p) => `${p.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    const rows = await this.guard(() =>
      starts
        ? this.db<Array<{ name: string }>>`select name from repositories where name like ${like} and name like any(${starts}::text[]) and name > ${after} order by name limit ${page.limit} offset ${page.offset ?? 0}`
        : this.db<Array<{ name: string }>>`select name from repositories where name like ${like} and name > ${after} order by name limit ${page.limit} offset ${page.offset ?? 0}`,
    );
    return rows.map((r) => r.name);
  }

  async countRepositories(term: string): Promise<number> {
    const [row] = await this.guard(() => this.db<Array<{ n: number }>>`select count(*)::bigint as n from repositories where name like ${likePattern(term)}`);
    return row?.n ?? 0;
  }

  async newestTags(names: string[]): Promise<Map<string, TagPush>> {
    if (names.length === 0) return new Map();
    const rows = await this.guard(
      () => this.db<Array<TagPush & { repository: string }>>`select n.repository, t.tag, t.digest, t.pushed from unnest(${names}::text[]) as n(repository)
        cross join lateral (select tag, digest, pushed from tags where tags.repository = n.repository order by pushed desc, tag limit 1) t`,
    );
    return new Map(rows.map((r) => [r.repository, { tag: r.tag, digest: r.digest, pushed: r.pushed }]));
  }

  async recentTags(name: string, limit: number, after?: TagPushCursor): Promise<TagPush[]> {
    if (limit <= 0) return [];
    const rows = await this.guard(() =>
      after === undefined
        ? this.db<TagPush[]>`select tag, digest, pushed from tags where repository = ${name} order by pushed desc, tag limit ${limit}`
        : this.db<TagPush[]>`select tag, digest, pushed from tags where repository = ${name} and (pushed < ${after.pushed} or (pushed = ${after.pushed} and tag > ${after.tag}))
                             order by pushed desc, tag limit ${limit}`,
    );
    return rows.map((r) => ({ tag: r.tag, digest: r.digest, pushed: r.pushed }));
  }

  async listTags(name: string, limit: number, after?: string): Promise<string[]> {
    const rows = await this.guard(() =>
      after === undefined
        ? this.db<Array<{ tag: string }>>`select tag from tags where repository = ${name} order by tag limit ${limit}`
        : this.db<Array<{ tag: string }>>`select tag from tags where repository = ${name} and tag > ${after} order by tag limit ${limit}`,
    );
    return rows.map((r) => r.tag);
  }

  async getTag(name: string, tag: string): Promise<string | undefined> {
    const [row] = await this.guard(() => this.db<Array<{ digest: string }>>`select digest from tags where repository = ${name} and tag = ${tag}`);
    return row?.digest;
  }

  async deleteTag(name: string, tag: string, expect?: { digest: string; pushed?: number }): Promise<boolean> {
    const rows = await this.guard(() =>
      expect
        ? this.db`delete from tags where repository = ${name} and tag = ${tag} and digest = ${expect.digest} and pushed = ${expect.pushed ?? 0} returning 1`
        : this.db`delete from tags where repository = ${name} and tag = ${tag} returning 1`,
    );
    return rows.length > 0;
  }

  async getManifest(name: string, digest: string): Promise<ManifestLink | undefined> {
    const [row] = await this.guard(() =>
      this.db<ManifestRow[]>`select media_type, size, subject, refs, pushed from manifests where repository = ${name} and digest = ${digest}`,
    );
    return row ? linkOf(row) : undefined;
  }

  async putManifest(w: ManifestWrite): Promise<void> {
    const pushed = Date.now();
    await this.atomically(async (tx) => {
      await tx`insert into repositories (name) values (${w.name}) on conflict do nothing`;
      const [row] = await tx<Array<{ inserted: boolean }>>`insert into manifests (repository, digest, media_type, size, subject, refs, pushed)
               values (${w.name}, ${w.digest}, ${w.link.mediaType}, ${w.link.size}, ${w.link.subject ?? null}, ${w.link.refs}, ${pushed})
               on conflict (repository, digest) do update set media_type = excluded.media_type, size = excluded.size, subject = excluded.subject, refs = excluded.refs, pushed = excluded.pushed
               returning (xmax = 0) as inserted`;
      if (row?.inserted) await this.countLink(tx, w.name, w.digest, w.link.size, 1, w.quota);
      for (const t of w.tags) {
        await tx`insert into tags (repository, tag, digest, pushed) values (${w.name}, ${t}, ${w.digest}, ${pushed}) on conflict (repository, tag) do update set digest = excluded.digest, pushed = excluded.pushed`;
      }
      if (w.referrer && w.link.subject) {
        await tx`insert into referrers (repository, subject, digest, descriptor) values (${w.name}, ${w.link.subject}, ${w.digest}, ${tx.json(w.referrer as never)})
                 on conflict (repository, subject, digest) do update set descriptor = excluded.descriptor`;
      }
      await this.touchAll(tx, w.touched);
      await this.insertNotifications(tx, w.notifications ?? []);
    });
  }

  private async insertNotifications(db: Sql | Tx, events: NotificationWrite[]): Promise<void> {
    if (events.length === 0) return;
    // unnest ... with ordinality keeps the order given, so ids follow it.
    await db`insert into notifications (endpoint, event)
             select e, v from unnest(${events.map((n) => n.endpoint)}::text[], ${events.map((n) => n.event)}::text[]) with ordinality as u(e, v, i) order by i`;
  }

  private async touchAll(tx: Tx, list: Array<{ digest: string; size: number }>): Promise<void> {
    // One row per digest: a manifest may name the same blob twice (an empty config as a layer too),
    // and one upsert may not touch a row twice.
    const touched = [...new Map(list.map((t) => [t.digest, t])).values()];
    if (touched.length === 0) return;
    const now = Date.now();
    await tx`insert into content (digest, size, touched, xid)
             select d, s, t, pg_current_xact_id() from unnest(${touched.map((t) => t.digest)}::text[], ${touched.map((t) => t.size)}::bigint[], ${touched.map(() => now)}::bigint[]) as u(d, s, t)
             on conflict (digest) do update set size = excluded.size, touched = excluded.touched, xid = excluded.xid`;
  }

  async deleteManifest(name: string, digest: string): Promise<string[] | undefined> {
    return this.atomically(async (tx) => {
      const tags = await tx<Array<{ tag: string }>>`delete from tags where repository = ${name} and digest = ${digest} returning tag`;
      // The referrer entry goes with the manifest (foreign key, on delete cascade).
      const [gone] = await tx<Array<{ size: number }>>`delete from manifests where repository = ${name} and digest = ${digest} returning size`;
      if (!gone) return undefined;
      await this.countLink(tx, name, digest, gone.size, -1);
      return tags.map((t) => t.tag);
    });
  }

  async referencedBy(name: string, digest: string): Promise<string | undefined> {
    const [row] = await this.guard(() => this.db<Array<{ digest: string }>>`select digest from manifests where repository = ${name} and refs @> array[${digest}]::text[] limit 1`);
    return row?.digest;
  }

  /**
   * One link of `name` to `digest` added or removed, in transaction `tx`: the namespace's
   * reference count, and its bytes when the digest enters or leaves the namespace. The usage row
   * is locked until the transaction ends, so two pushes into one namespace check the quota one
   * after the other; a refusal rolls the whole write back.
   */
  private async countLink(tx: Tx, name: string, digest: string, size: number, delta: 1 | -1, quota?: number): Promise<void> {
    const ns = this.scheme.of(name);
    let bytes = 0;
    if (delta > 0) {
      const [r] = await tx<Array<{ refs: number }>>`insert into namespace_content (namespace, digest, size, refs) values (${ns}, ${digest}, ${size}, 1)
               on conflict (namespace, digest) do update set refs = namespace_content.refs + 1 returning refs`;
      if (r?.refs === 1) bytes = size;
    } else {
      const [r] = await tx<Array<{ refs: number; size: number }>>`update namespace_content set refs = refs - 1 where namespace = ${ns} and digest = ${digest} returning refs, size`;
      if (r && r.refs <= 0) {
        await tx`delete from namespace_content where namespace = ${ns} and digest = ${digest}`;
        bytes = -r.size;
      }
    }
    if (bytes === 0) return;
    const [u] = await tx<Array<{ used: number }>>`insert into namespace_usage (namespace, used) values (${ns}, ${Math.max(0, bytes)})
             on conflict (namespace) do update set used = greatest(0, namespace_usage.used + ${bytes}::bigint) returning used`;
    if (quota !== undefined && bytes > 0 && u && u.used > quota) throw new QuotaExceededError(ns, u.used - bytes, quota, bytes);
  }

  async namespaceUsage(namespace: string, digest?: string): Promise<{ usedBytes: number; holds: boolean }> {
    const [row] = await this.guard(
      () =>
        this.db<Array<{ used: number | null; holds: boolean }>>`select (select used from namespace_usage where namespace = ${namespace}) as used,
          exists (select 1 from namespace_content where namespace = ${namespace} and digest = ${digest ?? ''} and refs > 0) as holds`,
    );
    return { usedBytes: row?.used ?? 0, holds: row?.holds ?? false };
  }

  async listNamespaceUsage(): Promise<NamespaceCount[]> {
    const rows = await this.guard(() => this.db<Array<{ namespace: string; used: number }>>`select namespace, used from namespace_usage where used > 0 order by namespace`);
    return rows.map((r) => ({ namespace: r.namespace, usedBytes: r.used }));
  }

  recountUsage(repair: boolean): Promise<UsageDrift[]> {
    return this.recount(repair, false);
  }

  /**
   * Recounts the namespace counters from the links. A check reads links and counters in one
   * snapshot (a repeatable-read transaction): counters move with links in the same transactions,
   * so they agree in any snapshot unless they drifted. A repair holds the counter tables locked
   * while it reads and rewrites: a link write waits at its counter update and then applies its
   * change on top of the recount, which did not see its uncommitted link.
   */
  private async recount(repair: boolean, onlyIfSchemeChanged: boolean): Promise<UsageDrift[]> {
    const run = async (tx: Tx): Promise<UsageDrift[]> => {
      if (repair) {
        await tx`lock table namespace_content, namespace_usage, namespace_scheme in exclusive mode`;
        if (onlyIfSchemeChanged) {
          const [row] = await tx<Array<{ fingerprint: string }>>`select fingerprint from namespace_scheme where id = 1`;
          if (row?.fingerprint === this.scheme.fingerprint) return [];
        }
      }
      const counted = new Map<string, { ns: string; digest: string; size: number; n: number }>();
      await tx<Array<{ repository: string; digest: string; size: number }>>`select repository, digest, size from blob_links union all select repository, digest, size from manifests`.cursor(10_000, (rows) => {
        for (const r of rows) {
          const ns = this.scheme.of(r.repository);
          const k = `${ns}\0${r.digest}`;
          const c = counted.get(k);
          if (c) c.n++;
          else counted.set(k, { ns, digest: r.digest, size: r.size, n: 1 });
        }
      });
      const drift = new Map<string, UsageDrift>();
      const entry = (ns: string): UsageDrift => {
        let d = drift.get(ns);
        if (!d) drift.set(ns, (d = { namespace: ns, storedBytes: 0, countedBytes: 0, digests: 0 }));
        return d;
      };
      for (const c of counted.values()) entry(c.ns).countedBytes += c.size;
      for (const u of await tx<Array<{ namespace: string; used: number }>>`select namespace, used from namespace_usage`) entry(u.namespace).storedBytes = u.used;
      const seen = new Set<string>();
      await tx<Array<{ namespace: string; digest: string; size: number; refs: number }>>`select namespace, digest, size, refs from namespace_content`.cursor(10_000, (rows) => {
        for (const r of rows) {
          const k = `${r.namespace}\0${r.digest}`;
          seen.add(k);
          const c = counted.get(k);
          if (!c || c.n !== r.refs || c.size !== r.size) entry(r.namespace).digests++;
        }
      });
      for (const [k, c] of counted) if (!seen.has(k)) entry(c.ns).digests++;
      if (repair) {
        await tx`delete from namespace_content`;
        await tx`delete from namespace_usage`;
        const all = [...counted.values()];
        for (let i = 0; i < all.length; i += 5000) {
          const part = all.slice(i, i + 5000);
          await tx`insert into namespace_content (namespace, digest, size, refs)
                   select * from unnest(${part.map((c) => c.ns)}::text[], ${part.map((c) => c.digest)}::text[], ${part.map((c) => c.size)}::bigint[], ${part.map((c) => c.n)}::int[])`;
        }
        const used = [...drift.values()].filter((d) => d.countedBytes > 0);
        if (used.length > 0) await tx`insert into namespace_usage (namespace, used) select * from unnest(${used.map((d) => d.namespace)}::text[], ${used.map((d) => d.countedBytes)}::bigint[])`;
        await tx`insert into namespace_scheme (id, fingerprint) values (1, ${this.scheme.fingerprint}) on conflict (id) do update set fingerprint = excluded.fingerprint`;
      }
      return [...drift.values()].filter((d) => d.storedBytes !== d.countedBytes || d.digests > 0);
    };
    return this.guard(() => (repair ? (this.sql.begin((tx) => run(tx)) as Promise<UsageDrift[]>) : (this.sql.begin('isolation level repeatable read read only', (tx) => run(tx)) as Promise<UsageDrift[]>)));
  }

  async referrers(name: string, subject: string): Promise<Descriptor[]> {
    const rows = await this.guard(() => this.db<Array<{ descriptor: Descriptor }>>`select descriptor from referrers where repository = ${name} and subject = ${subject} order by digest`);
    return rows.map((r) => r.descriptor);
  }

  async getBlobLink(name: string, digest: string): Promise<BlobLink | undefined> {
    const [row] = await this.guard(() => this.db<Array<{ size: number }>>`select size from blob_links where repository = ${name} and digest = ${digest}`);
    return row ? { size: row.size } : undefined;
  }

  async linkBlob(name: string, digest: string, size: number, opts: { quota?: number } = {}): Promise<void> {
    await this.atomically(async (tx) => {
      await tx`insert into repositories (name) values (${name}) on conflict do nothing`;
      const [row] = await tx<Array<{ inserted: boolean }>>`insert into blob_links (repository, digest, size) values (${name}, ${digest}, ${size})
               on conflict (repository, digest) do update set size = excluded.size returning (xmax = 0) as inserted`;
      if (row?.inserted) await this.countLink(tx, name, digest, size, 1, opts.quota);
      await this.touchAll(tx, [{ digest, size }]);
    });
  }

  async unlinkBlob(name: string, digest: string): Promise<boolean> {
    return this.atomically(async (tx) => {
      const [row] = await tx<Array<{ size: number }>>`delete from blob_links where repository = ${name} and digest = ${digest} returning size`;
      if (!row) return false;
      await this.countLink(tx, name, digest, row.size, -1);
      return true;
    });
  }

  async referencedDigests(): Promise<Set<string>> {
    const live = new Set<string>();
    await this.guard(() =>
      this.sql<Array<{ digest: string }>>`select digest from blob_links union select digest from manifests union select unnest(refs) from manifests`.cursor(10_000, (rows) => {
        for (const r of rows) live.add(r.digest);
      }),
    );
    return live;
  }

  // The listings of fsck: keyset pages of LIST_PAGE rows, each its own short statement (no cursor or
  // transaction held open while the caller hashes content between two pages).
  async *tagEntries(name: string): AsyncIterable<TagEntry> {
    let after: string | undefined;
    for (;;) {
      const last = after;
      const rows = await this.guard(() =>
        last === undefined
          ? this.db<Array<{ tag: string; digest: string; pushed: number | null }>>`select tag, digest, pushed from tags where repository = ${name} order by tag limit ${LIST_PAGE}`
          : this.db<Array<{ tag: string; digest: string; pushed: number | null }>>`select tag, digest, pushed from tags where repository = ${name} and tag > ${last} order by tag limit ${LIST_PAGE}`,
      );
      // 0: set before push times were recorded (unknown).
      for (const r of rows) yield r.pushed ? { tag: r.tag, digest: r.digest, pushed: r.pushed } : { tag: r.tag, digest: r.digest };
      if (rows.length < LIST_PAGE) return;
      after = rows[rows.length - 1]!.tag;
    }
  }

  async *manifestEntries(name: string): AsyncIterable<ManifestEntry> {
    type Row = ManifestRow & { digest: string };
    let after: string | undefined;
    for (;;) {
      const last = after;
      const rows = await this.guard(() =>
        last === undefined
          ? this.db<Row[]>`select digest, media_type, size, subject, refs, pushed from manifests where repository = ${name} order by digest limit ${LIST_PAGE}`
          : this.db<Row[]>`select digest, media_type, size, subject, refs, pushed from manifests where repository = ${name} and digest > ${last} order by digest limit ${LIST_PAGE}`,
      );
      for (const r of rows) yield { digest: r.digest, link: linkOf(r) };
      if (rows.length < LIST_PAGE) return;
      after = rows[rows.length - 1]!.digest;
    }
  }

  async *blobLinks(name: string): AsyncIterable<BlobLinkEntry> {
    let after: string | undefined;
    for (;;) {
      const last = after;
      const rows = await this.guard(() =>
        last === undefined
          ? this.db<BlobLinkEntry[]>`select digest, size from blob_links where repository = ${name} order by digest limit ${LIST_PAGE}`
          : this.db<BlobLinkEntry[]>`select digest, size from blob_links where repository = ${name} and digest > ${last} order by digest limit ${LIST_PAGE}`,
      );
      for (const r of rows) yield { digest: r.digest, size: r.size };
      if (rows.length < LIST_PAGE) return;
      after = rows[rows.length - 1]!.digest;
    }
  }

  async *referrerEntries(name: string): AsyncIterable<ReferrerEntry> {
    let after: { subject: string; digest: string } | undefined;
    for (;;) {
      const last = after;
      const rows = await this.guard(() =>
        last === undefined
          ? this.db<ReferrerEntry[]>`select subject, digest, descriptor from referrers where repository = ${name} order by subject, digest limit ${LIST_PAGE}`
          : this.db<ReferrerEntry[]>`select subject, digest, descriptor from referrers where repository = ${name} and (subject, digest) > (${last.subject}, ${last.digest}) order by subject, digest limit ${LIST_PAGE}`,
      );
      for (const r of rows) yield { subject: r.subject, digest: r.digest, descriptor: r.descriptor };
      if (rows.length < LIST_PAGE) return;
      const end = rows[rows.length - 1]!;
      after = { subject: end.subject, digest: end.digest };
    }
  }

  async deleteReferrer(name: string, subject: string, digest: string): Promise<boolean> {
    const rows = await this.guard(() => this.db`delete from referrers where repository = ${name} and subject = ${subject} and digest = ${digest} returning 1`);
    return rows.length > 0;
  }

  async exclusive<T>(digest: string, fn: () => Promise<T>): Promise<T> {
    const outer = this.tx.getStore();
    if (outer) {
      // Nested: the same transaction takes one more lock, released when it ends.
      await this.guard(() => outer`select pg_advisory_xact_lock(hashtextextended(${'berth:blob:' + digest}, 0))`);
      return fn();
    }
    // Not through guard(): `fn` may have done work outside the database (stored a blob) before
    // the connection failed, so it is never run twice here.
    try {
      return (await this.sql.begin(async (tx) => {
        await tx`select pg_advisory_xact_lock(hashtextextended(${'berth:blob:' + digest}, 0))`;
        return this.tx.run(tx, fn);
      })) as T;
    } catch (e) {
      if (isConnectionError(e)) throw new StorageUnavailableError(`PostgreSQL at ${this.where} is unavailable: ${(e as Error).message}`);
      throw e;
    }
  }

  async touchContent(digest: string, size: number): Promise<void> {
    await this.guard(
      () => this.db`insert into content (digest, size, touched, xid) values (${digest}, ${size}, ${Date.now()}, pg_current_xact_id())
                    on conflict (digest) do update set size = excluded.size, touched = excluded.touched, xid = excluded.xid`,
    );
  }

  /**
   * The snapshot of transactions committed now: a content record whose transaction is not in it
   * committed after (or was running), so a mark taken after this point may not have seen its link.
   */
  async markPoint(): Promise<MarkPoint> {
    const [row] = await this.guard(() => this.sql<Array<{ snap: string }>>`select pg_current_snapshot()::text as snap`);
    return { mark: true, snap: row!.snap } as MarkPoint;
  }

  async getContent(digest: string, since?: MarkPoint): Promise<ContentRecord | undefined> {
    const snap = since ? (since as MarkPoint & { snap: string }).snap : null;
    const [row] = await this.guard(
      () =>
        this.db<Array<{ size: number; touched: number; after: boolean }>>`select size, touched,
          (${snap}::pg_snapshot is not null and xid is not null and not pg_visible_in_snapshot(xid, ${snap}::pg_snapshot)) as after
          from content where digest = ${digest}`,
    );
    if (!row) return undefined;
    return since ? { size: row.size, touched: row.touched, afterMark: row.after } : { size: row.size, touched: row.touched };
  }

  async forgetContent(digest: string): Promise<void> {
    await this.guard(() => this.db`delete from content where digest = ${digest}`);
  }

  async createUpload(id: string, r: UploadRecord): Promise<void> {
    await this.guard(
      () => this.db`insert into uploads (id, repository, algorithm, "offset", started, updated, driver, hash)
                    values (${id}, ${r.name}, ${r.algorithm}, ${r.offset}, ${r.started}, ${r.updated}, ${r.driver ? this.sql.json(r.driver as never) : null}, ${r.hash ?? null})`,
    );
  }

  async getUpload(id: string): Promise<UploadRecord | undefined> {
    const [row] = await this.guard(() => this.db<UploadRow[]>`select * from uploads where id = ${id}`);
    return row ? fromRow(row) : undefined;
  }

  async updateUpload(id: string, r: UploadRecord, expectedOffset: number): Promise<boolean> {
    const rows = await this.guard(
      () => this.db`update uploads set "offset" = ${r.offset}, updated = ${r.updated}, driver = ${r.driver ? this.sql.json(r.driver as never) : null}, hash = ${r.hash ?? null}
                    where id = ${id} and "offset" = ${expectedOffset} returning 1`,
    );
    return rows.length > 0;
  }

  async deleteUpload(id: string): Promise<void> {
    await this.guard(() => this.db`delete from uploads where id = ${id}`);
  }

  async *listUploads(): AsyncIterable<[string, UploadRecord]> {
    const rows = await this.guard(() => this.sql<UploadRow[]>`select * from uploads order by id`);
    for (const row of rows) yield [row.id, fromRow(row)];
  }

  async getMirrorTagChecked(name: string, tag: string): Promise<number | undefined> {
    const [row] = await this.guard(() => this.db<Array<{ checked: number }>>`select checked from mirror_tags where repository = ${name} and tag = ${tag}`);
    return row?.checked;
  }

  async setMirrorTagChecked(name: string, tag: string, at: number): Promise<void> {
    await this.guard(() => this.db`insert into mirror_tags (repository, tag, checked) values (${name}, ${tag}, ${at}) on conflict (repository, tag) do update set checked = excluded.checked`);
  }

  async touchMirrorAccess(a: MirrorAccess, at: number): Promise<void> {
    await this.guard(
      () => this.db`insert into mirror_access (repository, digest, kind, at) values (${a.name}, ${a.digest}, ${a.kind}, ${at})
                    on conflict (repository, digest) do update set kind = excluded.kind, at = greatest(mirror_access.at, excluded.at)`,
    );
  }

  async *mirrorUnusedSince(cutoff: number): AsyncIterable<MirrorAccess> {
    const rows = await this.guard(() => this.sql<Array<{ repository: string; digest: string; kind: MirrorAccess['kind'] }>>`select repository, digest, kind from mirror_access where at < ${cutoff}`);
    for (const r of rows) yield { name: r.repository, digest: r.digest, kind: r.kind };
  }

  async forgetMirrorAccess(name: string, digest: string): Promise<void> {
    await this.guard(() => this.db`delete from mirror_access where repository = ${name} and digest = ${digest}`);
  }

  async enqueueNotifications(events: NotificationWrite[]): Promise<void> {
    await this.guard(() => this.insertNotifications(this.db, events));
  }

  async pendingNotifications(endpoint: string, limit: number): Promise<QueuedNotification[]> {
    const rows = await this.guard(
      () => this.db<Array<{ id: number; event: string; attempts: number; not_before: number }>>`select id, event, attempts, not_before from notifications where endpoint = ${endpoint} order by id limit ${limit}`,
    );
    return rows.map((r) => ({ endpoint, id: String(r.id), event: r.event, attempts: r.attempts, notBefore: r.not_before }));
  }

  async removeNotification(endpoint: string, id: string): Promise<boolean> {
    const rows = await this.guard(() => this.db`delete from notifications where endpoint = ${endpoint} and id = ${id} returning 1`);
    return rows.length > 0;
  }

  async deferNotification(endpoint: string, id: string, attempts: number, notBefore: number): Promise<void> {
    await this.guard(() => this.db`update notifications set attempts = ${attempts}, not_before = ${notBefore} where endpoint = ${endpoint} and id = ${id}`);
  }

  async countNotifications(endpoint: string): Promise<number> {
    const [row] = await this.guard(() => this.db<Array<{ n: number }>>`select count(*)::int as n from notifications where endpoint = ${endpoint}`);
    return row?.n ?? 0;
  }

  async runJob<T>(job: string, fn: () => Promise<T>): Promise<T | undefined> {
    const conn = await this.guard(() => this.sql.reserve());
    const lock = 'berth:job:' + job;
    try {
      const [row] = await conn<Array<{ ok: boolean }>>`select pg_try_advisory_lock(hashtextextended(${lock}, 0)) as ok`;
      if (!row?.ok) return undefined;
      try {
        return await fn();
      } finally {
        await conn`select pg_advisory_unlock(hashtextextended(${lock}, 0))`.catch(() => undefined);
      }
    } finally {
      conn.release();
    }
  }
}

/** `%term%` for LIKE, its own wildcards (and the escape character) escaped. */
function likePattern(term: string): string {
  return `%${term.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

interface ManifestRow {
  media_type: string;
  size: number;
  subject: string | null;
  refs: string[];
  pushed: number | null;
}

function linkOf(row: ManifestRow): ManifestLink {
  const link: ManifestLink = { mediaType: row.media_type, size: row.size, refs: row.refs };
  if (row.subject) link.subject = row.subject;
  if (row.pushed !== null) link.pushed = row.pushed;
  return link;
}

interface UploadRow {
  id: string;
  repository: string;
  algorithm: 'sha256' | 'sha512';
  offset: number;
  started: string;
  updated: string;
  driver: Record<string, unknown> | null;
  hash: string | null;
}

function fromRow(row: UploadRow): UploadRecord {
  const r: UploadRecord = { name: row.repository, algorithm: row.algorithm, offset: row.offset, started: row.started, updated: row.updated };
  if (row.driver) r.driver = row.driver;
  if (row.hash) r.hash = row.hash;
  return r;
}
