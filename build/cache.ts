// The step cache. A step's key is sha256 over its parent's key (the chain back to the base image's
// digest), the instruction after ARG/ENV expansion, and what it reads (COPY/ADD: the content
// digests of its inputs, build/copy-contract.ts). A record holds what the step produced: its
// layer (already in the local store) and its history entry, so a fully cached rebuild gives the
// same image ID. Records are small JSON files, written by temp + rename; a record whose layer was
// removed from the store (rmi, prune) is a miss.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LocalImageStore } from '../client/store/image-store.js';
import { randomHex } from '../storage/random-hex.js';
import type { BuiltLayer } from './layer-writer.js';

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  comment?: string;
  author?: string;
  empty_layer?: boolean;
}

export interface StepRecord {
  layer?: BuiltLayer;
  history: HistoryEntry;
}

export function stepKey(parent: string, ...parts: string[]): string {
  const h = createHash('sha256').update(parent);
  for (const p of parts) h.update('\0').update(p);
  return `sha256:${h.digest('hex')}`;
}

export class StepCache {
  constructor(
    readonly dir: string,
    private readonly store: LocalImageStore,
  ) {}

  private path(key: string): string {
    const hex = /^sha256:([0-9a-f]{64})$/.exec(key)?.[1];
    if (!hex) throw new Error(`not a step key: ${key}`);
    return join(this.dir, hex.slice(0, 2), `${hex}.json`);
  }

  async get(key: string): Promise<StepRecord | undefined> {
    let rec: StepRecord;
    try {
      rec = JSON.parse(await readFile(this.path(key), 'utf8')) as StepRecord;
    } catch {
      return undefined;
    }
    if (rec.layer && !(await this.store.blobs.has(rec.layer.digest))) return undefined;
    return rec;
  }

  async put(key: string, rec: StepRecord): Promise<void> {
    const path = this.path(key);
    await mkdir(join(path, '..'), { recursive: true });
    const tmp = `${path}.${randomHex(4)}.tmp`;
    await writeFile(tmp, JSON.stringify(rec));
    await rename(tmp, path);
  }
}
