/**
 * Sign-in without an identity provider: the person pastes their API token, which is checked by the same
 * Authenticator the API uses; the session then carries that credential's identity and scopes (never more).
 * The token itself is not kept anywhere (not in the cookie, not in logs).
 *
 * Login CSRF (a site signing the victim in as the attacker) is refused like any other cross-site POST: the form
 * carries a nonce that must match a short-lived sealed cookie set when the form was shown.
 *
 * The hook for OIDC (branch ui-oidc): `loginOptions` are rendered as sign-in buttons above the token form.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { html, safeUrl } from './html.js';
import { page } from './layout.js';
import { readCookie, type UiSessions } from './session.js';

export const LOGIN_COOKIE = 'modelgate_ui_login';
const LOGIN_PURPOSE = 'login-form';
const LOGIN_FORM_TTL_MS = 15 * 60_000;

/** Another way to sign in, e.g. `{ label: 'Sign in with Acme SSO', href: '/ui/login/oidc' }`. */
export interface LoginOption {
  label: string;
  href: string;
}

/** Only a path of this site under /ui/ (no //host, no scheme): never an open redirect. */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || !next.startsWith('/ui/') || next.startsWith('//') || /[\\\r\n]/.test(next)) return '/ui/';
  return next;
}

export function showLogin(
  sessions: UiSessions,
  req: FastifyRequest,
  reply: FastifyReply,
  opts: { next: string; options: LoginOption[]; error?: string; status?: number },
): FastifyReply {
  const nonce = randomBytes(24).toString('base64url');
  sessions.setCookie(req, reply, LOGIN_COOKIE, sessions.seal(LOGIN_PURPOSE, { nonce, exp: Date.now() + LOGIN_FORM_TTL_MS }), LOGIN_FORM_TTL_MS / 1000);
  const body = html`<h1>Sign in</h1>
${opts.error ? html`<p class="error" role="alert" data-testid="login-error">${opts.error}</p>` : ''}
${opts.options.length ? html`<ul class="login-options">${opts.options.map((o) => html`<li><a class="primary" href="${safeUrl(o.href)}">${o.label}</a></li>`)}</ul><p class="muted">or sign in with an API token:</p>` : ''}
<form method="post" action="/ui/login" class="card">
  <input type="hidden" name="_csrf" value="${nonce}">
  <input type="hidden" name="next" value="${opts.next}">
  <label for="token">API token</label>
  <input type="password" id="token" name="token" autocomplete="off" required>
  <p class="muted">The token is checked like an API call and not stored; your session carries its identity and scopes.</p>
  <button type="submit" class="primary">Sign in</button>
</form>`;
  return reply.status(opts.status ?? 200).type('text/html; charset=utf-8').send(page({ title: 'Sign in', body }));
}

/** True when the posted nonce matches the sealed login-form cookie (and it has not expired). */
export function loginNonceOk(sessions: UiSessions, req: FastifyRequest, posted: unknown): boolean {
  const raw = readCookie(req, LOGIN_COOKIE);
  const sealed = raw ? sessions.open<{ nonce: string; exp: number }>(LOGIN_PURPOSE, raw) : undefined;
  if (!sealed || typeof posted !== 'string' || sealed.exp < Date.now()) return false;
  const a = Buffer.from(posted);
  const b = Buffer.from(sealed.nonce);
  return a.length === b.length && timingSafeEqual(a, b);
}
