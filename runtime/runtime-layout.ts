// Every path of the runtime's state under $BERTH_ROOT is built here, from validated ids, digests
// and names only (the same rule as storage/layout.ts).
import { join } from 'node:path';
import { berthRoot } from '../client/paths.js';
import { parseDigest } from '../oci/digest.js';

const ID_RE = /^[0-9a-f]{64}$/;
// docker's container name rule (daemon/names: [a-zA-Z0-9][a-zA-Z0-9_.-]+).
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export function isContainerId(s: string): boolean {
  return ID_RE.test(s);
}
export function isContainerName(s: string): boolean {
  return NAME_RE.test(s) && s.length <= 128;
}

/** $BERTH_ROOT, shared with the client's image store (one definition: client/paths.ts). */
export { berthRoot };

/**
 * <root>/
 *   layers/<alg>/<hex>/         an unpacked layer (overlay lower dir), named by its blob digest
 *   layers/tmp/                 layers being unpacked (renamed into place when complete)
 *   containers/<id>/            config.json, state.json, upper/, work/, rootfs/ (mount point), log
 *   names/<name>                symlink to the container id: names are claimed atomically
 *   seccomp/<alg>-<hex>-libseccomp-<version>.bpf   a resolved seccomp profile, compiled (helper.cc)
 *   networks/state.json, networks/lock              networks and endpoints (network-store.ts)
 */
export class RuntimeLayout {
  constructor(readonly root: string = berthRoot()) {}
  get layersDir(): string {
    return join(this.root, 'layers');
  }
  get layersTmpDir(): string {
    return join(this.root, 'layers', 'tmp');
  }
  layerDir(digest: string): string {
    const { algorithm, encoded } = parseDigest(digest);
    return join(this.layersDir, algorithm, encoded);
  }
  get containersDir(): string {
    return join(this.root, 'containers');
  }
  get namesDir(): string {
    return join(this.root, 'names');
  }
  /** Compiled seccomp filters, by the digest of the resolved profile (the helper adds a suffix). */
  seccompFilter(digest: string): string {
    const { algorithm, encoded } = parseDigest(digest);
    return join(this.root, 'seccomp', `${algorithm}-${encoded}`);
  }
  containerDir(id: string): string {
    if (!isContainerId(id)) throw new Error(`not a container id: ${id}`);
    return join(this.containersDir, id);
  }
  namePath(name: string): string {
    if (!isContainerName(name)) throw new Error(`invalid container name ${JSON.stringify(name)}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    return join(this.namesDir, name);
  }
}
