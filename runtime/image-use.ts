// Which stored images containers were created from, so `rmi` can refuse, as docker does, to
// delete an image a container (running or stopped) still refers to unless forced. Untagging one
// of several tags is always allowed: the image stays.
import { imageId, shortId, type LocalImageStore } from '../client/store/image-store.js';
import { ContainerStore } from './container-store.js';
import type { RuntimeLayout } from './runtime-layout.js';

/** The `rmi` arguments that would delete an image in use, with docker's conflict message each. */
export async function rmiConflicts(layout: RuntimeLayout, store: LocalImageStore, inputs: string[]): Promise<Map<string, string>> {
  const containers = new ContainerStore(layout);
  const users = new Map<string, { id: string; running: boolean }>();
  for (const id of await containers.ids()) {
    const c = await containers.config(id).catch(() => undefined);
    if (!c || users.has(c.ImageId)) continue;
    const running = await containers.state(id).then((s) => s.Status === 'running', () => false);
    users.set(c.ImageId, { id, running });
  }
  const conflicts = new Map<string, string>();
  if (users.size === 0) return conflicts;
  const doc = await store.index.read();
  for (const input of inputs) {
    const resolved = await store.resolve(input, doc).catch(() => undefined);
    if (!resolved) continue; // rmi itself reports the unknown image
    const record = resolved.record;
    const tags = Object.values(doc.tags).filter((d) => d === record.digest).length;
    if (resolved.ref && tags > 1) continue; // only untagged
    // The image and, for an index, the platform images it holds.
    const user = [record.digest, ...(record.children ?? [])].map((d) => users.get(d)).find(Boolean);
    if (!user) continue;
    const image = shortId(imageId(record));
    conflicts.set(
      input,
      resolved.ref
        ? `conflict: unable to remove repository reference "${input}" (must force) - container ${user.id.slice(0, 12)} is using its referenced image ${image}`
        : `conflict: unable to delete ${image} (must be forced) - image is being used by ${user.running ? 'running' : 'stopped'} container ${user.id.slice(0, 12)}`,
    );
  }
  return conflicts;
}
