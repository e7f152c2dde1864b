/**
 * The approvals page in real headless Chromium (Debian's system chromium via playwright-core) against the real
 * stack: token sign-in, the pending list, the version page's checks and comparison, approving and watching the
 * version become Production without a reload, a non-approver's view, forged posts, keyboard-only approval.
 * Writes the README's screenshots (docs/screenshots/*.png). Skipped, with the reason printed, where Chromium
 * or playwright-core is missing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { getState } from '../src/client.js';
import { PROJECT_ROOT } from '../src/stack/embedded.js';
import { approve } from './support/identity.js';
import { browserUnavailable, launchChromium, type Page, type RunningBrowser } from './support/browser.js';
import { startUiStack, UI_TOKENS, type UiStack } from './support/ui.js';
import { eventually } from './support/worker.js';

const unavailable = await browserUnavailable();
if (unavailable) process.stdout.write(`ui-browser tests skipped: ${unavailable}\n`);

const SHOTS = join(PROJECT_ROOT, 'docs', 'screenshots');
const WAIT = { timeout: 60_000 };

describe('approvals page in headless Chromium', { skip: unavailable ?? false }, () => {
  let s: UiStack;
  let browser: RunningBrowser;
  let page: Page;
  before(async () => {
    s = await startUiStack();
    browser = await launchChromium();
    page = await browser.context.newPage();
    mkdirSync(SHOTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await s?.close();
  });

  const versionUrl = (model: string, version: number) => `${s.base}/ui/models/${encodeURIComponent(model)}/versions/${version}`;

  async function signIn(token: string): Promise<void> {
    await browser.context.clearCookies();
    await page.goto(`${s.base}/ui/`);
    await page.waitForURL(/\/ui\/login/, WAIT);
    await page.fill('#token', token);
    await page.click('form.card button[type=submit]');
    await page.waitForURL(/\/ui\/$/, WAIT);
  }

  it('when alice signs in with her token, then she sees the pending version, its checks and comparison, approves it and watches it become Production', async () => {
    // A serving version first, so the comparison has a baseline.
    const first = await s.staged({ prefix: 'fraud-detector' });
    await approve(s.env.client, first.model, first.version, { by: 'bob', via: 'test' });
    await eventually('v1 in production', async () => ((await getState(s.env.client, first.model, first.version)).phase === 'production' ? true : undefined), 60_000);
    const { model, version } = await s.staged({ model: first.model, metrics: { accuracy: 0.95, latency_p99_ms: 28 } });

    await signIn(UI_TOKENS.alice);
    await page.waitForSelector(`tr[data-model="${model}"][data-version="${version}"]`, WAIT);
    assert.equal(await page.locator('[data-testid=whoami]').textContent(), 'alice');
    await page.screenshot({ path: join(SHOTS, 'pending.png'), fullPage: true });

    await page.click(`tr[data-model="${model}"] a[href$="/versions/${version}"]`);
    await page.waitForSelector('[data-testid=checks]', WAIT);
    await page.waitForSelector('[data-testid=comparison]', WAIT);
    const cmp = (await page.locator('[data-testid=comparison]').textContent()) ?? '';
    assert.match(cmp, /Serving \(1\)/, 'compared with the serving version');
    assert.match(cmp, /accuracy/);
    assert.doesNotMatch(cmp, /accuracy\s*0\.9500\s*—/, "the serving version's own metric is shown, not a dash");
    assert.match((await page.locator('[data-testid=checks]').textContent()) ?? '', /accuracy >= 0\.9/);
    await page.screenshot({ path: join(SHOTS, 'version.png'), fullPage: true });

    await page.fill('#approve-comment', 'better accuracy, approved from the page');
    await page.click('[data-testid=approve]');
    await page.waitForURL(/done=approve/, WAIT);
    // No reload: the status fragment refreshes itself until the lifecycle reports Production.
    // (waitForSelector, not waitForFunction: the page's CSP forbids the eval the latter needs.)
    await page.waitForSelector('[data-testid=phase]:text-is("production")', { timeout: 90_000 });
    const st = await getState(s.env.client, model, version);
    assert.equal(st.approvals[0]?.via, 'ui');
    assert.equal(st.approvals[0]?.verified, true);

    await page.goto(`${s.base}/ui/models/${encodeURIComponent(model)}`);
    await page.waitForSelector('[data-testid=serving-version]', WAIT);
    assert.equal(await page.locator('[data-testid=serving-version]').textContent(), `version ${version}`);
    await page.screenshot({ path: join(SHOTS, 'model.png'), fullPage: true });
  });

  it('when a non-approver opens a pending version, then no decision button is shown and the reason is; forged posts are refused', async () => {
    const { model, version } = await s.staged();
    await signIn(UI_TOKENS.mallory);
    await page.goto(versionUrl(model, version));
    await page.waitForSelector('[data-testid=why-not]', WAIT);
    assert.equal(await page.locator('[data-testid=approve]').count(), 0);
    assert.equal(await page.locator('[data-testid=reject]').count(), 0);
    assert.match((await page.locator('[data-testid=why-not]').textContent()) ?? '', /not in the approver list/);

    // Signed in as an approver, a same-origin script post without the CSRF token…
    await signIn(UI_TOKENS.alice);
    await page.goto(versionUrl(model, version));
    await page.waitForSelector('[data-testid=approve]', WAIT);
    const forged = await page.evaluate<{ status: number; body: string }>(
      `fetch(${JSON.stringify(`/ui/models/${encodeURIComponent(model)}/versions/${version}/approve`)}, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'comment=forged' }).then(async (r) => ({ status: r.status, body: await r.text() }))`,
    );
    assert.equal(forged.status, 403);
    assert.match(forged.body, /csrf_rejected/);

    // …and a form on another site that posts to the page (the session cookie is SameSite, the token unknown).
    const target = `${s.base}/ui/models/${encodeURIComponent(model)}/versions/${version}/approve`;
    const evil: Server = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(`<form id="f" method="post" action="${target}"><input name="comment" value="csrf"></form><script>document.getElementById('f').submit()</script>`);
    });
    await new Promise<void>((r) => evil.listen(0, 'localhost', () => r()));
    try {
      const port = (evil.address() as { port: number }).port;
      await page.goto(`http://localhost:${port}/`);
      await page.waitForURL(/\/approve$/, WAIT);
      await page.waitForSelector('[data-testid=error]', WAIT);
      const code = await page.evaluate<string>("document.querySelector('[data-testid=error]').getAttribute('data-code')");
      assert.ok(code === 'unauthorized' || code === 'csrf_rejected', `refused: ${code}`);
    } finally {
      // Chromium keeps a preconnected socket that never carries a request; close() alone would wait for the
      // server's 60 s headers timeout to drop it.
      evil.closeAllConnections();
      await new Promise<void>((r) => evil.close(() => r()));
    }
    const st = await getState(s.env.client, model, version);
    assert.equal(st.approvals.length, 0, 'no forged post reached the lifecycle');
    assert.equal(st.phase, 'awaiting_approval');
  });

  it('when bob approves with the keyboard only (Tab and Enter), then his approval is recorded', async () => {
    const { model, version } = await s.staged();
    await signIn(UI_TOKENS.bob);
    await page.goto(versionUrl(model, version));
    await page.waitForSelector('[data-testid=approve]', WAIT);
    let reached = false;
    for (let i = 0; i < 60 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate<boolean>("document.activeElement?.getAttribute('data-testid') === 'approve'");
    }
    assert.ok(reached, 'the Approve button is reachable with Tab');
    await page.keyboard.press('Enter');
    await page.waitForURL(/done=approve/, WAIT);
    const st = await eventually('bob approved', async () => {
      const x = await getState(s.env.client, model, version);
      return x.approvals.length ? x : undefined;
    });
    assert.equal(st.approvals[0].by, 'bob');
    assert.equal(st.approvals[0].via, 'ui');
  });
});
