/**
 * Signing in to the web page with the organisation's identity provider: the OIDC authorization code flow with
 * PKCE (S256), state and nonce, against the issuer the API trusts for bearer tokens.
 *
 *   GET /ui/login/oidc?next=/ui/…       → a sealed one-shot login cookie (state, nonce, code_verifier, return
 *                                          path; Path=/ui/callback, HttpOnly, SameSite=Lax, 10 min) and a 302 to
 *                                          the issuer's authorization endpoint.
 *   GET /ui/callback?code&state[&iss]    → the login cookie is consumed (cleared whatever happens), the state
 *                                          compared in constant time, the code exchanged with the verifier, the
 *                                          ID token verified (signature, iss, aud = client id, exp, alg allow-list,
 *                                          nonce), the subject/email mapped through the identity directory, and
 *                                          only then a page session; 302 to the (relative, /ui-only) return path.
 *
 * Every failure is a small HTML page with a stable code and no secret in it, and fails closed: no session. The
 * callback URL carries the code, so its answers are `no-store` and `Referrer-Policy: no-referrer`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { UiOidcSettings } from '../config/ui-oidc.js';
import { UI_CALLBACK_PATH } from '../config/ui-oidc.js';
import { isScope, type IdentityDirectory } from '../identity/directory.js';
import { TokenRejected, type VerifiedToken } from '../identity/oidc.js';
import type { Logger } from '../observability/log.js';
import type { Scope } from '../identity/types.js';
import { readCookie, type UiSessions } from './session.js';
import { IssuerUnavailable, type OidcEndpoints } from './oidc-discovery.js';
import { newLoginSecrets, safeReturnPath, sameSecret } from './oidc-flow.js';
import { CodeRefused, exchangeCode } from './oidc-token.js';
import { errorPage } from './oidc-pages.js';

export const OIDC_LOGIN_PATH = '/ui/login/oidc';
export const LOGIN_COOKIE = 'modelgate_oidc_login';
/** AEAD purpose of the login cookie: a session cookie cannot be replayed as one, nor this as a session. */
const LOGIN_PURPOSE = 'oidc-login';
const LOGIN_TTL_MS = 10 * 60_000;

interface LoginState {
  state: string;
  nonce: string;
  verifier: string;
  returnTo: string;
  expiresAt: number;
}

export interface IdTokenVerifier {
  verify(jwt: string): Promise<VerifiedToken>;
}

export interface UiOidcDeps {
  settings: UiOidcSettings;
  sessions: Pick<UiSessions, 'seal' | 'open' | 'establishSession'>;
  /** ui's MODELGATE_UI_SECURE_COOKIES (TLS ends at a proxy); the login cookie is Secure like the session's. */
  secureCookies: boolean;
  /** How long a page session lasts (ui's MODELGATE_UI_SESSION_TTL_MS). */
  sessionTtlMs: number;
  directory: IdentityDirectory;
  /** Verifies ID tokens: audience = the client id (an OidcVerifier, see server.ts). */
  verifier: IdTokenVerifier;
  /** The issuer's endpoints (OidcDiscovery.endpoints). */
  endpoints: () => Promise<OidcEndpoints>;
  logger: Logger;
  now?: () => number;
}

/** What the login page shows for this sign-in option. */
export function oidcLoginOption(settings: Pick<UiOidcSettings, 'issuer'>, returnTo?: string): { href: string; label: string } {
  let host = settings.issuer;
  try {
    host = new URL(settings.issuer).host;
  } catch {
    // not a URL: show it as configured
  }
  const q = returnTo ? `?next=${encodeURIComponent(safeReturnPath(returnTo))}` : '';
  return { href: `${OIDC_LOGIN_PATH}${q}`, label: `Sign in with ${host}` };
}

class LoginFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function uiOidcRoutes(deps: UiOidcDeps) {
  const now = deps.now ?? Date.now;
  const { settings } = deps;

  const loginCookie = (request: FastifyRequest, reply: FastifyReply, value: string, maxAgeSeconds: number) => {
    const secure = settings.secure || deps.secureCookies || request.protocol === 'https';
    const parts = [`${LOGIN_COOKIE}=${value}`, `Path=${UI_CALLBACK_PATH}`, 'HttpOnly', 'SameSite=Lax', `Max-Age=${maxAgeSeconds}`];
    if (secure) parts.push('Secure');
    const prev = reply.getHeader('set-cookie');
    const list = prev === undefined ? [] : Array.isArray(prev) ? prev.map(String) : [String(prev)];
    void reply.header('set-cookie', [...list, parts.join('; ')]);
  };

  const fail = (reply: FastifyReply, err: unknown) => {
    const f =
      err instanceof LoginFailure
        ? err
        : err instanceof IssuerUnavailable
          ? new LoginFailure(503, 'issuer_unavailable', 'The identity provider cannot be reached right now. Try again in a minute.')
          : new LoginFailure(500, 'internal', 'Sign-in failed on our side.');
    // The code only: never the state, code, tokens or claims (and err messages here carry none either).
    deps.logger.warn({ code: f.code, status: f.status, ...(f.status >= 500 ? { err: (err as Error).message } : {}) }, 'ui: OIDC sign-in refused');
    if (f.status === 503) void reply.header('retry-after', '30');
    return reply.status(f.status).type('text/html; charset=utf-8').send(errorPage(f.status, f.code, f.message));
  };

