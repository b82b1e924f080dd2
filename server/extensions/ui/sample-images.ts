// Images pushed over the registry API by the UI's tests, screenshots and benchmark: an image with
// a full config (entrypoint, cmd, env, labels, ports, history), a multi-platform index, and
// artifacts that refer to a manifest (a signature, an SBOM). Layers are random bytes: the
// registry stores content, it does not unpack it.
import { createHash, randomBytes } from 'node:crypto';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';

export interface PushTarget {
  url: string;
  /** An Authorization header value for every request. */
  authorization?: string;
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function call(t: PushTarget, method: string, path: string, body?: Buffer, type?: string): Promise<Response> {
  const headers: Record<string, string> = {};
  if (t.authorization) headers.Authorization = t.authorization;
  if (type) headers['Content-Type'] = type;
  const res = await fetch(`${t.url}${path}`, { method, headers, ...(body ? { body: new Uint8Array(body) } : {}) });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
  return res;
}

export async function pushBlob(t: PushTarget, name: string, bytes: Buffer): Promise<{ digest: string; size: number }> {
  const digest = sha256(bytes);
  await call(t, 'POST', `/v2/${name}/blobs/uploads/?digest=${encodeURIComponent(digest)}`, bytes, 'application/octet-stream');
  return { digest, size: bytes.length };
}

export async function pushManifest(t: PushTarget, name: string, ref: string, doc: object, mediaType = OCI_MANIFEST): Promise<{ digest: string; size: number }> {
  const bytes = Buffer.from(JSON.stringify(doc));
  await call(t, 'PUT', `/v2/${name}/manifests/${ref}`, bytes, mediaType);
  return { digest: sha256(bytes), size: bytes.length };
}

export interface SampleImage {
  os?: string;
  architecture?: string;
  variant?: string;
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  labels?: Record<string, string>;
  ports?: string[];
  layerSizes?: number[];
}

/** An image manifest with a config and random layers; tagged `tag` (or pushed by digest when undefined). */
export async function pushImage(t: PushTarget, name: string, tag: string | undefined, s: SampleImage = {}): Promise<{ digest: string; size: number }> {
  const layers = [];
  const history = [];
  for (const [i, n] of (s.layerSizes ?? [2048, 512]).entries()) {
    layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...(await pushBlob(t, name, randomBytes(n))) });
    history.push({ created: '2026-11-20T10:00:00Z', created_by: i === 0 ? 'ADD rootfs.tar.gz / # buildkit' : `RUN step ${i} # buildkit` });
  }
  history.push({ created: '2026-11-20T10:00:01Z', created_by: 'CMD ["sh"]', empty_layer: true });
  const config = {
    created: '2026-11-20T10:00:01Z',
    os: s.os ?? 'linux',
    architecture: s.architecture ?? 'amd64',
    ...(s.variant ? { variant: s.variant } : {}),
    config: {
      ...(s.entrypoint ? { Entrypoint: s.entrypoint } : {}),
      Cmd: s.cmd ?? ['sh'],
      Env: s.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      ...(s.labels ? { Labels: s.labels } : {}),
      ...(s.ports ? { ExposedPorts: Object.fromEntries(s.ports.map((p) => [p, {}])) } : {}),
      WorkingDir: '/',
    },
    rootfs: { type: 'layers', diff_ids: layers.map(() => `sha256:${randomBytes(32).toString('hex')}`) },
    history,
  };
  const cfg = await pushBlob(t, name, Buffer.from(JSON.stringify(config)));
  const doc = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, ...cfg }, layers };
  // Untagged: pushed by its own digest.
  return pushManifest(t, name, tag ?? sha256(Buffer.from(JSON.stringify(doc))), doc);
}

/** An index of images for several platforms, each pushed by digest first. */
export async function pushIndex(t: PushTarget, name: string, tag: string, platforms: SampleImage[]): Promise<{ digest: string; size: number }> {
  const manifests = [];
  for (const p of platforms) {
    const m = await pushImage(t, name, undefined, p);
    manifests.push({ mediaType: OCI_MANIFEST, ...m, platform: { os: p.os ?? 'linux', architecture: p.architecture ?? 'amd64', ...(p.variant ? { variant: p.variant } : {}) } });
  }
  return pushManifest(t, name, tag, { schemaVersion: 2, mediaType: OCI_INDEX, manifests }, OCI_INDEX);
}

/** An artifact whose subject is `subject` (a signature, an SBOM), pushed by digest. */
export async function pushReferrer(t: PushTarget, name: string, subject: { digest: string; size: number }, artifactType: string, annotations: Record<string, string> = {}): Promise<{ digest: string; size: number }> {
  const empty = await pushBlob(t, name, Buffer.from('{}'));
  const payload = await pushBlob(t, name, randomBytes(300));
  const doc = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType,
    config: { mediaType: 'application/vnd.oci.empty.v1+json', ...empty },
    layers: [{ mediaType: 'application/octet-stream', ...payload }],
    subject: { mediaType: OCI_MANIFEST, ...subject },
    annotations: { 'org.opencontainers.image.created': '2026-11-21T08:00:00Z', ...annotations },
  };
  return pushManifest(t, name, sha256(Buffer.from(JSON.stringify(doc))), doc);
}
