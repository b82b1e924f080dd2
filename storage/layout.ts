// Every path under the data folder is built here, from already-validated digests and upload ids,
// so no request-supplied string is ever joined into a path anywhere else.
import { join } from 'node:path';
import { parseDigest } from '../oci/digest.js';

const UPLOAD_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isUploadId(id: string): boolean {
  return UPLOAD_ID_RE.test(id);
}

/**
 * <root>/
 *   blobs/<alg>/<first two hex>/<hex>   content, immutable, named by digest
 *   uploads/<uuid>                      bytes of an upload session in progress
 *   tmp/                                temp files of atomic writes (same filesystem as blobs/)
 *   meta/                               LevelDB: repositories, tags, links, sessions, referrers
 */
export class DataLayout {
  readonly root: string;
  constructor(root: string) {
    this.root = root;
  }
  get blobsDir(): string {
    return join(this.root, 'blobs');
  }
  get uploadsDir(): string {
    return join(this.root, 'uploads');
  }
  get tmpDir(): string {
    return join(this.root, 'tmp');
  }
  get metaDir(): string {
    return join(this.root, 'meta');
  }
  blobPath(digest: string): string {
    const { algorithm, encoded } = parseDigest(digest);
    return join(this.blobsDir, algorithm, encoded.slice(0, 2), encoded);
  }
  uploadPath(id: string): string {
    if (!isUploadId(id)) throw new Error(`not an upload id: ${id}`);
    return join(this.uploadsDir, id);
  }
}
