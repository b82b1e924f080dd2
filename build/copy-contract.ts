// What COPY and ADD (build/copy.ts) get from the builder and give back: the seam between the
// builder's core (stages, RUN, cache, config) and the files a build reads (build/context.ts).
//
// The builder calls planCopy(step) for each COPY/ADD. The plan's `cacheInput` (a digest of
// everything the step reads: content digests of the context files or the --from files, modes,
// owners, the expanded instruction) goes into the step's cache key before anything is written;
// on a miss the builder calls `build()`, which writes the layer through writeLayer().
import type { LocalImageStore } from '../client/store/image-store.js';
import type { Instruction } from './dockerfile.js';
import type { BuiltLayer, LayerEntry } from './layer-writer.js';
import type { RootfsView } from './rootfs-view.js';
import type { Vars } from './shell-words.js';

export type { BuiltLayer, LayerEntry, RootfsView, Vars };

/** The files a build may read: a folder, or a tar from stdin unpacked to one (build/context.ts). */
export interface ContextSource {
  /** The context's root on the host (every read stays under it); undefined for a Dockerfile alone on stdin. */
  readonly dir: string | undefined;
}

export interface CopyStep {
  instruction: Instruction;
  /** The Dockerfile's escape character (`# escape`). */
  escape: string;
  /** ARGs in scope and ENV of the stage: COPY/ADD expand their words with them (shell-words.ts). */
  vars: Vars;
  /** The stage's WORKDIR: relative destinations are under it. */
  workdir: string;
  /** The stage's filesystem before this step (destination checks, --chown names via /etc/passwd and /etc/group). */
  rootfs: RootfsView;
  /**
   * COPY --from=NAME|INDEX|IMAGE: the filesystem of an earlier stage (built by then), or of an
   * image (pulled when missing). Throws the user's error for an unknown name.
   */
  from(ref: string): Promise<RootfsView>;
  context: ContextSource;
  store: LocalImageStore;
}

export interface CopyPlan {
  /** sha256 digest of what the step reads; equal inputs give equal digests across builds. */
  cacheInput: string;
  /** Writes the layer (entries sorted by path: writeLayer's reproducibility); undefined when empty. */
  build(): Promise<BuiltLayer | undefined>;
  /** Releases what planning held (mounted views); called after build() or instead of it (cache hit). */
  release(): Promise<void>;
}

/** build/copy.ts's entry point, as the builder imports it. */
export type PlanCopy = (step: CopyStep) => Promise<CopyPlan>;
