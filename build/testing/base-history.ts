// Test support: gives the images of an OCI layout (runtime/test-images.ts makes them without
// history) one history entry per layer, as real images have. buildah refuses a base whose
// history lists fewer non-empty layers than it has ("history lists 0 non-empty layers").
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestOf } from '../../oci/digest.js';

export async function withHistory(layoutDir: string): Promise<void> {
  const blob = (d: string) => join(layoutDir, 'blobs', 'sha256', d.slice(7));
  const put = async (bytes: Buffer) => {
    const digest = digestOf(bytes);
    await writeFile(blob(digest), bytes);
    return { digest, size: bytes.length };
  };
  const indexPath = join(layoutDir, 'index.json');
  const index = JSON.parse(await readFile(indexPath, 'utf8')) as { manifests: { digest: string; size: number; mediaType?: string }[] };
  for (const m of index.manifests) {
    if (m.mediaType && !m.mediaType.includes('manifest')) continue;
    const manifest = JSON.parse(await readFile(blob(m.digest), 'utf8')) as { config: { digest: string; size: number }; layers: unknown[] };
    const config = JSON.parse(await readFile(blob(manifest.config.digest), 'utf8')) as Record<string, unknown>;
    config.created = '2024-01-01T00:00:00Z';
    config.history = manifest.layers.map(() => ({ created: '2024-01-01T00:00:00Z', created_by: 'test base layer' }));
    Object.assign(manifest.config, await put(Buffer.from(JSON.stringify(config))));
    Object.assign(m, await put(Buffer.from(JSON.stringify(manifest))));
  }
  await writeFile(indexPath, JSON.stringify(index));
}
