/**
 * Signing in to the web page through a real OIDC issuer (oidc-provider on a loopback port, test/support/
 * oidc-issuer.ts) and the real fastify server listening on a port: the full authorization code flow with PKCE,
 * and each way an attacker could try to get a session without it — a forged or replayed callback, a stolen code
 * without its verifier, an ID token minted for another client, an account the directory does not know, an open
 * redirect after sign-in. None of them may leave a session cookie behind, and no secret may reach the log.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { buildServer, type ApiDeps, type ApiServer } from '../src/api/server.js';
import { loadApiConfig } from '../src/config/api.js';
import { createLogger } from '../src/observability/log.js';
import { freePort } from '../src/stack/processes.js';
import { OidcDiscovery } from '../src/ui/oidc-discovery.js';
import { newLoginSecrets } from '../src/ui/oidc-flow.js';
import { LOGIN_COOKIE } from '../src/ui/oidc-login.js';
import { SESSION_COOKIE, UiSessions } from '../src/ui/session.js';
import { testApiEnv } from './support/identity.js';
import { startOidcIssuer, TestBrowser, type TestIssuer } from './support/oidc-issuer.js';

const SESSION_KEY = 'ui-oidc-test-session-key-0123456789abcdef';
const CLIENT = 'modelgate-ui';
const SECRET = 'ui-client-secret-never-logged-7f3a';
const PUBLIC_CLIENT = 'modelgate-ui-public';
const OTHER_CLIENT = 'another-app';
const OTHER_SECRET = 'another-app-secret';
const OTHER_REDIRECT = 'http://127.0.0.1:9/other/cb';
const CALLBACK = '/ui/callback';

interface RunningApp {
  url: string;
  app: ApiServer;
}

/** A test page standing in for ui's /ui/: who the session cookie says is signed in (read with ui's own readSession). */
function whoamiPage(app: FastifyInstance): Promise<void> {
  const sessions = new UiSessions({ key: SESSION_KEY, secureCookies: false, ttlMs: 3600_000 });
  app.get('/ui/__whoami', (req, reply) => {
    const s = sessions.readSession(req);
    return s ? reply.send({ identity: s.identity, via: s.via, scopes: s.scopes }) : reply.status(401).send({ code: 'no_session' });
  });
  return Promise.resolve();
}

