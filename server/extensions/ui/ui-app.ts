// The web UI's request handling: which page a path is, who is looking (a session cookie of the
// registry's own users, or anyone when --auth is none), what they may see and delete by the same
// rules as the API, and the POST actions (login, logout, delete) with CSRF checks.
import type { Middleware } from 'koa';
import { RegistryError } from '../../../oci/errors.js';
import { isValidRepositoryName, isValidTag } from '../../../oci/names.js';
import { isValidDigest, looksLikeDigest } from '../../../oci/digest.js';
import type { TagPushCursor } from '../../../storage/registry-metadata.js';
import type { RegistryContext, RegistryState, Viewer } from '../../context.js';
import { findRepositories, normaliseTerm } from '../../repository-search.js';
import { readBoundedBody } from '../../request-body.js';
import type { ExtensionContext } from '../extension.js';
import { SCRIPT, STYLE } from './assets.js';
import type { Html } from './html.js';
import { ImageSummaries, parseManifestDoc, readConfig } from './image-summary.js';
import { imagePage, listPage, listResults, loginPage, messagePage, page, repositoryPage, type Chrome } from './pages.js';
import { CSRF_COOKIE, newCsrfToken, sameToken, SESSION_COOKIE, SESSION_MS, Sessions } from './session.js';

const LIST_PAGE = 50;
const TAG_PAGE = 50;
const FORM_LIMIT = 16 * 1024;
const SAFE_HOST = /^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;

/** Security headers of every UI answer: no inline script, no framing, nothing from elsewhere. */
function secure(ctx: RegistryContext): void {
  ctx.set('Content-Security-Policy', "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'same-origin');
  ctx.set('X-Frame-Options', 'DENY');
}

/** A path to come back to after login: local only (never `//host` or a scheme). */
function localPath(v: unknown): string {
  return typeof v === 'string' && /^\/(?![/\\])[\x21-\x7e]*$/.test(v) ? v : '/';
}

/** `/r/<name>`, `/r/<name>:<tag>` or `/r/<name>@<digest>`. */
function parseRepoPath(rest: string): { name: string; tag?: string; digest?: string } | undefined {
  let name = rest;
  let tag: string | undefined;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    name = rest.slice(0, at);
    digest = rest.slice(at + 1);
    if (!isValidDigest(digest)) return undefined;
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon >= 0 && !rest.slice(colon).includes('/')) {
      name = rest.slice(0, colon);
      tag = rest.slice(colon + 1);
      if (!isValidTag(tag)) return undefined;
    }
  }
  if (!isValidRepositoryName(name)) return undefined;
  return { name, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

function parseCursor(v: unknown): TagPushCursor | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^(\d{1,15})-(.+)$/.exec(v);
  return m && isValidTag(m[2]!) ? { pushed: Number(m[1]), tag: m[2]! } : undefined;
}