  return function uiOidc(app: FastifyInstance): Promise<void> {
    app.get(OIDC_LOGIN_PATH, async (request, reply) => {
      void reply.header('cache-control', 'no-store');
      try {
        const endpoints = await deps.endpoints();
        const secrets = newLoginSecrets();
        const q = request.query as Record<string, unknown>;
        const state: LoginState = {
          state: secrets.state,
          nonce: secrets.nonce,
          verifier: secrets.verifier,
          returnTo: safeReturnPath(q.next),
          expiresAt: now() + LOGIN_TTL_MS,
        };
        loginCookie(request, reply, deps.sessions.seal(LOGIN_PURPOSE, state), LOGIN_TTL_MS / 1000);
        const url = new URL(endpoints.authorizationEndpoint);
        const params = {
          response_type: 'code',
          client_id: settings.clientId,
          redirect_uri: settings.redirectUri,
          scope: settings.scopes.join(' '),
          state: secrets.state,
          nonce: secrets.nonce,
          code_challenge: secrets.challenge,
          code_challenge_method: 'S256',
        };
        for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
        return await reply.redirect(url.href, 302);
      } catch (err) {
        return fail(reply, err);
      }
    });

    app.get(UI_CALLBACK_PATH, async (request, reply) => {
      void reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer');
      // One shot: whatever happens next, this login's secrets are spent.
      const sealed = readCookie(request, LOGIN_COOKIE);
      loginCookie(request, reply, '', 0);
      try {
        const login = sealed ? deps.sessions.open<LoginState>(LOGIN_PURPOSE, sealed) : undefined;
        if (!login || typeof login.state !== 'string' || typeof login.verifier !== 'string' || typeof login.nonce !== 'string' || !(login.expiresAt > now())) {
          throw new LoginFailure(400, 'login_state_missing', 'This sign-in was not started here, has expired or was already used. Start the sign-in again.');
        }
        const q = request.query as Record<string, unknown>;
        if (!sameSecret(q.state, login.state)) {
          throw new LoginFailure(400, 'state_mismatch', 'The sign-in response does not belong to the sign-in this browser started. Start the sign-in again.');
        }
        // RFC 9207: an issuer that names itself must be ours (mix-up defence); absent is allowed.
        if (q.iss !== undefined && q.iss !== settings.issuer) {
          throw new LoginFailure(400, 'issuer_mismatch', 'The sign-in response came from another identity provider.');
        }
        if (typeof q.error === 'string') {
          const error = /^[a-z_]{1,64}$/.test(q.error) ? q.error : 'error';
          throw new LoginFailure(403, 'login_refused', `The identity provider did not sign you in (${error}).`);
        }
        if (typeof q.code !== 'string' || q.code === '' || q.code.length > 4096) {
          throw new LoginFailure(400, 'invalid_params', 'The sign-in response has no authorization code.');
        }
        const endpoints = await deps.endpoints();
        let tokens;
        try {
          tokens = await exchangeCode({
            tokenEndpoint: endpoints.tokenEndpoint,
            clientId: settings.clientId,
            clientSecret: settings.clientSecret,
            code: q.code,
            verifier: login.verifier,
            redirectUri: settings.redirectUri,
          });
        } catch (err) {
          if (err instanceof CodeRefused) throw new LoginFailure(400, 'login_failed', `${err.message}. Start the sign-in again.`);
          throw err;
        }
        const verified = await verifyIdToken(deps.verifier, tokens.idToken, login.nonce, settings.clientId);
        const caller = deps.directory.byOidc(verified.subject, verified.email, grantedScopes(tokens.scope, settings.scopes));
        if (!caller) {
          throw new LoginFailure(403, 'unknown_identity', 'You signed in, but your account is not linked to any identity in the modelgate directory. Ask an administrator to add it.');
        }
        deps.sessions.establishSession(request, reply, {
          identity: caller.identity,
          via: 'oidc',
          scopes: caller.scopes,
          expiresAt: now() + deps.sessionTtlMs,
        });
        deps.logger.info({ identity: caller.identity, via: 'oidc' }, 'ui: signed in');
        return await reply.redirect(safeReturnPath(login.returnTo), 302);
      } catch (err) {
        return fail(reply, err);
      }
    });
    return Promise.resolve();
  };
}

/** The modelgate scopes the issuer granted (RFC 6749 §5.1: no `scope` in the answer = as requested). */
function grantedScopes(granted: string | undefined, requested: string[]): Scope[] {
  const list = granted !== undefined ? granted.split(/\s+/) : requested;
  return [...new Set(list.filter(isScope))];
}

/** The ID token through the API's verifier (aud = client id) plus the checks particular to ID tokens. */
async function verifyIdToken(verifier: IdTokenVerifier, idToken: string, nonce: string, clientId: string): Promise<VerifiedToken> {
  let verified: VerifiedToken;
  try {
    verified = await verifier.verify(idToken);
  } catch (err) {
    if (err instanceof TokenRejected && err.reason === 'issuer unreachable') throw new IssuerUnavailable('ID token keys unavailable');
    const reason = err instanceof TokenRejected ? err.reason : 'invalid token';
    throw new LoginFailure(401, 'invalid_token', `The identity provider's ID token was refused (${reason}).`);
  }
  // OIDC Core §3.1.3.7: the nonce we sent, and with several audiences, azp naming us.
  if (!sameSecret(verified.claims.nonce, nonce)) throw new LoginFailure(401, 'invalid_token', "The identity provider's ID token was refused (nonce mismatch).");
  const aud = verified.claims.aud;
  if (Array.isArray(aud) && aud.length > 1 && verified.claims.azp !== clientId) {
    throw new LoginFailure(401, 'invalid_token', "The identity provider's ID token was refused (azp is not this client).");
  }
  return verified;
}
