// Test support: builds OCI image layouts offline from busybox-static (Debian package), with layers
// made entry by entry so tests can craft whiteouts and hostile tars (`../` paths).
import { createReadStream } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { digestOf, parseDigest } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';
import type { ImageRunConfig } from '../oci/image.js';

export const BUSYBOX = '/bin/busybox';

export interface Entry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  content?: string;
  /** Host file streamed as the content. */
  fromFile?: string;
  linkname?: string;
  mode?: number;
}

const APPLETS = ['sh', 'ls', 'cat', 'echo', 'ps', 'hostname', 'sleep', 'dd', 'id', 'seq', 'true', 'false', 'mkdir', 'touch', 'test', 'wc', 'grep', 'kill', 'head', 'env', 'pwd', 'rm', 'mount', 'stat', 'readlink', 'yes', 'httpd', 'nc', 'wget', 'ip', 'tr'];

export function busyboxLayer(): Entry[] {
  return [
    { name: 'bin/', type: 'directory', mode: 0o755 },
    { name: 'bin/busybox', fromFile: BUSYBOX, mode: 0o755 },
    ...APPLETS.map((a): Entry => ({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox' })),
    { name: 'etc/', type: 'directory', mode: 0o755 },
    { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n' },
    { name: 'etc/group', content: 'root:x:0:\nnogroup:x:65534:\napp:x:1000:\nextra:x:2000:app\n' },
    { name: 'tmp/', type: 'directory', mode: 0o1777 },
    { name: 'root/', type: 'directory', mode: 0o700 },
  ];
}

async function writeBlob(layoutDir: string, bytes: Buffer): Promise<{ digest: string; size: number }> {
  const digest = digestOf(bytes);
  const { encoded } = parseDigest(digest);
  await mkdir(join(layoutDir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(layoutDir, 'blobs', 'sha256', encoded), bytes);
  return { digest, size: bytes.length };
}

/** A gzip'd layer tar of `entries` (in order, exactly as given: no path cleaning). */
export async function layerTar(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = pipeline(pack, createGzip(), async function* (src) {
    for await (const c of src) chunks.push(c as Buffer);
  });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = { name: e.name, type, mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644), linkname: e.linkname, mtime: new Date(1_700_000_000_000) };
    if (type !== 'file') {
      pack.entry(header);
      continue;
    }
    if (e.fromFile) {
      const size = (await stat(e.fromFile)).size;
      await new Promise<void>((resolve, reject) => {
        const w = pack.entry({ ...header, size }, (err) => (err ? reject(err) : resolve()));
        createReadStream(e.fromFile!).pipe(w);
      });
    } else pack.entry(header, e.content ?? '');
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export interface TestPlatform {
  os: string;
  architecture: string;
  variant?: string;
}

/** The host's architecture in image-spec words (what buildImage records by default). */
export const HOST_ARCH = process.arch === 'x64' ? 'amd64' : process.arch;

/** Writes (or adds to) an OCI layout at `layoutDir` with an image tagged `tag`; `platform` goes in its config. */
export async function buildImage(layoutDir: string, tag: string, layers: Entry[][], config: ImageRunConfig = {}, platform: TestPlatform = { os: 'linux', architecture: HOST_ARCH }): Promise<string> {
  await mkdir(layoutDir, { recursive: true });
  await writeFile(join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const layerDescs = [];
  const diffIds = [];
  for (const entries of layers) {
    const gz = await layerTar(entries);
    const { gunzipSync } = await import('node:zlib');
    diffIds.push(digestOf(gunzipSync(gz)));
    layerDescs.push({ mediaType: MediaType.OciLayerGzip, ...(await writeBlob(layoutDir, gz)) });
  }
  const cfg = { ...platform, config: { Env: ['PATH=/bin'], ...config }, rootfs: { type: 'layers', diff_ids: diffIds } };
  const cfgDesc = { mediaType: MediaType.OciConfig, ...(await writeBlob(layoutDir, Buffer.from(JSON.stringify(cfg)))) };
  const manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: cfgDesc, layers: layerDescs };
  const mDesc = { mediaType: MediaType.OciManifest, ...(await writeBlob(layoutDir, Buffer.from(JSON.stringify(manifest)))) };
  await tagInLayout(layoutDir, tag, mDesc);
  return mDesc.digest;
}

/**
 * Adds an image index tagged `tag` to the layout at `layoutDir`, listing manifests already in it
 * (by digest, as buildImage returns them) for the given platforms: a multi-platform image.
 */
export async function buildIndex(layoutDir: string, tag: string, entries: { digest: string; platform: TestPlatform }[]): Promise<string> {
  const manifests = [];
  for (const e of entries) {
    const { size } = await stat(join(layoutDir, 'blobs', 'sha256', parseDigest(e.digest).encoded));
    manifests.push({ mediaType: MediaType.OciManifest, digest: e.digest, size, platform: e.platform });
  }
  const index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests };
  const iDesc = { mediaType: MediaType.OciIndex, ...(await writeBlob(layoutDir, Buffer.from(JSON.stringify(index)))) };
  await tagInLayout(layoutDir, tag, iDesc);
  return iDesc.digest;
}

async function tagInLayout(layoutDir: string, tag: string, desc: { mediaType: string; digest: string; size: number }): Promise<void> {
  const indexPath = join(layoutDir, 'index.json');
  const index = await readFile(indexPath, 'utf8').then((t) => JSON.parse(t) as { manifests: { annotations?: Record<string, string> }[] }, () => ({ schemaVersion: 2, manifests: [] }));
  index.manifests = index.manifests.filter((m) => m.annotations?.['org.opencontainers.image.ref.name'] !== tag);
  index.manifests.push({ ...desc, annotations: { 'org.opencontainers.image.ref.name': tag } });
  await writeFile(indexPath, JSON.stringify({ schemaVersion: 2, ...index }));
}
