/**
 * The approvals page's OIDC sign-in in real headless Chromium: a real local issuer (oidc-provider), the
 * authorization code flow with PKCE, the issuer's own login and consent pages filled in by the browser, and then
 * the same approval an API decision would be — on the real stack. Skipped, with the reason printed, where
 * Chromium or playwright-core is missing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { getState } from '../src/client.js';
import { freePort } from '../src/stack/processes.js';
import { browserUnavailable, launchChromium, type Page, type RunningBrowser } from './support/browser.js';
import { startOidcIssuer, type TestIssuer } from './support/oidc-issuer.js';
import { startUiStack, type UiStack } from './support/ui.js';

const unavailable = await browserUnavailable();
if (unavailable) process.stdout.write(`ui-browser-oidc tests skipped: ${unavailable}\n`);

const WAIT = { timeout: 60_000 };
const CLIENT = 'modelgate-ui-browser';
const SECRET = 'ui-browser-client-secret-9c1e';

describe('approvals page: OIDC sign-in in headless Chromium', { skip: unavailable ?? false }, () => {
  let issuer: TestIssuer;
  let s: UiStack;
  let browser: RunningBrowser;
  let page: Page;
  before(async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    issuer = await startOidcIssuer({
      clients: [{ client_id: CLIENT, client_secret: SECRET, redirect_uris: [`${base}/ui/callback`] }],
      accounts: { 'idp-alice': 'alice@example.com', 'idp-zed': 'zed@nowhere.example' },
    });
    s = await startUiStack({
      port,
      env: {
        MODELGATE_OIDC_ISSUER: issuer.url,
        MODELGATE_OIDC_AUDIENCE: 'modelgate-api',
        MODELGATE_UI_PUBLIC_URL: base,
        MODELGATE_UI_OIDC_CLIENT_ID: CLIENT,
        MODELGATE_UI_OIDC_CLIENT_SECRET: SECRET,
      },
    });
    browser = await launchChromium();
    page = await browser.context.newPage();
  });
  after(async () => {
    await browser?.close();
    await s?.close();
    await issuer?.close();
  });

  /** From the page's login screen through the issuer's login and consent pages, as a person would click. */
  async function signInWithIssuer(login: string): Promise<void> {
    await browser.context.clearCookies();
    await page.goto(`${s.base}/ui/`);
    await page.waitForURL(/\/ui\/login/, WAIT);
    await page.click('a[href^="/ui/login/oidc"]');
    await page.waitForURL((u) => u.origin === issuer.url, WAIT);
    await page.fill('input[name=login]', login);
    await page.fill('input[name=password]', 'any');
    await page.click('button[type=submit]');
    // The issuer's consent page, then back to the page's callback.
    await page.waitForURL((u) => u.origin === s.base || /consent|interaction/.test(u.pathname), WAIT);
    if (new URL(page.url()).origin === issuer.url) await page.click('button[type=submit]');
    await page.waitForURL((u) => u.origin === s.base, WAIT);
  }

  it('when alice signs in through the identity provider, then she is alice on the page and her approval is attested like an API decision', async () => {
    const { model, version } = await s.staged({ prefix: 'oidc-browser' });
    await signInWithIssuer('idp-alice');
    await page.waitForSelector('[data-testid=whoami]', WAIT);
    assert.equal(await page.locator('[data-testid=whoami]').textContent(), 'alice');
    const cookie = (await browser.context.cookies(`${s.base}/ui/`)).find((c) => c.name === 'modelgate_ui');
    assert.ok(cookie, 'session cookie set');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Lax');

    await page.goto(`${s.base}/ui/models/${encodeURIComponent(model)}/versions/${version}`);
    await page.waitForSelector('[data-testid=approve]', WAIT);
    await page.fill('#approve-comment', 'approved after signing in with OIDC');
    await page.click('[data-testid=approve]');
    await page.waitForSelector('[data-testid=phase]:text-is("production")', { timeout: 90_000 });
    const st = await getState(s.env.client, model, version);
    assert.deepEqual([st.approvals[0]?.by, st.approvals[0]?.via, st.approvals[0]?.verified], ['alice', 'ui', true]);
  });

  it('when someone the identity directory does not know signs in at the provider, then the page refuses them (unknown_identity) and gives no session', async () => {
    await signInWithIssuer('idp-zed');
    await page.waitForSelector('[data-code=unknown_identity]', WAIT);
    const cookie = (await browser.context.cookies(`${s.base}/ui/`)).find((c) => c.name === 'modelgate_ui');
    assert.equal(cookie, undefined, 'no session for an unknown identity');
  });
});
