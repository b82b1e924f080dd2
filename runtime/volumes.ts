// Named volumes: $BERTH_ROOT/volumes/<name>/_data (docker's local driver layout) plus a meta.json.
// A volume outlives the containers that mount it; `-v name:/path` creates it on first use.
import { randomHex } from '../storage/random-hex.js';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RuntimeLayout } from './runtime-layout.js';

const VOLUME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export interface Volume {
  Name: string;
  Driver: 'local';
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Scope: 'local';
}

export function isVolumeName(s: string): boolean {
  return VOLUME_RE.test(s) && s.length <= 255;
}

export class VolumeStore {
  constructor(private readonly layout: RuntimeLayout) {}

  private dir(name: string): string {
    if (!isVolumeName(name)) throw new Error(`invalid volume name ${JSON.stringify(name)}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    return join(this.layout.root, 'volumes', name);
  }

  async get(name: string): Promise<Volume | undefined> {
    return readFile(join(this.dir(name), 'meta.json'), 'utf8').then(
      (t) => JSON.parse(t) as Volume,
      () => undefined,
    );
  }

  /** Creates the volume unless it exists; returns it either way (docker's `volume create`). */
  async ensure(name = randomHex(32)): Promise<Volume> {
    const existing = await this.get(name);
    if (existing) return existing;
    const dir = this.dir(name);
    const volume: Volume = { Name: name, Driver: 'local', Mountpoint: join(dir, '_data'), CreatedAt: new Date().toISOString(), Labels: {}, Scope: 'local' };
    await mkdir(volume.Mountpoint, { recursive: true, mode: 0o755 });
    const tmp = join(dir, `meta.json.${randomHex(4)}`);
    await writeFile(tmp, JSON.stringify(volume, null, 2));
    await rename(tmp, join(dir, 'meta.json'));
    return volume;
  }

  async list(): Promise<Volume[]> {
    const names = await readdir(join(this.layout.root, 'volumes')).catch(() => [] as string[]);
    const out: Volume[] = [];
    for (const n of names.filter(isVolumeName)) {
      const v = await this.get(n);
      if (v) out.push(v);
    }
    return out.sort((a, b) => a.Name.localeCompare(b.Name));
  }

  async remove(name: string): Promise<void> {
    await rm(this.dir(name), { recursive: true, force: true });
  }
}
