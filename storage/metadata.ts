// The LevelDB schema. LevelDB is the single source of truth for what exists where; blob files
// are content only. One sublevel per kind of record; `\x00` separates key parts because the name
// and tag grammars exclude it, and it sorts before every allowed character, so a repository's
// keys form one contiguous range and listings iterate O(page).
import { Level } from 'level';
import type { Descriptor } from '../oci/manifest.js';

export const SEP = '\x00';

/** repos:     <name>                          → RepoRecord */
export interface RepoRecord {
  created: string;
}
/** tags:      <name>\0<tag>                   → manifest digest */
/** manifests: <name>\0<digest>                → ManifestLink (bytes live in the blob store) */
export interface ManifestLink {
  mediaType: string;
  size: number;
  subject?: string;
  /** Digests this manifest references (blobs and child manifests), for GC and deletes. */
  refs: string[];
}
/** blobs:     <name>\0<digest>                → BlobLink: the repository may read this blob */
export interface BlobLink {
  size: number;
}
/** referrers: <name>\0<subject>\0<digest>     → descriptor as the referrers API lists it */
export type ReferrerRecord = Descriptor;
/** uploads:   <uuid>                          → UploadRecord */
export interface UploadRecord {
  name: string;
  algorithm: 'sha256' | 'sha512';
  /** Bytes durably received; the upload file may hold more after a crash, they are discarded. */
  offset: number;
  started: string;
  updated: string;
}
/** content:   <digest>                        → ContentRecord: when the blob was last committed or linked (GC's grace) */
export interface ContentRecord {
  size: number;
  /** ms since the epoch */
  touched: number;
}
/** meta:      'layout'                         → schema version of this data folder */

export const LAYOUT_VERSION = 1;

export function key(...parts: string[]): string {
  return parts.join(SEP);
}

/** Bounds for iterating every key that starts with `prefix` + SEP. */
export function prefixRange(...parts: string[]): { gt: string; lt: string } {
  const p = parts.join(SEP) + SEP;
  return { gt: p, lt: p + '\xff' };
}

export class Metadata {
  readonly db: Level<string, unknown>;
  readonly repos;
  readonly tags;
  readonly manifests;
  readonly blobs;
  readonly referrers;
  readonly uploads;
  readonly content;
  readonly meta;

  constructor(dir: string) {
    this.db = new Level<string, unknown>(dir, { valueEncoding: 'json' });
    this.repos = this.db.sublevel<string, RepoRecord>('repos', { valueEncoding: 'json' });
    this.tags = this.db.sublevel<string, string>('tags', { valueEncoding: 'utf8' });
    this.manifests = this.db.sublevel<string, ManifestLink>('manifests', { valueEncoding: 'json' });
    this.blobs = this.db.sublevel<string, BlobLink>('blobs', { valueEncoding: 'json' });
    this.referrers = this.db.sublevel<string, ReferrerRecord>('referrers', { valueEncoding: 'json' });
    this.uploads = this.db.sublevel<string, UploadRecord>('uploads', { valueEncoding: 'json' });
    this.content = this.db.sublevel<string, ContentRecord>('content', { valueEncoding: 'json' });
    this.meta = this.db.sublevel<string, number>('meta', { valueEncoding: 'json' });
  }

  async open(): Promise<void> {
    await this.db.open();
    const version = await this.meta.get('layout');
    if (version === undefined) await this.meta.put('layout', LAYOUT_VERSION);
    else if (version !== LAYOUT_VERSION) throw new Error(`data folder has layout version ${version}; this berth reads ${LAYOUT_VERSION}`);
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
