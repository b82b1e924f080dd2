// A stage's (or an image's) filesystem as layers so far, readable from the host: COPY reads its
// destination's parents and /etc/passwd through it, COPY --from and RUN --mount=from= read their
// sources through it. A read-only overlay of the unpacked layers (runtime/layer-cache.ts),
// mounted on demand: overlayfs resolves whiteouts and opaque dirs exactly as a container sees them.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface RootfsView {
  /**
   * The unpacked layers, topmost first (overlay lowerdir order); empty for scratch. Unpacked on
   * the first call (a layer this build just wrote is unpacked only when something reads it).
   */
  layers(): Promise<readonly string[]>;
  /**
   * Mounts the view read-only and returns where; release() unmounts it. Paths under it are host
   * paths: resolve symlinks of the image inside it (never with the host's root).
   */
  mount(): Promise<MountedRootfs>;
}

export interface MountedRootfs {
  path: string;
  release(): Promise<void>;
}

/** A view of the dirs `unpack` gives (memoized), mounted under `tmpRoot`. */
export function rootfsView(unpack: () => Promise<readonly string[]>, tmpRoot: string): RootfsView {
  let dirs: Promise<readonly string[]> | undefined;
  const layers = () => (dirs ??= unpack());
  return {
    layers,
    async mount() {
      const lowerDirs = await layers();
      await mkdir(tmpRoot, { recursive: true });
      const dir = await mkdtemp(join(tmpRoot, 'view-'));
      const target = join(dir, 'root');
      const empty = join(dir, 'empty');
      await mkdir(target);
      await mkdir(empty);
      // overlayfs without an upper dir needs two lower dirs: an empty one at the bottom serves.
      const lowers = [...lowerDirs, empty];
      try {
        await run('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${lowers.join(':')}`, target]);
      } catch (err) {
        await rm(dir, { recursive: true, force: true });
        throw new Error(`cannot mount the build's view of its layers: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`);
      }
      let released = false;
      return {
        path: target,
        async release() {
          if (released) return;
          released = true;
          await run('umount', [target]).catch(() => run('umount', ['-l', target]));
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  };
}
