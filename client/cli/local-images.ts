// Verbs over the local image store only (no network): images, tag, rmi, inspect, history,
// image prune (and image ls|rm|inspect|history|tag), system df. Flags: bin/commands.ts.
import { inspectTemplateError, writeInspect } from './inspect-output.js';
import { runVerb, ExitCode } from './common.js';
import { LocalImageStore, danglingImages, imageId, imageSize, shortId } from '../store/image-store.js';
import type { ImageRecord, IndexDocument } from '../store/image-index.js';
import { familiarRepository, parseReference } from '../../oci/reference.js';
import { humanSize } from '../progress.js';
import { writeStdout } from './stdout.js';
// --format's engine (./format.js) is imported only when a verb is given --format: start-up time counts.
type Format = typeof import('./format.js');

function ago(iso: string | undefined): string {
  if (!iso) return 'N/A';
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return 'N/A';
  const s = Math.max(0, (Date.now() - t) / 1000);
  const units: Array<[number, string]> = [
    [365 * 86400, 'year'],
    [30 * 86400, 'month'],
    [7 * 86400, 'week'],
    [86400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
  ];
  for (const [n, u] of units) {
    const v = Math.floor(s / n);
    if (v >= 1) return `${v === 1 && u === 'hour' ? 'About an' : v} ${u}${v > 1 ? 's' : ''} ago`;
  }
  return 'Less than a second ago'.replace('Less than a second', s >= 1 ? `${Math.floor(s)} seconds` : 'Less than a second');
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('').trimEnd()).join('\n') + '\n';
}

interface Row {
  repo: string;
  tag: string;
  digest: string;
  record: ImageRecord;
  shown: ImageRecord;
}

function rowsOf(store: LocalImageStore, doc: IndexDocument, all: boolean): Row[] {
  const rows: Row[] = [];
  for (const [name, target] of Object.entries(doc.tags)) {
    const record = doc.images[target];
    if (!record) continue;
    const ref = parseReference(name);
    const shown = store.platformImage(record, doc) ?? record;
    const digest = record.repoDigests.find((d) => d.startsWith(`${ref.registry}/${ref.repository}@`))?.split('@')[1] ?? '<none>';
    rows.push({ repo: familiarRepository(ref), tag: ref.tag ?? '<none>', digest, record, shown });
  }
  const extra = all ? Object.values(doc.images).filter((r) => !Object.values(doc.tags).includes(r.digest)) : danglingImages(doc);
  for (const r of extra) {
    const rd = r.repoDigests[0];
    rows.push({ repo: rd ? familiarRepository(parseReference(rd.split('@')[0]!, { defaultTag: false })) : '<none>', tag: '<none>', digest: rd?.split('@')[1] ?? '<none>', record: r, shown: r });
  }
  return rows.sort((a, b) => (b.shown.created ?? '').localeCompare(a.shown.created ?? '') || a.repo.localeCompare(b.repo) || a.tag.localeCompare(b.tag));
}

