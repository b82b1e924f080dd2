// The UI's pages as server-rendered HTML (html.ts escapes every value). Each view takes plain
// data; ui-app.ts reads the store and checks access.
import { ago, formatBytes, html, isoTime, shortDigest, type Html } from './html.js';
import type { NamespaceUsage } from '../../../storage/quota.js';
import type { ImageConfig, ImageSummary, ManifestDoc } from './image-summary.js';
import { platformName } from './image-summary.js';
import type { Descriptor } from '../../../oci/manifest.js';
import type { TagPush } from '../../../storage/registry-metadata.js';

export interface Chrome {
  /** host:port as the browser reached the registry: what `docker pull` needs. */
  host: string;
  account?: string;
  /** Whether logging in is possible (--auth htpasswd|token). */
  auth: boolean;
  csrf: string;
  /** The path to come back to after a login. */
  here: string;
}

export function page(title: string, chrome: Chrome, body: Html): string {
  const who = chrome.auth
    ? chrome.account
      ? html`<span class="muted">${chrome.account}</span>
          <form class="inline" method="post" action="/ui/logout"><input type="hidden" name="csrf" value="${chrome.csrf}"><button class="link" type="submit">Log out</button></form>`
      : html`<a href="/ui/login?next=${encodeURIComponent(chrome.here)}">Log in</a>`
    : html``;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Berth</title><link rel="stylesheet" href="/ui/static/app.css"><link rel="icon" href="data:,"></head>
<body><header class="top"><a class="brand" href="/">Berth</a><span class="host">${chrome.host}</span><span class="who">${who}</span></header>
<main>${body}</main><script src="/ui/static/app.js" defer></script></body></html>`.text;
}

export interface ListRow {
  name: string;
  latest?: TagPush;
}

export function listResults(q: string, pageNo: number, pageSize: number, total: number, rows: ListRow[]): Html {
  const pages = Math.max(1, Math.ceil(total / pageSize));
  const link = (p: number) => `/?${new URLSearchParams({ ...(q ? { q } : {}), ...(p > 1 ? { page: String(p) } : {}) }).toString()}`;
  const table = rows.length
    ? html`<div class="scroll"><table class="repos"><thead><tr><th>Repository</th><th>Newest tag</th><th>Pushed</th></tr></thead><tbody>
        ${rows.map(
          (r) => html`<tr><td><a href="/r/${r.name}">${r.name}</a></td><td>${r.latest ? html`<a href="/r/${r.name}:${r.latest.tag}">${r.latest.tag}</a>` : html`<span class="muted">none</span>`}</td>
            <td title="${r.latest ? isoTime(r.latest.pushed) : ''}">${r.latest ? ago(r.latest.pushed) : ''}</td></tr>`,
        )}
      </tbody></table></div>`
    : html`<p class="muted">${q ? html`No repository matches <code>${q}</code>.` : 'No repositories yet: push one.'}</p>`;
  return html`<p class="muted count">${total} ${total === 1 ? 'repository' : 'repositories'}${q ? html` matching <code>${q}</code>` : ''}</p>
    ${table}
    ${pages > 1
      ? html`<nav class="pager">${pageNo > 1 ? html`<a rel="prev" href="${link(pageNo - 1)}">← Previous</a>` : html`<span></span>`}<span class="muted">page ${pageNo} of ${pages}</span>${pageNo < pages ? html`<a rel="next" href="${link(pageNo + 1)}">Next →</a>` : html`<span></span>`}</nav>`
      : ''}`;
}

export function listPage(q: string, results: Html): Html {
  return html`<h1>Repositories</h1>
    <form class="search" method="get" action="/" role="search"><input type="search" name="q" value="${q}" placeholder="Filter repositories" aria-label="Filter repositories" autocomplete="off"><button type="submit">Filter</button></form>
    <div id="results">${results}</div>`;
}

function pullLine(id: string, command: string): Html {
  return html`<div class="pull"><input type="text" id="${id}" value="${command}" readonly aria-label="command"><button type="button" data-copy="${id}">Copy</button></div>`;
}

function deleteForm(csrf: string, name: string, reference: string, label: string, confirm: string): Html {
  return html`<form class="inline" method="post" action="/ui/delete" data-confirm="${confirm}"><input type="hidden" name="csrf" value="${csrf}"><input type="hidden" name="name" value="${name}"><input type="hidden" name="reference" value="${reference}"><button class="danger" type="submit">${label}</button></form>`;
}

export interface TagRow {
  tag: TagPush;
  summary?: ImageSummary;
}

/** The storage its namespace uses (docs/server.md#quotas), against its quota when it has one. */
function usageLine(u: NamespaceUsage): Html {
  if (u.limitBytes === undefined) return html`<p class="muted usage">Namespace <code>${u.namespace}</code> uses ${formatBytes(u.usedBytes)}.</p>`;
  const pct = u.limitBytes > 0 ? Math.min(100, Math.round((u.usedBytes / u.limitBytes) * 100)) : 100;
  return html`<p class="muted usage">Namespace <code>${u.namespace}</code> uses ${formatBytes(u.usedBytes)} of its ${formatBytes(u.limitBytes)} quota (${String(pct)}%) <meter min="0" max="${String(u.limitBytes)}" value="${String(u.usedBytes)}" high="${String(Math.floor(u.limitBytes * 0.9))}"></meter></p>`;
}

export function repositoryPage(c: Chrome, name: string, rows: TagRow[], opts: { next?: string; first: boolean; mayDelete: boolean; notice?: string; usage?: NamespaceUsage }): Html {
  const newest = rows[0]?.tag.tag;
  return html`<div class="crumbs"><a href="/">Repositories</a> /</div><h1>${name}</h1>
    ${opts.usage ? usageLine(opts.usage) : ''}
    ${opts.notice ? html`<div class="notice">${opts.notice}</div>` : ''}
    ${newest && opts.first ? html`${pullLine('pull-docker', `docker pull ${c.host}/${name}:${newest}`)}${pullLine('pull-berth', `berth pull ${c.host}/${name}:${newest}`)}` : ''}
    <h2>Tags</h2>
    ${rows.length
      ? html`<div class="scroll"><table class="tags"><thead><tr><th>Tag</th><th class="wide">Digest</th><th class="num">Size</th><th>Platforms</th><th>Pushed</th>${opts.mayDelete ? html`<th></th>` : ''}</tr></thead><tbody>
        ${rows.map(
          (r) => html`<tr><td><a href="/r/${name}:${r.tag.tag}">${r.tag.tag}</a></td><td class="wide"><a class="mono" href="/r/${name}@${r.tag.digest}">${shortDigest(r.tag.digest)}</a></td>
          <td class="num">${r.summary ? formatBytes(r.summary.size) : '?'}</td><td>${r.summary ? (r.summary.platforms.length ? r.summary.platforms.join(', ') : r.summary.kind === 'artifact' ? html`<span class="muted">artifact</span>` : html`<span class="muted">–</span>`) : '?'}</td>
          <td title="${isoTime(r.tag.pushed)}">${ago(r.tag.pushed)}</td>${opts.mayDelete ? html`<td>${deleteForm(c.csrf, name, r.tag.tag, 'Delete', `Delete tag ${r.tag.tag}? The image stays if other tags or digests name it.`)}</td>` : ''}</tr>`,
        )}
      </tbody></table></div>`
      : html`<p class="muted">No tags.</p>`}
    <nav class="pager">${opts.first ? html`<span></span>` : html`<a href="/r/${name}">← Newest</a>`}${opts.next ? html`<a rel="next" href="/r/${name}?after=${encodeURIComponent(opts.next)}">Older →</a>` : html`<span></span>`}</nav>`;
}

export interface ImageView {
  name: string;
  /** The tag the page was opened by, if any. */
  tag?: string;
  digest: string;
  mediaType: string;
  size: number;
  doc: ManifestDoc;
  summary?: ImageSummary;
  config?: ImageConfig;
  referrers: Descriptor[];
  mayDelete: boolean;
  notice?: string;
}

function kv(entries: Array<[string, Html | string | undefined]>): Html {
  const shown = entries.filter(([, v]) => v !== undefined && v !== '');
  return shown.length ? html`<dl class="facts">${shown.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>` : html`<p class="muted">none</p>`;
}

function words(list: string[] | null | undefined): Html | undefined {
  return list && list.length ? html`<code>${JSON.stringify(list)}</code>` : undefined;
}

export function imagePage(c: Chrome, v: ImageView): Html {
  const ref = v.tag ? `${v.name}:${v.tag}` : `${v.name}@${v.digest}`;
  const cfg = v.config?.config ?? {};
  const isIndex = Array.isArray(v.doc.manifests);
  const groups = new Map<string, Descriptor[]>();
  for (const r of v.referrers) {
    const t = r.artifactType ?? r.mediaType;
    groups.set(t, [...(groups.get(t) ?? []), r]);
  }
  return html`<div class="crumbs"><a href="/">Repositories</a> / <a href="/r/${v.name}">${v.name}</a> /</div>
    <h1>${v.tag ? `${v.name}:${v.tag}` : `${v.name}@${shortDigest(v.digest)}`}</h1>
    ${v.notice ? html`<div class="notice error">${v.notice}</div>` : ''}
    ${pullLine('pull-docker', `docker pull ${c.host}/${ref}`)}
    ${pullLine('pull-digest', `docker pull ${c.host}/${v.name}@${v.digest}`)}
    ${pullLine('pull-berth', `berth pull ${c.host}/${ref}`)}
    <h2>Manifest</h2>
    ${kv([
      ['Digest', html`<code>${v.digest}</code>`],
      ['Media type', html`<code>${v.mediaType}</code>`],
      ['Kind', v.summary?.kind ?? (isIndex ? 'index' : 'image')],
      ['Artifact type', v.doc.artifactType ? html`<code>${v.doc.artifactType}</code>` : undefined],
      ['Platforms', v.summary?.platforms.join(', ')],
      ['Size', v.summary ? `${formatBytes(v.summary.size)} (manifest ${formatBytes(v.size)})` : formatBytes(v.size)],
      ['Subject', v.doc.subject ? html`<a class="mono" href="/r/${v.name}@${v.doc.subject.digest}">${v.doc.subject.digest}</a>` : undefined],
      ['Created', v.config?.created],
    ])}
    ${v.mayDelete
      ? html`<p>${v.tag ? deleteForm(c.csrf, v.name, v.tag, `Delete tag ${v.tag}`, `Delete tag ${v.tag}?`) : ''}
        ${deleteForm(c.csrf, v.name, v.digest, 'Delete manifest', `Delete manifest ${shortDigest(v.digest)} and every tag of ${v.name} pointing at it?`)}</p>`
      : ''}
    ${isIndex
      ? html`<h2>Platforms</h2><div class="scroll"><table class="platforms"><thead><tr><th>Platform</th><th>Digest</th><th class="num">Manifest size</th></tr></thead><tbody>
          ${(v.doc.manifests ?? []).map(
            (m) => html`<tr><td>${platformName(m.platform) ?? html`<span class="muted">${m.annotations?.['vnd.docker.reference.type'] ?? 'unknown'}</span>`}</td><td><a class="mono" href="/r/${v.name}@${m.digest}">${shortDigest(m.digest)}</a></td><td class="num">${formatBytes(m.size)}</td></tr>`,
          )}</tbody></table></div>`
      : html`<h2>Layers</h2>
        ${(v.doc.layers ?? []).length
          ? html`<div class="scroll"><table class="layers"><thead><tr><th>#</th><th>Digest</th><th class="wide">Media type</th><th class="num">Size</th></tr></thead><tbody>
            ${(v.doc.layers ?? []).map((l, i) => html`<tr><td>${i + 1}</td><td><code>${shortDigest(l.digest)}</code></td><td class="wide"><code>${l.mediaType}</code></td><td class="num">${formatBytes(l.size)}</td></tr>`)}
            </tbody></table></div>`
          : html`<p class="muted">none</p>`}
        <h2>Config</h2>
        ${v.config
          ? kv([
              ['Platform', platformName(v.config)],
              ['Entrypoint', words(cfg.Entrypoint)],
              ['Cmd', words(cfg.Cmd)],
              ['Working dir', cfg.WorkingDir ? html`<code>${cfg.WorkingDir}</code>` : undefined],
              ['User', cfg.User ? html`<code>${cfg.User}</code>` : undefined],
              ['Env', cfg.Env?.length ? html`${cfg.Env.map((e) => html`<div><code>${e}</code></div>`)}` : undefined],
              ['Exposed ports', cfg.ExposedPorts && Object.keys(cfg.ExposedPorts).length ? html`${Object.keys(cfg.ExposedPorts).map((p) => html`<span class="tag">${p}</span>`)}` : undefined],
              ['Labels', cfg.Labels && Object.keys(cfg.Labels).length ? html`${Object.entries(cfg.Labels).map(([k, val]) => html`<div><code>${k}=${val}</code></div>`)}` : undefined],
            ])
          : html`<p class="muted">${v.doc.config ? html`Config <code>${v.doc.config.mediaType}</code> (${formatBytes(v.doc.config.size)}) is not an image config or is not stored here.` : 'none'}</p>`}
        ${v.config?.history?.length
          ? html`<h2>History</h2><div class="scroll"><table class="history"><thead><tr><th>Created</th><th>Step</th></tr></thead><tbody>
            ${v.config.history.map((h) => html`<tr><td class="muted">${h.created ? h.created.slice(0, 19).replace('T', ' ') : ''}</td><td><code>${h.created_by ?? h.comment ?? ''}</code>${h.empty_layer ? html` <span class="tag">no layer</span>` : ''}</td></tr>`)}
            </tbody></table></div>`
          : ''}`}
    <h2>Referrers</h2>
    ${groups.size
      ? html`${[...groups].map(
          ([type, list]) => html`<h3 class="mono">${type}</h3><div class="scroll"><table class="referrers"><thead><tr><th>Digest</th><th class="num">Size</th><th class="wide">Annotations</th></tr></thead><tbody>
            ${list.map((r) => html`<tr><td><a class="mono" href="/r/${v.name}@${r.digest}">${shortDigest(r.digest)}</a></td><td class="num">${formatBytes(r.size)}</td><td class="wide">${Object.entries(r.annotations ?? {}).map(([k, val]) => html`<div><code>${k}=${val}</code></div>`)}</td></tr>`)}
            </tbody></table></div>`,
        )}`
      : html`<p class="muted">No signatures, SBOMs or other artifacts refer to this manifest.</p>`}`;
}

export function loginPage(next: string, csrf: string, error?: string): Html {
  return html`<form class="login" method="post" action="/ui/login"><h1>Log in</h1>
    ${error ? html`<div class="notice error">${error}</div>` : ''}
    <input type="hidden" name="csrf" value="${csrf}"><input type="hidden" name="next" value="${next}">
    <input type="text" name="user" placeholder="User" aria-label="User" autocomplete="username" required autofocus>
    <input type="password" name="password" placeholder="Password" aria-label="Password" autocomplete="current-password" required>
    <button class="primary" type="submit">Log in</button>
    <p class="muted">The registry's own users, as for <code>docker login</code>.</p></form>`;
}

export function messagePage(title: string, text: string): Html {
  return html`<h1>${title}</h1><p>${text}</p><p><a href="/">All repositories</a></p>`;
}
