// The PostgreSQL schema, as numbered migrations applied in order by berth itself at start
// (storage/postgres-metadata.ts); `berth_schema` records which ran. Never edit a migration that
// shipped: add the next one. Text keys use the "C" collation so listings sort by bytes, as the
// LevelDB backend and the distribution-spec's lexical tag order do.
export const MIGRATIONS: readonly string[] = [
  // 1: repositories, manifests, tags, referrers, blob links, content records, upload sessions.
  `
  create table repositories (
    name text collate "C" primary key,
    created timestamptz not null default now()
  );
  create table manifests (
    repository text collate "C" not null references repositories (name) on delete cascade,
    digest text collate "C" not null,
    media_type text not null,
    size bigint not null,
    subject text collate "C",
    refs text[] not null default '{}',
    primary key (repository, digest)
  );
  create table tags (
    repository text collate "C" not null,
    tag text collate "C" not null,
    digest text collate "C" not null,
    primary key (repository, tag),
    foreign key (repository, digest) references manifests (repository, digest) on delete cascade
  );
  create index tags_by_manifest on tags (repository, digest);
  create table referrers (
    repository text collate "C" not null,
    subject text collate "C" not null,
    digest text collate "C" not null,
    descriptor jsonb not null,
    primary key (repository, subject, digest),
    foreign key (repository, digest) references manifests (repository, digest) on delete cascade
  );
  create index referrers_by_manifest on referrers (repository, digest);
  create table blob_links (
    repository text collate "C" not null references repositories (name) on delete cascade,
    digest text collate "C" not null,
    size bigint not null,
    primary key (repository, digest)
  );
  create table content (
    digest text collate "C" primary key,
    size bigint not null,
    touched bigint not null
  );
  create table uploads (
    id uuid primary key,
    repository text collate "C" not null,
    algorithm text not null,
    "offset" bigint not null,
    started text not null,
    updated text not null,
    driver jsonb,
    hash text
  );
  `,
  // 2: a pull-through mirror's records: upstream tag checks, last use of cached content.
  `
  create table mirror_tags (
    repository text collate "C" not null,
    tag text collate "C" not null,
    checked bigint not null,
    primary key (repository, tag)
  );
  create table mirror_access (
    repository text collate "C" not null,
    digest text collate "C" not null,
    kind text not null,
    at bigint not null,
    primary key (repository, digest)
  );
  create index mirror_access_by_time on mirror_access (at);
  `,
  // 3: the transaction that last wrote a content record, so GC tells a touch committed after its
  // mark point from one before it (pg_visible_in_snapshot), whatever the clocks say.
  `
  alter table content add column xid xid8;
  `,
  // 4: webhook queues (server/notifications/): an event per endpoint until delivered; `id` orders
  // each endpoint's queue. The event is the JSON text delivered, kept as text (jsonb would reorder it).
  `
  create table notifications (
    id bigserial primary key,
    endpoint text collate "C" not null,
    event text not null,
    attempts int not null default 0,
    not_before bigint not null default 0
  );
  create index notifications_by_endpoint on notifications (endpoint, id);
  `,
  // 5: the search index and tag push times. pg_trgm (trusted since PostgreSQL 13: a database
  // owner may create it; Debian's postgresql ships it) lets `name like '%term%'` use a GIN index;
  // where it cannot be created, search scans the repositories table (a sequential scan of short
  // names: ~2 ms per 10 000). Tags get the time a manifest PUT last set them, and an index that
  // lists a repository's tags newest first a page at a time.
  `
  do $$ begin
    create extension if not exists pg_trgm;
  exception when others then
    raise notice 'pg_trgm is not available (%): repository search scans the table', sqlerrm;
  end $$;
  do $$ begin
    if exists (select 1 from pg_extension where extname = 'pg_trgm') then
      create index repositories_name_trgm on repositories using gin (name gin_trgm_ops);
    end if;
  end $$;
  alter table tags add column pushed bigint not null default 0;
  create index tags_newest_first on tags (repository, pushed desc, tag);
  `,
  // 6: manifest push times (retention's age of an untagged manifest; tags have theirs since 5) and namespace usage
  // counters (quotas): per (namespace, digest) the number of the namespace's links to it, per
  // namespace the bytes counted; the grouping they follow (a changed one is recounted).
  `
  alter table manifests add column pushed bigint;
  create table namespace_content (
    namespace text collate "C" not null,
    digest text collate "C" not null,
    size bigint not null,
    refs int not null,
    primary key (namespace, digest)
  );
  create table namespace_usage (
    namespace text collate "C" primary key,
    used bigint not null
  );
  create table namespace_scheme (
    id int primary key check (id = 1),
    fingerprint text not null
  );
  `,
];
