/**
 * A real OpenID Connect issuer for tests: panva's oidc-provider (the certified implementation) on a loopback
 * port, with the clients a test names, PKCE (S256) required for every client, accounts whose login name is
 * their subject, and its development login and consent pages — which `TestBrowser` fills in, following
 * redirects and keeping cookies as a browser does.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

export interface TestClient {
  client_id: string;
  /** Set: a confidential client (client_secret_basic). Unset: a public client (token_endpoint_auth_method none). */
  client_secret?: string;
  redirect_uris: string[];
}

export interface TestIssuer {
  /** The issuer identifier (http://127.0.0.1:port), as MODELGATE_OIDC_ISSUER. */
  url: string;
  close(): Promise<void>;
}

/** Accounts: login name (= subject) → email. A login not listed signs in with `<login>@unlisted.example`. */
export async function startOidcIssuer(opts: { clients: TestClient[]; accounts: Record<string, string> }): Promise<TestIssuer> {
  // The issuer URL is its address, so the port is taken before the provider exists.
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const provider = new Provider(url, {
    clients: opts.clients.map((c) => ({
      client_id: c.client_id,
      ...(c.client_secret ? { client_secret: c.client_secret, token_endpoint_auth_method: 'client_secret_basic' } : { token_endpoint_auth_method: 'none' }),
      redirect_uris: c.redirect_uris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
    })),
    pkce: { methods: ['S256'], required: () => true },
    scopes: ['openid', 'email', 'read', 'promote', 'approve', 'retire'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    // Put the email in the ID token even though an access token is issued too (the page reads the ID token only).
    conformIdTokenClaims: false,
    findAccount: (_ctx: unknown, id: string) => ({
      accountId: id,
      claims: () => ({ sub: id, email: opts.accounts[id] ?? `${id}@unlisted.example`, email_verified: true }),
    }),
    cookies: { keys: ['modelgate-test-issuer-cookie-key'] },
    jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', alg: 'RS256', use: 'sig' }] },
    features: { devInteractions: { enabled: true } },
    // Explicit lifetimes (seconds): the defaults work but print a notice each.
    ttl: { AuthorizationCode: 60, Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600 },
  });
  server.on('request', provider.callback());
  return {
    url,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

interface StoredCookie {
  name: string;
  value: string;
  path: string;
}

/** What a browser sent or got, enough for the tests: status, headers, body and the URL fetched. */
export interface Visit {
  url: URL;
  status: number;
  headers: Headers;
  body: string;
}

/**
 * A cookie-keeping HTTP client for one host (127.0.0.1: ports share cookies, as in a browser). Redirects are
 * not followed on their own: `signIn` follows them so a test can stop at the callback and tamper with it.
 */
export class TestBrowser {
  readonly cookies: StoredCookie[] = [];
  /** Every URL requested, in order. */
  readonly visited: URL[] = [];

  cookie(name: string): StoredCookie | undefined {
    return this.cookies.find((c) => c.name === name);
  }

  async request(url: URL | string, init: { method?: string; form?: Record<string, string> } = {}): Promise<Visit> {
    const target = new URL(url);
    this.visited.push(target);
    const headers: Record<string, string> = {};
    const sent = this.cookies.filter((c) => target.pathname === c.path || target.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`));
    if (sent.length) headers.cookie = sent.map((c) => `${c.name}=${c.value}`).join('; ');
    let body: string | undefined;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
    }
    const res = await fetch(target, { method: init.method ?? (body ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) this.store(line);
    return { url: target, status: res.status, headers: res.headers, body: await res.text() };
  }

  private store(line: string): void {
    const [pair, ...attrs] = line.split(';').map((s) => s.trim());
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    let path = '/';
    let gone = value === '';
    for (const a of attrs) {
      const [k, v = ''] = a.split('=');
      if (k.toLowerCase() === 'path') path = v;
      if (k.toLowerCase() === 'max-age' && Number(v) <= 0) gone = true;
      if (k.toLowerCase() === 'expires' && Date.parse(v) <= Date.now()) gone = true;
    }
    const i = this.cookies.findIndex((c) => c.name === name && c.path === path);
    if (i >= 0) this.cookies.splice(i, 1);
    if (!gone) this.cookies.push({ name, value, path });
  }

  /**
   * From `start` (the page's /ui/login/oidc), follow redirects and fill in the issuer's login (as `login`) and
   * consent pages until a redirect goes to `stopAt` (the callback path); returns that URL, not yet visited.
   */
  async signIn(start: string, login: string, stopAt: string): Promise<URL> {
    let visit = await this.request(start);
    for (let step = 0; step < 20; step++) {
      if (visit.status >= 300 && visit.status < 400) {
        const next = new URL(visit.headers.get('location') ?? '', visit.url);
        if (next.pathname === stopAt) return next;
        visit = await this.request(next);
        continue;
      }
      if (visit.status !== 200) throw new Error(`sign-in stopped at ${visit.url.pathname} with ${visit.status}: ${visit.body.slice(0, 300)}`);
      const action = /<form[^>]*action="([^"]+)"/.exec(visit.body)?.[1];
      const prompt = /name="prompt" value="([^"]+)"/.exec(visit.body)?.[1];
      if (!action || !prompt) throw new Error(`sign-in stopped at ${visit.url.pathname}: no form`);
      const form: Record<string, string> = prompt === 'login' ? { prompt, login, password: 'any' } : { prompt };
      visit = await this.request(new URL(action.replace(/&amp;/g, '&'), visit.url), { form });
    }
    throw new Error('sign-in: too many steps');
  }
}