describe('OIDC sign-in to the web page', () => {
  let issuer: TestIssuer;
  let confidential: RunningApp;
  let publicApp: RunningApp;
  let audSwap: RunningApp;
  let fakeToken: Server;
  let fakeIdToken = '';
  const logLines: string[] = [];
  const apps: RunningApp[] = [];
  const ports: number[] = [];

  async function startApp(port: number, env: NodeJS.ProcessEnv, endpoints?: ApiDeps['uiOidcEndpoints']) {
    const url = `http://127.0.0.1:${port}`;
    const log = new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(chunk.toString('utf8'));
        done();
      },
    });
    const app = buildServer({
      client: {} as Client,
      config: loadApiConfig(
        testApiEnv({
          MODELGATE_OIDC_ISSUER: issuer.url,
          MODELGATE_OIDC_AUDIENCE: 'modelgate-api',
          MODELGATE_OIDC_JWKS_COOLDOWN_MS: '0',
          MODELGATE_UI_PUBLIC_URL: url,
          MODELGATE_UI_SESSION_KEY: SESSION_KEY,
          ...env,
        }),
      ),
      logger: createLogger('info', {}, log),
      plugins: [whoamiPage],
      ...(endpoints ? { uiOidcEndpoints: endpoints } : {}),
    });
    await app.listen({ host: '127.0.0.1', port });
    const running = { url, app };
    apps.push(running);
    return running;
  }

  before(async () => {
    ports.push(await freePort(), await freePort(), await freePort());
    issuer = await startOidcIssuer({
      clients: [
        { client_id: CLIENT, client_secret: SECRET, redirect_uris: [`http://127.0.0.1:${ports[0]}${CALLBACK}`, `http://127.0.0.1:${ports[2]}${CALLBACK}`] },
        { client_id: PUBLIC_CLIENT, redirect_uris: [`http://127.0.0.1:${ports[1]}${CALLBACK}`] },
        { client_id: OTHER_CLIENT, client_secret: OTHER_SECRET, redirect_uris: [OTHER_REDIRECT] },
      ],
      accounts: { 'idp-alice': 'alice@example.com', 'idp-bob': 'bob@example.com', 'idp-eve': 'eve@example.com' },
    });
    // A token endpoint double that answers any code with `fakeIdToken` (a genuine ID token of the issuer).
    fakeToken = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id_token: fakeIdToken, access_token: 'x', token_type: 'Bearer' }));
    });
    await new Promise<void>((r) => fakeToken.listen(0, '127.0.0.1', r));
    const discovery = new OidcDiscovery(issuer.url);
    confidential = await startApp(ports[0], { MODELGATE_UI_OIDC_CLIENT_ID: CLIENT, MODELGATE_UI_OIDC_CLIENT_SECRET: SECRET });
    publicApp = await startApp(ports[1], { MODELGATE_UI_OIDC_CLIENT_ID: PUBLIC_CLIENT });
    audSwap = await startApp(ports[2], { MODELGATE_UI_OIDC_CLIENT_ID: CLIENT, MODELGATE_UI_OIDC_CLIENT_SECRET: SECRET }, async () => ({
      ...(await discovery.endpoints()),
      tokenEndpoint: `http://127.0.0.1:${(fakeToken.address() as AddressInfo).port}/token`,
    }));
  });
  after(async () => {
    for (const a of apps) await a.app.close();
    await new Promise((r) => fakeToken?.close(r));
    await issuer?.close();
  });

  /** The authorization request the page redirected to (the last /auth URL the browser visited). */
  const authorizeUrl = (b: TestBrowser) => b.visited.filter((u) => u.origin === issuer.url && u.searchParams.has('code_challenge')).at(-1)!;

  const tokenEndpoint = async () => (await new OidcDiscovery(issuer.url).endpoints()).tokenEndpoint;

  async function redeem(form: Record<string, string>, basic?: [string, string]) {
    const res = await fetch(await tokenEndpoint(), {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...(basic ? { authorization: `Basic ${Buffer.from(`${basic[0]}:${basic[1]}`).toString('base64')}` } : {}),
      },
      body: new URLSearchParams({ grant_type: 'authorization_code', ...form }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  /** Every code, state and nonce the browsers of this file saw (for the log check). */
  const browsers: TestBrowser[] = [];
  const seenSecrets = () =>
    browsers.flatMap((b) => b.visited.flatMap((u) => ['code', 'state', 'nonce', 'code_challenge'].map((k) => u.searchParams.get(k) ?? ''))).filter((v) => v.length >= 20);
  const browser = () => {
    const b = new TestBrowser();
    browsers.push(b);
    return b;
  };

  const setCookieOf = (headers: Headers, name: string) => headers.getSetCookie().find((l) => l.startsWith(`${name}=`));
  const codeOf = (body: string) => /data-code="([^"]+)"/.exec(body)?.[1];

  it('when a directory person signs in through the issuer, then the page session is theirs, its cookie HttpOnly, SameSite=Lax, Path=/ui, and the login cookie is spent', async () => {
    const b = browser();
    const start = await b.request(`${confidential.url}/ui/login/oidc?next=${encodeURIComponent('/ui/models/churn?tab=approvals')}`);
    assert.equal(start.status, 302);
    const loginCookie = setCookieOf(start.headers, LOGIN_COOKIE);
    assert.ok(loginCookie, 'login cookie set');
    for (const flag of ['Path=/ui/callback', 'HttpOnly', 'SameSite=Lax', 'Max-Age=600']) assert.ok(loginCookie.includes(flag), `${flag} in ${loginCookie}`);
    assert.ok(!loginCookie.includes('Secure'), 'no Secure on plain-http loopback');
    const auth = new URL(start.headers.get('location')!);
    assert.equal(auth.origin, issuer.url);
    assert.deepEqual(
      ['response_type', 'client_id', 'redirect_uri', 'code_challenge_method'].map((k) => auth.searchParams.get(k)),
      ['code', CLIENT, `${confidential.url}${CALLBACK}`, 'S256'],
    );
    for (const k of ['state', 'nonce', 'code_challenge']) assert.match(auth.searchParams.get(k) ?? '', /^[A-Za-z0-9_-]{43}$/, k);
    assert.ok(!start.headers.get('location')!.includes('code_verifier'), 'the verifier never leaves the server');

    const callback = await b.signIn(auth.href, 'idp-alice', CALLBACK);
    const done = await b.request(callback);
    assert.equal(done.status, 302, done.body);
    assert.equal(done.headers.get('location'), '/ui/models/churn?tab=approvals');
    assert.equal(done.headers.get('referrer-policy'), 'no-referrer');
    const session = setCookieOf(done.headers, SESSION_COOKIE);
    assert.ok(session, 'session cookie set');
    for (const flag of ['Path=/ui', 'HttpOnly', 'SameSite=Lax']) assert.ok(session.includes(flag), `${flag} in ${session}`);
    assert.match(setCookieOf(done.headers, LOGIN_COOKIE) ?? '', /Max-Age=0/, 'login cookie cleared');

    const me = await b.request(`${confidential.url}/ui/__whoami`);
    assert.equal(me.status, 200, me.body);
    const who = JSON.parse(me.body) as { identity: string; via: string; scopes: string[] };
    assert.deepEqual([who.identity, who.via, [...who.scopes].sort()], ['alice', 'oidc', ['approve', 'promote', 'read', 'retire']]);
  });

  it('when the page is a public client (no secret), then the code flow with PKCE alone signs in', async () => {
    const b = browser();
    const callback = await b.signIn(`${publicApp.url}/ui/login/oidc`, 'idp-bob', CALLBACK);
    const done = await b.request(callback);
    assert.equal(done.status, 302, done.body);
    assert.equal(done.headers.get('location'), '/ui/');
    const me = await b.request(`${publicApp.url}/ui/__whoami`);
    assert.equal((JSON.parse(me.body) as { identity: string }).identity, 'bob');
  });

  it('when the callback state is tampered with, then 400 state_mismatch, no session, and the login cannot be finished afterwards either', async () => {
    const b = browser();
    const callback = await b.signIn(`${confidential.url}/ui/login/oidc`, 'idp-alice', CALLBACK);
    const forged = new URL(callback);
    forged.searchParams.set('state', `${callback.searchParams.get('state')!.slice(0, -2)}xx`);
    const r = await b.request(forged);
    assert.deepEqual([r.status, codeOf(r.body)], [400, 'state_mismatch']);
    assert.equal(setCookieOf(r.headers, SESSION_COOKIE), undefined);
    const again = await b.request(callback);
    assert.deepEqual([again.status, codeOf(again.body)], [400, 'login_state_missing'], 'one shot: the login cookie was spent');
    assert.equal((await b.request(`${confidential.url}/ui/__whoami`)).status, 401);
  });

  it('when the callback arrives in a browser that never started a sign-in (login CSRF / code injection), then 400 login_state_missing', async () => {
    const attacker = browser();
    const callback = await attacker.signIn(`${confidential.url}/ui/login/oidc`, 'idp-eve', CALLBACK);
    const victim = browser();
    const r = await victim.request(callback);
    assert.deepEqual([r.status, codeOf(r.body)], [400, 'login_state_missing']);
    // A login cookie altered by one byte does not open either.
    const b = browser();
    const cb = await b.signIn(`${confidential.url}/ui/login/oidc`, 'idp-alice', CALLBACK);
    const c = b.cookie(LOGIN_COOKIE)!;
    c.value = `${c.value.slice(0, 20)}${c.value[20] === 'A' ? 'B' : 'A'}${c.value.slice(21)}`;
    const t = await b.request(cb);
    assert.deepEqual([t.status, codeOf(t.body)], [400, 'login_state_missing']);
  });

  it('when a used callback is replayed with its login cookie, then the issuer refuses the code again and no session is made', async () => {
    const b = browser();
    const callback = await b.signIn(`${confidential.url}/ui/login/oidc`, 'idp-alice', CALLBACK);
    const captured = b.cookie(LOGIN_COOKIE)!.value;
    assert.equal((await b.request(callback)).status, 302);
    const thief = browser();
    thief.cookies.push({ name: LOGIN_COOKIE, value: captured, path: CALLBACK });
    const r = await thief.request(callback);
    assert.deepEqual([r.status, codeOf(r.body)], [400, 'login_failed'], r.body);
    assert.match(r.body, /invalid_grant/);
    assert.equal(setCookieOf(r.headers, SESSION_COOKIE), undefined);
  });

  it('when a stolen code is redeemed without its PKCE verifier or with a wrong one, then the issuer refuses it (directly and through the page)', async () => {
    const b = browser();
    const callback = await b.signIn(`${confidential.url}/ui/login/oidc`, 'idp-alice', CALLBACK);
    const code = callback.searchParams.get('code')!;
    const redirect_uri = `${confidential.url}${CALLBACK}`;
    const missing = await redeem({ code, redirect_uri }, [CLIENT, SECRET]);
    assert.equal(missing.status, 400);
    assert.ok(['invalid_grant', 'invalid_request'].includes(String(missing.body.error)), JSON.stringify(missing.body));
    const wrong = await redeem({ code, redirect_uri, code_verifier: newLoginSecrets().verifier }, [CLIENT, SECRET]);
    assert.deepEqual([wrong.status, wrong.body.error], [400, 'invalid_grant']);

    // Through the page: a login cookie sealed with the right state and nonce but another verifier.
    const b2 = browser();
    const cb2 = await b2.signIn(`${confidential.url}/ui/login/oidc`, 'idp-alice', CALLBACK);
    const nonce = authorizeUrl(b2).searchParams.get('nonce')!;
    const sealer = new UiSessions({ key: SESSION_KEY, secureCookies: false, ttlMs: 3600_000 });
    b2.cookie(LOGIN_COOKIE)!.value = sealer.seal('oidc-login', {
      state: cb2.searchParams.get('state'),
      nonce,
      verifier: newLoginSecrets().verifier,
      returnTo: '/ui/',
      expiresAt: Date.now() + 60_000,
    });
    const r = await b2.request(cb2);
    assert.deepEqual([r.status, codeOf(r.body)], [400, 'login_failed'], r.body);
    assert.equal(setCookieOf(r.headers, SESSION_COOKIE), undefined);
  });

  it('when an authorization request comes without a PKCE challenge, then the issuer refuses it', async () => {
    const b = browser();
    const start = await b.request(`${confidential.url}/ui/login/oidc`);
    const auth = new URL(start.headers.get('location')!);
    auth.searchParams.delete('code_challenge');
    auth.searchParams.delete('code_challenge_method');
    const r = await b.request(auth);
    const location = r.headers.get('location') ?? '';
    assert.ok(r.status === 400 || /error=invalid_request/.test(location), `${r.status} ${location}`);
    assert.ok(!/[?&]code=/.test(location), 'no code issued');
  });

  it('when the token endpoint answers with a genuine ID token minted for another client, then 401 invalid_token (wrong audience), no session', async () => {
    const b = browser();
    const callback = await b.signIn(`${audSwap.url}/ui/login/oidc`, 'idp-alice', CALLBACK);
    // Another client's ID token for the same person, with this very login's nonce: only the audience is wrong.
    const nonce = authorizeUrl(b).searchParams.get('nonce')!;
    const other = newLoginSecrets();
    const auth = new URL(authorizeUrl(b));
    for (const [k, v] of Object.entries({ client_id: OTHER_CLIENT, redirect_uri: OTHER_REDIRECT, state: other.state, nonce, code_challenge: other.challenge })) auth.searchParams.set(k, v);
    const otherCallback = await b.signIn(auth.href, 'idp-alice', new URL(OTHER_REDIRECT).pathname);
    const minted = await redeem({ code: otherCallback.searchParams.get('code')!, redirect_uri: OTHER_REDIRECT, code_verifier: other.verifier }, [OTHER_CLIENT, OTHER_SECRET]);
    assert.equal(minted.status, 200, JSON.stringify(minted.body));
    fakeIdToken = String(minted.body.id_token);
    const r = await b.request(callback);
    assert.deepEqual([r.status, codeOf(r.body)], [401, 'invalid_token'], r.body);
    assert.match(r.body, /wrong audience/);
    assert.equal(setCookieOf(r.headers, SESSION_COOKIE), undefined);
  });

  it('when the issuer signs in an account the directory does not know, then 403 unknown_identity and no session', async () => {
    const b = browser();
    const callback = await b.signIn(`${confidential.url}/ui/login/oidc`, 'idp-eve', CALLBACK);
    const r = await b.request(callback);
    assert.deepEqual([r.status, codeOf(r.body)], [403, 'unknown_identity']);
    assert.equal(setCookieOf(r.headers, SESSION_COOKIE), undefined);
    assert.ok(!r.body.includes('eve@example.com'), 'the page does not echo the account');
  });

  it('when the sign-in starts with next //evil.example or another off-page target, then it ends on /ui/', async () => {
    for (const target of ['//evil.example', 'https://evil.example/ui/', '/\\evil.example', '/ui/../v1/whoami']) {
      const b = browser();
      const callback = await b.signIn(`${confidential.url}/ui/login/oidc?next=${encodeURIComponent(target)}`, 'idp-alice', CALLBACK);
      const r = await b.request(callback);
      assert.deepEqual([r.status, r.headers.get('location')], [302, '/ui/'], target);
    }
  });

  it('when the issuer answers error=, names another issuer, or sends no code, then login_refused, issuer_mismatch, invalid_params; no session', async () => {
    const cases: Array<[Record<string, string>, number, string]> = [
      [{ error: 'access_denied' }, 403, 'login_refused'],
      [{ code: 'x', iss: 'https://evil.example' }, 400, 'issuer_mismatch'],
      [{}, 400, 'invalid_params'],
    ];
    for (const [params, status, code] of cases) {
      const b = browser();
      const start = await b.request(`${confidential.url}/ui/login/oidc`);
      const state = new URL(start.headers.get('location')!).searchParams.get('state')!;
      const r = await b.request(`${confidential.url}${CALLBACK}?${new URLSearchParams({ state, ...params }).toString()}`);
      assert.deepEqual([r.status, codeOf(r.body)], [status, code], JSON.stringify(params));
      assert.equal(setCookieOf(r.headers, SESSION_COOKIE), undefined);
    }
  });

  it('when the issuer cannot be reached, then the sign-in answers 503 issuer_unavailable with Retry-After and sets no login cookie', async () => {
    const down = buildServer({
      client: {} as Client,
      config: loadApiConfig(
        testApiEnv({
          MODELGATE_OIDC_ISSUER: 'http://127.0.0.1:9',
          MODELGATE_OIDC_AUDIENCE: 'modelgate-api',
          MODELGATE_UI_OIDC_CLIENT_ID: CLIENT,
          MODELGATE_UI_PUBLIC_URL: 'http://127.0.0.1:8080',
          MODELGATE_UI_SESSION_KEY: SESSION_KEY,
        }),
      ),
      logger: createLogger('silent'),
    });
    try {
      const r = await down.inject({ method: 'GET', url: '/ui/login/oidc' });
      assert.deepEqual([r.statusCode, codeOf(r.body), r.headers['retry-after']], [503, 'issuer_unavailable', '30']);
      assert.equal(r.headers['set-cookie'], undefined);
    } finally {
      await down.close();
    }
  });

  it('when no client id is configured, then the sign-in routes are not served', async () => {
    const off = buildServer({ client: {} as Client, config: loadApiConfig(testApiEnv({ MODELGATE_OIDC_ISSUER: issuer.url, MODELGATE_OIDC_AUDIENCE: 'modelgate-api' })), logger: createLogger('silent') });
    try {
      assert.equal((await off.inject({ method: 'GET', url: '/ui/login/oidc' })).statusCode, 404);
      assert.equal((await off.inject({ method: 'GET', url: '/ui/callback?code=x&state=y' })).statusCode, 404);
    } finally {
      await off.close();
    }
  });

  it('when sign-ins succeeded and failed, then the log never holds the client secret, a code, a state or a token', () => {
    const text = logLines.join('');
    assert.match(text, /ui: signed in/);
    assert.match(text, /ui: OIDC sign-in refused/);
    assert.ok(!text.includes(SECRET), 'client secret');
    assert.ok(!text.includes(fakeIdToken.slice(0, 40)), 'ID token');
    const values = seenSecrets();
    assert.ok(values.length > 5);
    for (const v of values) assert.ok(!text.includes(v), 'no code, state or nonce value');
  });
});