/** Turns a docker reference pattern (Go's path.Match: `*` and `?` stop at `/`) into a RegExp. */
function globRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${body}$`);
}

/**
 * docker's `images --filter KEY=VALUE`: values of one key OR, different keys AND. Supported:
 * dangling=true|false, reference=PATTERN (REPO or REPO:TAG, globbing as docker), before=IMAGE,
 * since=IMAGE (created before / after that image).
 */
function imageFilter(specs: string[], rows: Row[]): (r: Row) => boolean {
  const byKey = new Map<string, string[]>();
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    if (eq <= 0) throw new Error(`bad format of filter (expected name=value): ${JSON.stringify(spec)}`);
    const key = spec.slice(0, eq).toLowerCase();
    if (!['dangling', 'reference', 'before', 'since'].includes(key)) throw new Error(`invalid filter '${key}' (berth supports dangling, reference, before and since)`);
    byKey.set(key, [...(byKey.get(key) ?? []), spec.slice(eq + 1)]);
  }
  const created = (image: string): string => {
    const ref = image.includes(':') || image.includes('/') ? image : `${image}:latest`;
    const hit = rows.find((r) => `${r.repo}:${r.tag}` === ref || `${r.repo}:${r.tag}` === image || imageId(r.shown).replace('sha256:', '').startsWith(image.replace('sha256:', '')));
    if (!hit) throw new Error(`No such image: ${image}`);
    return hit.shown.created ?? '';
  };
  const tests: Array<(r: Row) => boolean> = [];
  for (const [key, values] of byKey) {
    if (key === 'dangling') {
      const want = values.map((v) => {
        if (v !== 'true' && v !== 'false' && v !== '1' && v !== '0') throw new Error(`invalid filter 'dangling=${v}'`);
        return v === 'true' || v === '1';
      });
      tests.push((r) => want.includes(r.tag === '<none>'));
    } else if (key === 'reference') {
      const patterns = values.map(globRegExp);
      // An image without a name (<none>) matches no reference.
      tests.push((r) => r.repo !== '<none>' && patterns.some((p) => p.test(r.repo) || (r.tag !== '<none>' && p.test(`${r.repo}:${r.tag}`))));
    } else {
      const bounds = values.map(created);
      tests.push((r) => bounds.every((b) => (key === 'before' ? (r.shown.created ?? '') < b : (r.shown.created ?? '') > b)));
    }
  }
  return (r) => tests.every((t) => t(r));
}

/** docker's image list headers (cli/command/formatter/image.go). */
const IMAGE_HEADERS = {
  ID: 'IMAGE ID',
  Repository: 'REPOSITORY',
  Tag: 'TAG',
  Digest: 'DIGEST',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  Size: 'SIZE',
  Containers: 'CONTAINERS',
  VirtualSize: 'VIRTUAL SIZE',
  SharedSize: 'SHARED SIZE',
  UniqueSize: 'UNIQUE SIZE',
};

/** docker's `*formatter.imageContext`: what `images --format` reads. */
function imageContext(f: Format, r: Row, id: string, doc: IndexDocument) {
  const { formatContext, goTimeString, humanDuration } = f;
  const size = humanSize(imageSize(r.shown, doc));
  return formatContext('*formatter.imageContext', {
    Containers: 'N/A',
    CreatedAt: r.shown.created ? goTimeString(r.shown.created) : '',
    CreatedSince: r.shown.created ? `${humanDuration(Date.now() - Date.parse(r.shown.created))} ago` : 'N/A',
    Digest: r.digest,
    ID: id,
    Repository: r.repo,
    SharedSize: 'N/A',
    Size: size,
    Tag: r.tag,
    UniqueSize: 'N/A',
    VirtualSize: size,
  });
}

export async function images(filter: string | undefined, o: { all?: boolean; quiet?: boolean; digests?: boolean; trunc: boolean; filter: string[]; format?: string }): Promise<number> {
  return runVerb('images', async () => {
      const store = await LocalImageStore.open();
      const doc = await store.index.read();
      let rows = rowsOf(store, doc, Boolean(o.all));
      if (o.filter.length > 0) rows = rows.filter(imageFilter(o.filter, rows));
      if (filter) {
        const f = parseReference(filter, { defaultTag: false });
        rows = rows.filter((r) => r.repo === familiarRepository(f) && (f.tag === undefined || r.tag === f.tag));
      }
      const id = (r: Row) => (o.trunc ? shortId(imageId(r.shown)) : imageId(r.shown));
      if (o.format !== undefined && o.format !== '' && !(o.quiet && o.format === 'table')) {
        const defaultTable = `table {{.Repository}}\\t{{.Tag}}\\t${o.digests ? '{{.Digest}}\\t' : ''}{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}`;
        const fmt = await import('./format.js');
        const contexts = rows.map((r) => imageContext(fmt, r, id(r), doc));
        const code = fmt.writeFormatted(() => fmt.formatList(o.format!, contexts, { headers: IMAGE_HEADERS, defaultTable, style: 'list' }));
        if (code !== 0) throw new ExitCode(code);
        return;
      }
      if (o.quiet) {
        writeStdout([...new Set(rows.map(id))].map((s) => s + '\n').join(''));
        return;
      }
      const head = ['REPOSITORY', 'TAG', ...(o.digests ? ['DIGEST'] : []), 'IMAGE ID', 'CREATED', 'SIZE'];
      writeStdout(table([head, ...rows.map((r) => [r.repo, r.tag, ...(o.digests ? [r.digest] : []), id(r), ago(r.shown.created), humanSize(imageSize(r.shown, doc))])]));
  });
}

export async function tag(src: string, dst: string): Promise<number> {
  return runVerb('tag', async () => {
      const target = parseReference(dst);
      if (target.digest) throw new Error(`refusing to create a tag with a digest reference: ${dst}`);
      const store = await LocalImageStore.open();
      await store.tag(src, target);
  });
}

export async function rmi(inputs: string[], o: { force?: boolean }): Promise<number> {
  return runVerb('rmi', async () => {
      const store = await LocalImageStore.open();
      const { lines, errors } = await store.remove(inputs, Boolean(o.force));
      writeStdout(lines.map((l) => l + '\n').join(''));
      for (const e of errors) process.stderr.write(`berth rmi: ${e}\n`);
      if (errors.length > 0) throw new ExitCode(1);
  });
}

/** docker inspect's shape for an image. */
async function inspectObject(store: LocalImageStore, doc: IndexDocument, record: ImageRecord): Promise<Record<string, unknown>> {
  const shown = store.platformImage(record, doc) ?? record;
  const tags = Object.entries(doc.tags)
    .filter(([, d]) => d === record.digest)
    .map(([t]) => {
      const r = parseReference(t);
      return `${familiarRepository(r)}:${r.tag}`;
    });
  const cfg = shown.config ? await store.config(shown) : undefined;
  return {
    Id: imageId(shown),
    RepoTags: tags,
    RepoDigests: record.repoDigests,
    Created: cfg?.created ?? '',
    Author: cfg?.author ?? '',
    Config: cfg?.config ?? null,
    Architecture: cfg?.architecture ?? '',
    ...(cfg?.variant ? { Variant: cfg.variant } : {}),
    Os: cfg?.os ?? '',
    Size: imageSize(shown, doc),
    RootFS: { Type: cfg?.rootfs?.type ?? 'layers', Layers: cfg?.rootfs?.diff_ids ?? [] },
    Descriptor: { mediaType: record.mediaType, digest: record.digest },
    ...(shown !== record ? { Platform: shown.platform, PlatformManifest: shown.digest } : {}),
    Manifest: await store.manifest(shown),
    Metadata: { LastTagTime: record.added },
  };
}

export async function inspect(inputs: string[], o: { format?: string }): Promise<number> {
  return runVerb('inspect', async () => {
      const templateError = await inspectTemplateError(o.format);
      if (templateError !== undefined) throw new ExitCode(templateError);
      const store = await LocalImageStore.open();
      const doc = await store.index.read();
      const out: Array<Record<string, unknown>> = [];
      const errors: string[] = [];
      for (const input of inputs) {
        try {
          out.push(await inspectObject(store, doc, (await store.resolve(input, doc)).record));
        } catch (e) {
          errors.push(`No such object: ${input}`);
          void e;
        }
      }
      let code = errors.length > 0 ? 1 : 0;
      code = Math.max(code, await writeInspect(out, o.format));
      for (const e of errors) process.stderr.write(`berth inspect: ${e}\n`);
      if (code !== 0) throw new ExitCode(code);
  });
}

const HISTORY_HEADERS = { ID: 'IMAGE', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', CreatedBy: 'CREATED BY', Size: 'SIZE', Comment: 'COMMENT' };

export async function history(input: string, o: { trunc: boolean; quiet?: boolean; format?: string }): Promise<number> {
  return runVerb('history', async () => {
      const store = await LocalImageStore.open();
      const doc = await store.index.read();
      const { record } = await store.resolve(input, doc);
      const img = store.platformImage(record, doc);
      if (!img) throw new Error(`${input}: no image for this platform is stored`);
      const cfg = await store.config(img);
      const layers = [...(img.layers ?? [])];
      const entries = (cfg.history ?? []).map((h) => ({ ...h, size: h.empty_layer ? 0 : (layers.shift()?.size ?? 0) }));
      entries.reverse();
      const id = o.trunc ? shortId(imageId(img)) : imageId(img);
      if (o.format !== undefined && o.format !== '') {
        const { formatContext, formatList, humanDuration, writeFormatted } = await import('./format.js');
        const contexts = entries.map((h, i) => {
          const by = (h.created_by ?? '').replace(/\t/g, ' ');
          return formatContext('*image.historyContext', {
            ID: i === 0 ? id : '<missing>',
            CreatedSince: h.created ? `${humanDuration(Date.now() - Date.parse(h.created))} ago` : 'N/A',
            CreatedAt: h.created ? new Date(h.created).toISOString().replace(/\.\d+Z$/, 'Z') : '',
            CreatedBy: o.trunc && [...by].length > 45 ? [...by].slice(0, 44).join('') + '…' : by,
            Size: humanSize(h.size),
            Comment: h.comment ?? '',
          });
        });
        const code = writeFormatted(() => formatList(o.format!, contexts, { headers: HISTORY_HEADERS, defaultTable: 'table {{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}', style: 'list' }));
        if (code !== 0) throw new ExitCode(code);
        return;
      }
      if (o.quiet) {
        writeStdout(entries.map((_, i) => (i === 0 ? id : '<missing>') + '\n').join(''));
        return;
      }
      const rows = entries.map((h, i) => {
        const by = (h.created_by ?? '').replace(/\s+/g, ' ');
        return [i === 0 ? id : '<missing>', ago(h.created), o.trunc && by.length > 45 ? by.slice(0, 44) + '…' : by, humanSize(h.size), h.comment ?? ''];
      });
      writeStdout(table([['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'], ...rows]));
  });
}

const ORPHAN_GRACE_MS = 60 * 60 * 1000;

export async function prune(o: { all?: boolean }): Promise<number> {
  return runVerb('image prune', async () => {
      const store = await LocalImageStore.open();
      const deleted: string[] = [];
      const freed = await store.index.update(async (doc) => {
        const victims = o.all ? Object.values(doc.images) : danglingImages(doc);
        if (o.all) doc.tags = {};
        const candidates: string[] = [];
        const removeTree = (r: ImageRecord) => {
          if (!doc.images[r.digest]) return;
          delete doc.images[r.digest];
          deleted.push(imageId(r));
          candidates.push(r.digest, ...(r.config ? [r.config.digest] : []), ...(r.layers ?? []).map((l) => l.digest));
          for (const c of r.children ?? []) if (doc.images[c]) removeTree(doc.images[c]!);
        };
        for (const v of victims) removeTree(v);
        // The removed images' blobs, and blobs left unnamed by a crashed command (an hour old:
        // a younger one may be a pull in progress that names it when done).
        return store.dropUnreferencedBlobs(doc, [...candidates, ...(await store.orphanBlobs(doc, ORPHAN_GRACE_MS))]);
      });
      if (deleted.length > 0) writeStdout(`Deleted Images:\n${deleted.map((d) => `deleted: ${d}\n`).join('')}\n`);
      writeStdout(`Total reclaimed space: ${humanSize(freed)}\n`);
  });
}

/** `berth system df`: the local image store's disk use. */
export async function systemDf(o: { format?: string } = {}): Promise<number> {
  return runVerb('system df', async () => {
    const store = await LocalImageStore.open();
    const doc = await store.index.read();
    const all = await store.allBlobs();
    let total = 0;
    for (const b of all) total += (await store.blobs.size(b)) ?? 0;
    const dangling = new Set(danglingImages(doc).map((r) => r.digest));
    const used = new Set<string>();
    for (const r of Object.values(doc.images)) if (!dangling.has(r.digest)) for (const b of [r.digest, r.config?.digest, ...(r.layers ?? []).map((l) => l.digest)]) if (b) used.add(b);
    let reclaimable = 0;
    for (const b of all) if (!used.has(b)) reclaimable += (await store.blobs.size(b)) ?? 0;
    const count = Object.values(doc.images).filter((r) => !Object.values(doc.images).some((p) => p.children?.includes(r.digest))).length;
    const pct = total > 0 ? ` (${Math.round((reclaimable / total) * 100)}%)` : '';
    if (o.format !== undefined && o.format !== '') {
      const { formatContext, formatList, writeFormatted } = await import('./format.js');
      const row = formatContext('*formatter.diskUsageImagesContext', { Type: 'Images', TotalCount: String(count), Active: '0', Size: humanSize(total), Reclaimable: `${humanSize(reclaimable)}${pct}` });
      const code = writeFormatted(() =>
        formatList(o.format!, [row], {
          headers: { Type: 'TYPE', TotalCount: 'TOTAL', Active: 'ACTIVE', Size: 'SIZE', Reclaimable: 'RECLAIMABLE' },
          defaultTable: 'table {{.Type}}\\t{{.TotalCount}}\\t{{.Active}}\\t{{.Size}}\\t{{.Reclaimable}}',
          style: 'list',
        }),
      );
      if (code !== 0) throw new ExitCode(code);
      return;
    }
    writeStdout(table([
      ['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'],
      ['Images', String(count), '0', humanSize(total), `${humanSize(reclaimable)}${pct}`],
    ]));
  });
}