export async function createUiApp(x: ExtensionContext): Promise<Middleware<RegistryState>> {
  const { store, config, access } = x;
  const sessions = await Sessions.load(config.data);
  const summaries = new ImageSummaries(store);
  const auth = access !== undefined;
  // Deletes through the UI follow the API's rules: deletion enabled, not a mirror, `delete` granted.
  const deletable = config.delete && !config.proxy;
  const everything: Viewer = { mayDelete: () => true };

  const cookieOpts = (ctx: RegistryContext, maxAge?: number) => ({ httpOnly: true, sameSite: 'strict' as const, secure: ctx.protocol === 'https', path: '/', overwrite: true, ...(maxAge !== undefined ? { maxAge } : {}) });

  const accountOf = async (ctx: RegistryContext): Promise<string | undefined> => {
    const account = access ? sessions.read(ctx.cookies.get(SESSION_COOKIE)) : undefined;
    return account !== undefined && (await access!.knows(account)) ? account : undefined;
  };
  const viewerOf = (account: string | undefined): Viewer => (access ? access.viewer(account) : everything);
  const visible = (v: Viewer, name: string) => !v.canPull || v.canPull(name);

  const csrfOf = (ctx: RegistryContext): string => {
    let t = ctx.cookies.get(CSRF_COOKIE);
    if (!t || !/^[0-9a-f]{32}$/.test(t)) {
      t = newCsrfToken();
      ctx.cookies.set(CSRF_COOKIE, t, cookieOpts(ctx));
    }
    return t;
  };

  const chromeOf = (ctx: RegistryContext, account: string | undefined): Chrome => ({
    host: SAFE_HOST.test(ctx.host) ? ctx.host : new URL(`http://${config.listen}`).host,
    ...(account !== undefined ? { account } : {}),
    auth,
    csrf: csrfOf(ctx),
    here: ctx.originalUrl,
  });

  const send = (ctx: RegistryContext, status: number, title: string, chrome: Chrome, body: Html): void => {
    ctx.status = status;
    ctx.type = 'text/html; charset=utf-8';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = page(title, chrome, body);
  };

  const notFound = (ctx: RegistryContext, chrome: Chrome, what: string): void => send(ctx, 404, 'Not found', chrome, messagePage('Not found', `${what} is not in this registry, or you may not see it.`));

  /** A form POST from one of our pages: same origin, the CSRF cookie's token echoed in the form. */
  const readForm = async (ctx: RegistryContext): Promise<URLSearchParams | undefined> => {
    const origin = ctx.get('Origin');
    if (origin && origin !== 'null' && new URL(origin).host !== ctx.host) return undefined;
    if (!/^application\/x-www-form-urlencoded\b/i.test(ctx.get('Content-Type'))) return undefined;
    const body = await readBoundedBody(ctx, FORM_LIMIT, () => new RegistryError('SIZE_INVALID', 'form too large', { status: 413 }));
    const form = new URLSearchParams(body.toString('utf8'));
    return sameToken(form.get('csrf') ?? undefined, ctx.cookies.get(CSRF_COOKIE)) ? form : undefined;
  };

  const forbidden = (ctx: RegistryContext, chrome: Chrome): void => send(ctx, 403, 'Refused', chrome, messagePage('Refused', 'This form is stale or came from another site: reload the page and try again.'));

  async function listRoute(ctx: RegistryContext, viewer: Viewer, chrome: Chrome): Promise<void> {
    const q = normaliseTerm(typeof ctx.query.q === 'string' ? ctx.query.q.slice(0, 255) : '');
    const rawPage = typeof ctx.query.page === 'string' && /^\d{1,6}$/.test(ctx.query.page) ? Number(ctx.query.page) : 1;
    const pageNo = Math.max(1, rawPage);
    const found = await findRepositories(store.meta, q, { offset: (pageNo - 1) * LIST_PAGE, limit: LIST_PAGE, canPull: viewer.canPull, pullPrefixes: viewer.pullPrefixes });
    const newest = await store.meta.newestTags(found.names);
    const rows = found.names.map((name) => {
      const latest = newest.get(name);
      return latest ? { name, latest } : { name };
    });
    const results = listResults(q, pageNo, LIST_PAGE, found.total, rows);
    if (ctx.query.partial === '1') {
      ctx.type = 'text/html; charset=utf-8';
      ctx.set('Cache-Control', 'no-store');
      ctx.body = results.text;
      return;
    }
    send(ctx, 200, 'Repositories', chrome, listPage(q, results));
  }

  async function repositoryRoute(ctx: RegistryContext, viewer: Viewer, chrome: Chrome, name: string): Promise<void> {
    const after = parseCursor(ctx.query.after);
    const tags = await store.meta.recentTags(name, TAG_PAGE + 1, after);
    const more = tags.length > TAG_PAGE;
    const shown = tags.slice(0, TAG_PAGE);
    const rows = await Promise.all(shown.map(async (tag) => ({ tag, ...(await summaries.get(name, tag.digest).then((s) => (s ? { summary: s } : {}))) })));
    const last = shown[shown.length - 1];
    const deleted = typeof ctx.query.deleted === 'string' && (isValidTag(ctx.query.deleted) || isValidDigest(ctx.query.deleted)) ? ctx.query.deleted : undefined;
    send(ctx, 200, name, chrome, repositoryPage(chrome, name, rows, {
      first: after === undefined,
      mayDelete: deletable && viewer.mayDelete(name),
      ...(more && last ? { next: `${last.pushed}-${last.tag}` } : {}),
      ...(deleted ? { notice: `Deleted ${deleted}.` } : {}),
      // One read of the namespace's counter (storage/quota.ts), never a walk of its content.
      usage: await store.namespaceUsageOf(name),
    }));
  }

  async function imageRoute(ctx: RegistryContext, viewer: Viewer, chrome: Chrome, name: string, ref: { tag?: string; digest?: string }): Promise<void> {
    const reference = ref.digest ?? ref.tag!;
    let m;
    try {
      m = await store.getManifest(name, reference);
    } catch (e) {
      if (e instanceof RegistryError) return notFound(ctx, chrome, `${name}${ref.digest ? '@' : ':'}${reference}`);
      throw e;
    }
    let doc;
    try {
      doc = parseManifestDoc(m.bytes);
    } catch {
      doc = {};
    }
    const [summary, cfg, referrers] = await Promise.all([summaries.get(name, m.digest), readConfig(store, name, doc), store.referrers(name, m.digest)]);
    send(ctx, 200, `${name}${ref.tag ? `:${ref.tag}` : ''}`, chrome, imagePage(chrome, {
      name,
      ...(ref.tag ? { tag: ref.tag } : {}),
      digest: m.digest,
      mediaType: m.mediaType,
      size: m.size,
      doc,
      ...(summary ? { summary } : {}),
      ...(cfg ? { config: cfg } : {}),
      referrers,
      mayDelete: deletable && viewer.mayDelete(name),
    }));
  }

  async function loginRoute(ctx: RegistryContext): Promise<void> {
    const chrome = chromeOf(ctx, await accountOf(ctx));
    if (!access) return send(ctx, 404, 'Not found', chrome, messagePage('No login', 'This registry runs without authentication: everyone sees everything.'));
    if (ctx.method === 'GET') return send(ctx, 200, 'Log in', chrome, loginPage(localPath(ctx.query.next), chrome.csrf));
    const form = await readForm(ctx);
    if (!form) return forbidden(ctx, chrome);
    const next = localPath(form.get('next'));
    const user = form.get('user') ?? '';
    const password = form.get('password') ?? '';
    let ok = false;
    try {
      ok = user !== '' && (await access.login(ctx.req.socket.remoteAddress, user, password));
    } catch (e) {
      if (e instanceof RegistryError && e.code === 'TOOMANYREQUESTS') {
        const wait = (e as RegistryError & { retryAfter?: number }).retryAfter;
        if (wait !== undefined) ctx.set('Retry-After', String(wait));
        return send(ctx, 429, 'Log in', chrome, loginPage(next, chrome.csrf, e.message));
      }
      throw e;
    }
    if (!ok) return send(ctx, 401, 'Log in', chrome, loginPage(next, chrome.csrf, 'Wrong user name or password.'));
    ctx.cookies.set(SESSION_COOKIE, sessions.issue(user), cookieOpts(ctx, SESSION_MS));
    ctx.status = 303;
    ctx.redirect(next);
  }

  async function deleteRoute(ctx: RegistryContext, viewer: Viewer, chrome: Chrome): Promise<void> {
    const form = await readForm(ctx);
    if (!form) return forbidden(ctx, chrome);
    const name = form.get('name') ?? '';
    const reference = form.get('reference') ?? '';
    if (!isValidRepositoryName(name) || !visible(viewer, name) || !(isValidTag(reference) || isValidDigest(reference))) return notFound(ctx, chrome, 'That repository');
    if (!deletable || !viewer.mayDelete(name)) {
      return send(ctx, 403, 'Refused', chrome, messagePage('Refused', !deletable ? 'Deletion is disabled on this registry.' : `${viewer.account ?? 'Anonymous users'} may not delete in ${name}.`));
    }
    try {
      if (looksLikeDigest(reference)) await store.deleteManifest(name, reference);
      else await store.deleteTag(name, reference);
    } catch (e) {
      if (e instanceof RegistryError) return notFound(ctx, chrome, `${name} ${reference}`);
      throw e;
    }
    x.log.info({ repository: name, reference, user: viewer.account }, 'deleted through the web UI');
    ctx.status = 303;
    ctx.redirect(`/r/${name}?deleted=${encodeURIComponent(reference)}`);
  }

  return async (koa) => {
    const ctx = koa as unknown as RegistryContext;
    secure(ctx);
    const path = ctx.path;
    if (path === '/ui/static/app.css' || path === '/ui/static/app.js') {
      ctx.type = path.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8';
      ctx.set('Cache-Control', 'public, max-age=3600');
      ctx.body = path.endsWith('.css') ? STYLE : SCRIPT;
      return;
    }
    if (path === '/favicon.ico') {
      ctx.status = 204;
      return;
    }
    const isPost = ctx.method === 'POST';
    if (!isPost && ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.status = 405;
      ctx.set('Allow', 'GET, HEAD, POST');
      ctx.body = 'method not allowed\n';
      return;
    }
    if (path === '/ui/login') return loginRoute(ctx);
    const account = await accountOf(ctx);
    const chrome = chromeOf(ctx, account);
    if (path === '/ui/logout' && isPost) {
      if (!(await readForm(ctx))) return forbidden(ctx, chrome);
      ctx.cookies.set(SESSION_COOKIE, '', cookieOpts(ctx, 0));
      ctx.status = 303;
      ctx.redirect('/');
      return;
    }
    const viewer = viewerOf(account);
    // Nothing to show to an anonymous visitor of a registry without anonymous pull: log in first.
    if (auth && account === undefined && viewer.canPull && !isPost) {
      ctx.status = 303;
      ctx.redirect(`/ui/login?next=${encodeURIComponent(localPath(ctx.originalUrl))}`);
      return;
    }
    if (path === '/ui/delete' && isPost) return deleteRoute(ctx, viewer, chrome);
    if (isPost) {
      ctx.status = 405;
      ctx.set('Allow', 'GET, HEAD');
      ctx.body = 'method not allowed\n';
      return;
    }
    if (path === '/') return listRoute(ctx, viewer, chrome);
    if (path.startsWith('/r/')) {
      let rest: string;
      try {
        rest = decodeURIComponent(path.slice(3));
      } catch {
        return notFound(ctx, chrome, 'That page');
      }
      const p = parseRepoPath(rest.replace(/\/+$/, ''));
      if (!p || !visible(viewer, p.name) || !(await store.repositoryExists(p.name))) return notFound(ctx, chrome, p ? p.name : 'That repository');
      if (p.tag || p.digest) return imageRoute(ctx, viewer, chrome, p.name, p);
      return repositoryRoute(ctx, viewer, chrome, p.name);
    }
    return notFound(ctx, chrome, 'That page');
  };
}
