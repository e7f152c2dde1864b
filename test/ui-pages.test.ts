/**
 * The /ui pages over HTTP against the real stack (API in-process, real worker, Temporal and MLflow): sign-in,
 * redirects, cookie flags, security headers, CSRF and cross-site refusals (nothing reaches the lifecycle),
 * scope rules, escaping of everything a person or a training job can write, and a decision made on the page
 * arriving as an attested `ui` decision.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { getState } from '../src/client.js';
import { CSP, uiRoutes } from '../src/ui/routes.js';
import { SESSION_COOKIE, UiSessions } from '../src/ui/session.js';
import { Browser, hidden, startUiStack, UI_SESSION_KEY, UI_TOKENS, type UiStack } from './support/ui.js';
import { eventually } from './support/worker.js';

describe('approvals web page (/ui)', () => {
  let s: UiStack;
  before(async () => {
    s = await startUiStack();
  });
  after(async () => {
    await s?.close();
  });

  it('when nobody is signed in, then pages redirect to the login page and fragments and posts answer 401, all with the security headers', async () => {
    const b = new Browser(s.base);
    for (const path of ['/ui/', '/ui/models/m', '/ui/models/m/versions/1']) {
      const r = await b.go('GET', path);
      assert.equal(r.status, 303, path);
      assert.equal(r.location, `/ui/login?next=${encodeURIComponent(path)}`, path);
      assert.equal(r.headers['content-security-policy'], CSP, path);
      assert.equal(r.headers['x-frame-options'], 'DENY', path);
    }
    const frag = await b.go('GET', '/ui/fragments/pending');
    assert.equal(frag.status, 401);
    assert.match(frag.text, /"code":"unauthorized"/);
    const post = await b.go('POST', '/ui/models/m/versions/1/approve', { _csrf: 'x' });
    assert.equal(post.status, 401);
    const login = await b.go('GET', '/ui/login?next=//evil.example/x');
    assert.equal(login.status, 200);
    assert.equal(hidden(login.text, 'next'), '/ui/', 'an off-site next is replaced (no open redirect)');
    assert.match(String(login.headers['content-security-policy']), /frame-ancestors 'none'/);
    assert.doesNotMatch(login.text, /<script>|<script [^>]*>[^<]/, 'no inline script');
    const css = await b.go('GET', '/ui/static/ui.css');
    assert.equal(css.status, 200);
    assert.match(String(css.headers['content-type']), /text\/css/);
  });

  it('when a token signs in, then the session cookie is HttpOnly, SameSite, scoped to /ui and carries no token; a wrong token or a form from elsewhere is refused', async () => {
    const b = new Browser(s.base);
    const r = await b.signIn(UI_TOKENS.alice, '/ui/models/x');
    assert.equal(r.status, 303);
    assert.equal(r.location, '/ui/models/x');
    const set = ([] as string[]).concat(r.headers['set-cookie'] as string[] | string).find((c) => c.startsWith(`${SESSION_COOKIE}=`));
    assert.ok(set, 'session cookie set');
    assert.match(set, /HttpOnly/);
    assert.match(set, /SameSite=Lax/);
    assert.match(set, /Path=\/ui/);
    assert.doesNotMatch(set, /Secure/, 'plain HTTP without MODELGATE_UI_SECURE_COOKIES');
    assert.ok(!set.includes(UI_TOKENS.alice) && !set.includes('alice'), 'the cookie is sealed: neither token nor identity readable');
    const home = await b.go('GET', '/ui/');
    assert.equal(home.status, 200);
    assert.match(home.text, /Signed in as <strong data-testid="whoami">alice<\/strong>/);

    // A tampered cookie is no session.
    const t = new Browser(s.base);
    t.cookies.set(SESSION_COOKIE, `${b.cookies.get(SESSION_COOKIE)!.slice(0, -4)}AAAA`);
    assert.equal((await t.go('GET', '/ui/')).status, 303);
    // A cookie sealed with another key (another deployment) is no session either.
    const other = new UiSessions({ key: 'another-key-another-key-another-key-0000', secureCookies: false, ttlMs: 60_000 });
    const o = new Browser(s.base);
    o.cookies.set(SESSION_COOKIE, other.seal('session', { identity: 'alice', via: 'token', scopes: ['read', 'approve'], expiresAt: Date.now() + 60_000, issuedAt: Date.now(), csrf: 'x' }));
    assert.equal((await o.go('GET', '/ui/')).status, 303);

    const bad = await new Browser(s.base).signIn('tok-nobody-0123456789abcdef');
    assert.equal(bad.status, 401);
    assert.match(bad.text, /That token is not valid/);
    assert.ok(!bad.text.includes('tok-nobody'), 'the token is not echoed');

    const c = new Browser(s.base);
    const form = await c.go('GET', '/ui/login');
    const cross = await c.go('POST', '/ui/login', { _csrf: hidden(form.text, '_csrf'), token: UI_TOKENS.alice }, { origin: 'https://evil.example' });
    assert.equal(cross.status, 403, 'login CSRF from another site');
    const noNonce = await new Browser(s.base).go('POST', '/ui/login', { token: UI_TOKENS.alice });
    assert.equal(noNonce.status, 403, 'a login post without the form nonce');
    assert.ok(!noNonce.headers['set-cookie']?.toString().includes(`${SESSION_COOKIE}=`) || /Max-Age=0/.test(String(noNonce.headers['set-cookie'])), 'no session');
  });

  it('when MODELGATE_UI_SECURE_COOKIES is on, then the session cookie is Secure', async () => {
    const sessions = new UiSessions({ key: UI_SESSION_KEY, secureCookies: true, ttlMs: 60_000 });
    const app = (await import('fastify')).default();
    app.get('/ui/x', (req, reply) => {
      sessions.establishSession(req, reply, { identity: 'alice', via: 'token', scopes: ['read'], expiresAt: Date.now() + 3600_000 });
      return reply.send('ok');
    });
    const r = await app.inject({ method: 'GET', url: '/ui/x' });
    assert.match(String(r.headers['set-cookie']), /; Secure/);
    assert.match(String(r.headers['set-cookie']), /Max-Age=60(;|$)/, 'capped by the session TTL, not the credential');
    await app.close();
    assert.equal(typeof uiRoutes, 'function');
  });

  it('when a decision is posted without the CSRF token, with a wrong one or from another origin, then 403 csrf_rejected and the lifecycle is untouched', async () => {
    const { model, version } = await s.staged();
    const b = new Browser(s.base);
    await b.signIn(UI_TOKENS.alice);
    const pageRes = await b.go('GET', `/ui/models/${encodeURIComponent(model)}/versions/${version}`);
    assert.equal(pageRes.status, 200);
    const csrf = hidden(pageRes.text, '_csrf');
    const path = `/ui/models/${encodeURIComponent(model)}/versions/${version}/approve`;
    const cases: Array<{ name: string; form?: Record<string, string>; headers: Record<string, string> }> = [
      { name: 'no token', form: { comment: 'x' }, headers: {} },
      { name: 'wrong token', form: { _csrf: `${csrf.slice(0, -2)}xx`, comment: 'x' }, headers: {} },
      { name: 'other origin', form: { _csrf: csrf, comment: 'x' }, headers: { origin: 'https://evil.example' } },
      { name: 'null origin', form: { _csrf: csrf, comment: 'x' }, headers: { origin: 'null' } },
      { name: 'json body, no token', form: undefined, headers: { 'content-type': 'application/json' } },
    ];
    for (const c of cases) {
      const r = c.form ? await b.go('POST', path, c.form, c.headers) : await b.go('POST', path, undefined, c.headers);
      assert.equal(r.status, c.name === 'json body, no token' ? r.status : 403, c.name);
      if (c.name !== 'json body, no token') assert.match(r.text, /csrf_rejected/, c.name);
      else assert.ok(r.status === 403 || r.status === 400, `${c.name}: ${r.status}`);
    }
    const st = await getState(s.env.client, model, version);
    assert.equal(st.phase, 'awaiting_approval');
    assert.equal(st.approvals.length, 0, 'no refused post reached the lifecycle');
  });

  it('when a reject has no reason, then 400 reason_required; when a read-only or non-approver session looks, then no buttons and the reason why', async () => {
    const { model, version } = await s.staged();
    const vp = `/ui/models/${encodeURIComponent(model)}/versions/${version}`;
    const alice = new Browser(s.base);
    await alice.signIn(UI_TOKENS.alice);
    const csrf = hidden((await alice.go('GET', vp)).text, '_csrf');
    const noReason = await alice.go('POST', `${vp}/reject`, { _csrf: csrf, reason: '   ' });
    assert.equal(noReason.status, 400);
    assert.match(noReason.text, /reason_required/);

    const reader = new Browser(s.base);
    await reader.signIn(UI_TOKENS.reader);
    const rp = await reader.go('GET', vp);
    assert.equal(rp.status, 200);
    assert.doesNotMatch(rp.text, /data-testid="approve"/);
    assert.match(rp.text, /data-code="insufficient_scope"/);
    const rPost = await reader.go('POST', `${vp}/approve`, { _csrf: hidden(rp.text, '_csrf') });
    assert.equal(rPost.status, 403);
    assert.match(rPost.text, /insufficient_scope/);

    const mallory = new Browser(s.base);
    await mallory.signIn(UI_TOKENS.mallory);
    const mp = await mallory.go('GET', vp);
    assert.doesNotMatch(mp.text, /data-testid="(approve|reject)"/);
    assert.match(mp.text, /not in the approver list/);
    // Posting anyway: the workflow refuses, the page says why.
    const mPost = await mallory.go('POST', `${vp}/approve`, { _csrf: hidden(mp.text, '_csrf') });
    assert.equal(mPost.status, 403);
    assert.match(mPost.text, /unauthorized_approver/);

    const dana = new Browser(s.base);
    await dana.signIn(UI_TOKENS.dana);
    const dp = await dana.go('GET', vp);
    assert.doesNotMatch(dp.text, /data-testid="approve"/);
    assert.match(dp.text, /you registered this version \(four-eyes\)/);
    assert.equal((await getState(s.env.client, model, version)).approvals.length, 0);
  });

  it('when a model, tag, comment or reason holds markup, then every page shows it as text', async () => {
    const evil = '<script>alert(1)</script>';
    const { model, version } = await s.staged({ tags: { 'data.note': evil } });
    const b = new Browser(s.base);
    await b.signIn(UI_TOKENS.alice);
    const vp = `/ui/models/${encodeURIComponent(model)}/versions/${version}`;
    const csrf = hidden((await b.go('GET', vp)).text, '_csrf');
    const r = await b.go('POST', `${vp}/reject`, { _csrf: csrf, reason: `no ${evil} "quoted" 'single'` });
    assert.equal(r.status, 303);
    const after = await b.go('GET', vp);
    assert.ok(!after.text.includes(evil), 'no raw script anywhere');
    assert.match(after.text, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.match(after.text, /data\.note = &lt;script&gt;/, 'the run tag is escaped');
    const named = await b.go('GET', `/ui/models/${encodeURIComponent(`${model}${evil}`)}`);
    assert.equal(named.status, 200);
    assert.ok(!named.text.includes(evil));
    assert.match(named.text, /&lt;script&gt;/);
    const filtered = await b.go('GET', `/ui/?model=${encodeURIComponent(evil)}`);
    assert.ok(!filtered.text.includes(evil));
  });

  it('when a person approves on the page, then the lifecycle records an attested approval via ui and the page shows Production', async () => {
    const { model, version } = await s.staged();
    const b = new Browser(s.base);
    await b.signIn(UI_TOKENS.alice);
    const pending = await eventually('pending list shows the version', async () => {
      const r = await b.go('GET', `/ui/fragments/pending?model=${encodeURIComponent(model)}`);
      return r.text.includes(`data-version="${version}"`) ? r : undefined;
    });
    assert.match(pending.text, /0 \/ 1/);
    const vp = `/ui/models/${encodeURIComponent(model)}/versions/${version}`;
    const page = await b.go('GET', vp);
    assert.match(page.text, /data-testid="checks"/);
    assert.match(page.text, /accuracy &gt;= 0\.9/);
    assert.match(page.text, /data-testid="comparison"/);
    assert.match(page.text, /learning_rate = 0\.1/);
    assert.match(page.text, /dry run unavailable/);
    const r = await b.go('POST', `${vp}/approve`, { _csrf: hidden(page.text, '_csrf'), comment: 'looks good' });
    assert.equal(r.status, 303);
    assert.equal(r.location, `${vp}?done=approve`);
    const st = await eventually('production', async () => {
      const x = await getState(s.env.client, model, version);
      return x.phase === 'production' ? x : undefined;
    });
    assert.equal(st.approvals.length, 1);
    assert.equal(st.approvals[0].by, 'alice');
    assert.equal(st.approvals[0].via, 'ui');
    assert.equal(st.approvals[0].verified, true, 'attested by the front door like an API decision');
    assert.equal(st.approvals[0].comment, 'looks good');
    const status = await b.go('GET', `${vp}/status`);
    assert.match(status.text, /data-testid="phase">production</);
    // A second click (double submit) is not a second decision.
    const again = await b.go('POST', `${vp}/approve`, { _csrf: hidden(page.text, '_csrf') });
    assert.ok(again.status === 303 || again.status === 409, `double submit: ${again.status}`);
    assert.equal((await getState(s.env.client, model, version)).approvals.length, 1);
    const modelPage = await b.go('GET', `/ui/models/${encodeURIComponent(model)}`);
    assert.match(modelPage.text, new RegExp(`data-testid="serving-version"><a href="[^"]+">version ${version}<`));
    assert.match(modelPage.text, /alice via ui/);
  });
});
