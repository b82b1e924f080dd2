// The web UI in a real browser: Debian's chromium driven by playwright-core (nothing downloads a
// browser) against registries started here, with images pushed over the API. Clicks through
// list → repository → image → delete, the live filter and paging, login and logout with the
// registry's own users, and what a user may not see (list, URL, /v1/search). With
// BERTH_UI_SCREENSHOTS=DIR, every page is also saved there at a desktop and a phone width
// (docs/ui/ is made this way: BERTH_UI_SCREENSHOTS=docs/ui).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startTestRegistry, type TestRegistry } from '../../testing.js';
import { sh } from '../../test-images.js';
import { DEFAULT_AUTH, DEFAULT_LIMIT } from '../../auth/config.js';
import { pushImage, pushIndex, pushReferrer } from './sample-images.js';

const CHROMIUM = process.env.BERTH_CHROMIUM ?? '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} not installed (apt-get install chromium; .ci/run does)`;
const SHOTS = process.env.BERTH_UI_SCREENSHOTS;
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 860 };
const D = `sha256:${'1'.repeat(64)}`;
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

/** Saves the page at both widths when screenshots were asked for. */
async function shoot(page: Page, name: string): Promise<void> {
  if (!SHOTS) return;
  await mkdir(SHOTS, { recursive: true });
  await page.setViewportSize(DESKTOP);
  await page.screenshot({ path: join(SHOTS, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize(PHONE);
  await page.screenshot({ path: join(SHOTS, `${name}-phone.png`), fullPage: true });
  await page.setViewportSize(DESKTOP);
}

describe('web UI in chromium', { skip: skip ?? false, timeout: 180_000 }, () => {
  let browser: Browser;
  let work: string;
  let open: TestRegistry;
  let guarded: TestRegistry;
  let app: { digest: string; size: number };

  before(async () => {
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    work = await mkdtemp(join(tmpdir(), 'berth-ui-'));

    open = await startTestRegistry();
    const t = { url: open.url };
    await pushImage(t, 'team/app', '1.0', { layerSizes: [3_000_000, 40_000] });
    app = await pushImage(t, 'team/app', '1.1', {
      entrypoint: ['/usr/local/bin/app'],
      cmd: ['serve', '--port', '8080'],
      env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'APP_MODE=production'],
      labels: { 'org.opencontainers.image.source': 'https://git.example/team/app', 'org.opencontainers.image.version': '1.1' },
      ports: ['8080/tcp', '9090/tcp'],
      layerSizes: [3_000_000, 40_000, 1_200],
    });
    await pushReferrer(t, 'team/app', app, 'application/vnd.dev.cosign.artifact.sig.v1+json', { 'dev.sigstore.cosign/signer': 'ci@example' });
    await pushReferrer(t, 'team/app', app, 'application/spdx+json');
    await pushIndex(t, 'team/web', 'latest', [{ architecture: 'amd64' }, { architecture: 'arm64', variant: 'v8' }, { architecture: 'arm', variant: 'v7' }]);
    await pushImage(t, 'tools/busybox', 'stable');
    // Many repositories, for the filter and the pager.
    for (let i = 0; i < 120; i++) await open.store.meta.linkBlob(`bulk/repo-${String(i).padStart(3, '0')}`, D, 1);

    const users = join(work, 'users');
    await sh('htpasswd', ['-B', '-c', '-b', users, 'alice', 'alice-pw']);
    await sh('htpasswd', ['-B', '-b', users, 'bob', 'bob-pw']);
    const acl = join(work, 'acl.json');
    await writeFile(acl, JSON.stringify({ access: [{ account: 'alice', name: 'team/*', actions: ['*'] }, { account: 'bob', name: 'team/*', actions: ['pull'] }, { account: 'bob', name: 'secret/*', actions: ['pull'] }] }));
    guarded = await startTestRegistry({ auth: { ...DEFAULT_AUTH, mode: 'htpasswd', htpasswd: users, acl, limit: { ...DEFAULT_LIMIT, failures: 1000 } } });
    const g = { url: guarded.url, authorization: basic('alice', 'alice-pw') };
    await pushImage(g, 'team/app', 'v1');
    await pushImage(g, 'team/lib', 'v2');
    await pushImage({ url: guarded.url, authorization: basic('bob', 'bob-pw') }, 'secret/plans', 'v1').catch(() => undefined); // bob may not push: seeded below
    await guarded.store.meta.linkBlob('secret/plans', D, 1);
  });

  after(async () => {
    await browser?.close();
    await open?.destroy();
    await guarded?.destroy();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const fresh = async (): Promise<{ ctx: BrowserContext; page: Page }> => {
    const ctx = await browser.newContext({ viewport: DESKTOP });
    return { ctx, page: await ctx.newPage() };
  };

  it('list → repository → image → delete a tag, then the manifest', async () => {
    const { ctx, page } = await fresh();
    const host = new URL(open.url).host;
    const fetched: string[] = [];
    ctx.on('request', (r) => fetched.push(r.url()));
    await page.goto(open.url + '/');
    assert.equal(await page.title(), 'Repositories · Berth');
    assert.match((await page.textContent('.count'))!, /^123 repositories/);
    assert.equal(await page.locator('table.repos tbody tr').count(), 50);
    await page.fill('input[name=q]', 'team');
    await page.waitForFunction(() => document.querySelectorAll('table.repos tbody tr').length === 2);
    assert.equal(new URL(page.url()).search, '?q=team', 'the filter is in the address bar');
    await shoot(page, 'list');
    await page.click('text=team/app');
    await page.waitForURL(/\/r\/team\/app$/);
    // Tags newest first, with digest, size and platform.
    const rows = page.locator('table.tags tbody tr');
    assert.deepEqual(await rows.locator('td:first-child').allTextContents(), ['1.1', '1.0']);
    assert.match((await rows.nth(1).textContent())!, /2\.9 MiB.*linux\/amd64/s);
    // Each row: the short digest linking to the image by digest, and when it was pushed.
    assert.equal(await rows.nth(0).locator('td:nth-child(2) a').getAttribute('href'), `/r/team/app@${app.digest}`);
    assert.equal((await rows.nth(0).locator('td:nth-child(2)').textContent())!.trim(), `sha256:${app.digest.slice(7, 19)}`);
    assert.match((await rows.nth(0).locator('td:nth-child(5)').textContent())!, /^(just now|\d+ seconds? ago)$/);
    assert.ok(Math.abs(Date.parse((await rows.nth(0).locator('td:nth-child(5)').getAttribute('title'))!) - Date.now()) < 120_000, 'the exact push time in the title');
    assert.equal(await page.inputValue('#pull-docker'), `docker pull ${host}/team/app:1.1`);
    await shoot(page, 'repository');
    await page.click('table.tags >> text=1.1');
    await page.waitForURL(/\/r\/team\/app:1\.1$/);
    const text = (await page.textContent('main'))!;
    for (const want of ['/usr/local/bin/app', '["serve","--port","8080"]', 'APP_MODE=production', '8080/tcp', '9090/tcp', 'org.opencontainers.image.version=1.1', 'RUN step 2', 'application/vnd.dev.cosign.artifact.sig.v1+json', 'application/spdx+json', 'dev.sigstore.cosign/signer=ci@example', app.digest]) {
      assert.ok(text.includes(want), `image page shows ${want}`);
    }
    assert.equal(await page.locator('table.layers tbody tr').count(), 3);
    assert.equal(await page.inputValue('#pull-berth'), `berth pull ${host}/team/app:1.1`);
    assert.equal(await page.inputValue('#pull-digest'), `docker pull ${host}/team/app@${app.digest}`);
    await shoot(page, 'image');
    // Delete the tag (the confirmation is accepted): back on the repository, the tag is gone, in the API too.
    page.once('dialog', (d) => void d.accept());
    await page.click('button:has-text("Delete tag 1.1")');
    await page.waitForURL(/\/r\/team\/app\?deleted=1\.1$/);
    assert.match((await page.textContent('.notice'))!, /Deleted 1\.1/);
    assert.deepEqual(await page.locator('table.tags tbody td:first-child').allTextContents(), ['1.0']);
    assert.equal((await fetch(`${open.url}/v2/team/app/manifests/1.1`)).status, 404);
    assert.equal((await fetch(`${open.url}/v2/team/app/manifests/${app.digest}`)).status, 200, 'the manifest stays');
    // Then the manifest, from its digest page; a dismissed confirmation deletes nothing.
    await page.goto(`${open.url}/r/team/app@${app.digest}`);
    page.once('dialog', (d) => void d.dismiss());
    await page.click('button:has-text("Delete manifest")');
    assert.equal((await fetch(`${open.url}/v2/team/app/manifests/${app.digest}`)).status, 200);
    page.once('dialog', (d) => void d.accept());
    await page.click('button:has-text("Delete manifest")');
    await page.waitForURL(/deleted=sha256/);
    assert.equal((await fetch(`${open.url}/v2/team/app/manifests/${app.digest}`)).status, 404);
    // Everything the pages loaded came from the registry itself: no CDN, no font, no tracker.
    assert.ok(fetched.length > 8);
    assert.deepEqual(fetched.filter((u) => new URL(u).origin !== open.url), []);
    await ctx.close();
  });

  it('an index shows its platforms and links each image; the pager walks 120 repositories', async () => {
    const { ctx, page } = await fresh();
    await page.goto(`${open.url}/r/team/web:latest`);
    assert.deepEqual(await page.locator('table.platforms tbody td:first-child').allTextContents(), ['linux/amd64', 'linux/arm64/v8', 'linux/arm/v7']);
    await shoot(page, 'index');
    await page.click('table.platforms tbody tr:nth-child(2) a');
    await page.waitForURL(/\/r\/team\/web@sha256:/);
    assert.match((await page.textContent('main'))!, /linux\/arm64\/v8/);
    await page.goto(`${open.url}/?q=bulk`);
    assert.match((await page.textContent('.pager'))!, /page 1 of 3/);
    await page.click('a[rel=next]');
    await page.waitForURL(/page=2/);
    assert.equal(await page.locator('table.repos tbody td:first-child').first().textContent(), 'bulk/repo-050');
    // Phone width: the table still fits (no horizontal overflow of the page).
    await page.setViewportSize(PHONE);
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), 'no sideways scrolling on a phone');
    await ctx.close();
  });

  it('a forged delete (no CSRF token, another origin) is refused and deletes nothing', async () => {
    const res = await fetch(`${open.url}/ui/delete`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://evil.example' }, body: 'name=tools/busybox&reference=stable&csrf=x' });
    assert.equal(res.status, 403);
    const noToken = await fetch(`${open.url}/ui/delete`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=tools/busybox&reference=stable' });
    assert.equal(noToken.status, 403);
    assert.equal((await fetch(`${open.url}/v2/tools/busybox/manifests/stable`)).status, 200);
  });

  it('with --auth htpasswd: log in and out; a user sees only what it may pull, in the list, by URL and in /v1/search', async () => {
    const { ctx, page } = await fresh();
    await page.goto(guarded.url + '/');
    await page.waitForURL(/\/ui\/login\?next=%2F$/);
    await shoot(page, 'login');
    await page.fill('input[name=user]', 'bob');
    await page.fill('input[name=password]', 'wrong');
    await page.click('button:has-text("Log in")');
    assert.match((await page.textContent('.notice'))!, /Wrong user name or password/);
    await page.fill('input[name=user]', 'alice');
    await page.fill('input[name=password]', 'alice-pw');
    await page.click('button:has-text("Log in")');
    await page.waitForURL(guarded.url + '/');
    assert.equal((await page.textContent('.who .muted'))!.trim(), 'alice');
    assert.deepEqual(await page.locator('table.repos tbody td:first-child').allTextContents(), ['team/app', 'team/lib']);
    await page.goto(`${guarded.url}/r/secret/plans`);
    assert.match((await page.textContent('main'))!, /Not found/);
    await page.goto(`${guarded.url}/r/team/app`);
    assert.equal(await page.locator('button.danger').count(), 1, 'alice may delete');
    await page.click('button:has-text("Log out")');
    await page.waitForURL(/\/ui\/login/);
    await page.goto(`${guarded.url}/r/team/app`);
    await page.waitForURL(/\/ui\/login\?next=%2Fr%2Fteam%2Fapp$/);
    // bob may pull team/* and secret/*, delete nothing.
    await page.fill('input[name=user]', 'bob');
    await page.fill('input[name=password]', 'bob-pw');
    await page.click('button:has-text("Log in")');
    await page.waitForURL(`${guarded.url}/r/team/app`);
    assert.equal(await page.locator('button.danger').count(), 0, 'bob may not delete');
    await page.goto(guarded.url + '/');
    assert.deepEqual(await page.locator('table.repos tbody td:first-child').allTextContents(), ['secret/plans', 'team/app', 'team/lib']);
    // A delete bob's page never offered, posted with his valid session and token, is refused.
    const csrf = (await ctx.cookies()).find((c) => c.name === 'berth_csrf')!.value;
    const refused = await page.evaluate(async (token) => (await fetch('/ui/delete', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `name=team/app&reference=v1&csrf=${token}` })).status, csrf);
    assert.equal(refused, 403);
    assert.equal((await fetch(`${guarded.url}/v2/team/app/manifests/v1`, { headers: { authorization: basic('alice', 'alice-pw') } })).status, 200);
    await ctx.close();
    // alice, through the search endpoint: secret/plans is not there either.
    const s = (await (await fetch(`${guarded.url}/v1/search?q=`, { headers: { authorization: basic('alice', 'alice-pw') } })).json()) as { results: Array<{ name: string }> };
    assert.deepEqual(s.results.map((r) => r.name), ['team/app', 'team/lib']);
    // A forged session cookie is no login.
    const forged = await fetch(`${guarded.url}/`, { redirect: 'manual', headers: { cookie: `berth_session=${Buffer.from(JSON.stringify({ u: 'alice', e: Date.now() + 1e6 })).toString('base64url')}.AAAA` } });
    assert.equal(forged.status, 303);
  });

  it('with --auth token: the same login form (the token service’s users), the same rules, and a logout', async () => {
    const users = join(work, 'users');
    const acl = join(work, 'acl.json');
    const token = await startTestRegistry({ auth: { ...DEFAULT_AUTH, mode: 'token', htpasswd: users, acl, limit: { ...DEFAULT_LIMIT, failures: 1000 } } });
    const { ctx, page } = await fresh();
    try {
      for (const n of ['team/app', 'secret/plans', 'other/thing']) await token.store.meta.linkBlob(n, D, 1);
      await page.goto(token.url + '/');
      await page.waitForURL(/\/ui\/login\?next=%2F$/);
      await page.fill('input[name=user]', 'bob');
      await page.fill('input[name=password]', 'bob-pw');
      await page.click('button:has-text("Log in")');
      await page.waitForURL(token.url + '/');
      assert.equal((await page.textContent('.who .muted'))!.trim(), 'bob');
      assert.deepEqual(await page.locator('table.repos tbody td:first-child').allTextContents(), ['secret/plans', 'team/app']);
      await page.goto(`${token.url}/r/other/thing`);
      assert.match((await page.textContent('main'))!, /Not found/);
      await page.click('button:has-text("Log out")');
      await page.waitForURL(/\/ui\/login/);
      await page.goto(`${token.url}/r/team/app`);
      await page.waitForURL(/\/ui\/login\?next=%2Fr%2Fteam%2Fapp$/);
    } finally {
      await ctx.close();
      await token.destroy();
    }
  });

  it('--no-ui: / and the UI paths are the API’s 404', async () => {
    const off = await startTestRegistry({ ui: false });
    try {
      for (const p of ['/', '/r/team/app', '/ui/static/app.css']) {
        const res = await fetch(off.url + p);
        assert.equal(res.status, 404, p);
        assert.equal(((await res.json()) as { errors: Array<{ code: string }> }).errors[0]!.code, 'UNSUPPORTED');
      }
    } finally {
      await off.destroy();
    }
  });
});
