/**
 * Settings of the web page's OIDC sign-in (authorization code flow with PKCE against MODELGATE_OIDC_ISSUER, the
 * issuer the API already trusts for bearer tokens). Off unless MODELGATE_UI_OIDC_CLIENT_ID is set. The client
 * secret never appears in messages (parseEnv hides values of *SECRET* keys; the checks below never echo it).
 */
import { z } from 'zod';
import { ConfigError, parseEnv } from '../config.js';
import type { OidcSettings } from './identity.js';

const shape = {
  /** The page's client id at the issuer; also the `aud` its ID tokens must carry. Set: OIDC sign-in is on. */
  MODELGATE_UI_OIDC_CLIENT_ID: z.string().min(1).max(256).optional(),
  /** A confidential client's secret (client_secret_basic at the token endpoint). Unset: a public client (PKCE only). */
  MODELGATE_UI_OIDC_CLIENT_SECRET: z.string().min(1).optional(),
  /** Where browsers reach modelgate, an origin such as https://modelgate.example.com: the redirect_uri is `<url>/ui/callback`. */
  MODELGATE_UI_PUBLIC_URL: z.string().url().optional(),
  /** Space-separated scopes asked for; must include `openid`. The modelgate ones granted limit the session, as at the API. */
  MODELGATE_UI_OIDC_SCOPES: z.string().min(1).default('openid email read promote approve retire'),
};

export interface UiOidcSettings {
  issuer: string;
  clientId: string;
  /** Secret: never logged, never in an error. */
  clientSecret?: string;
  /** `${MODELGATE_UI_PUBLIC_URL}/ui/callback`, exactly as registered at the issuer. */
  redirectUri: string;
  scopes: string[];
  /** The public URL is https: cookies are Secure whatever the proxy in front tells the API. */
  secure: boolean;
  /** The API's JWKS override (MODELGATE_OIDC_JWKS_URL) and refetch cooldown, shared with bearer tokens. */
  jwksUrl?: string;
  jwksCooldownMs: number;
}

export const UI_CALLBACK_PATH = '/ui/callback';

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** The UI's OIDC settings, or undefined when MODELGATE_UI_OIDC_CLIENT_ID is unset. */
export function loadUiOidcConfig(env: NodeJS.ProcessEnv, oidc: OidcSettings | undefined): UiOidcSettings | undefined {
  const c = parseEnv(shape, env);
  if (!c.MODELGATE_UI_OIDC_CLIENT_ID) {
    // A secret or URL without a client id is a half-done setup: say so instead of silently serving no sign-in.
    if (c.MODELGATE_UI_OIDC_CLIENT_SECRET) throw new ConfigError('MODELGATE_UI_OIDC_CLIENT_ID: required when MODELGATE_UI_OIDC_CLIENT_SECRET is set');
    return undefined;
  }
  if (!oidc) throw new ConfigError('MODELGATE_OIDC_ISSUER: required when MODELGATE_UI_OIDC_CLIENT_ID is set (the page signs in against the API\'s issuer)');
  if (oidc.audience.includes(c.MODELGATE_UI_OIDC_CLIENT_ID)) {
    // ID tokens carry the client id as `aud`: the API would take the page's ID tokens as bearer tokens.
    throw new ConfigError('MODELGATE_UI_OIDC_CLIENT_ID: must not be one of MODELGATE_OIDC_AUDIENCE (the page\'s ID tokens would be accepted as API bearer tokens)');
  }
  if (!c.MODELGATE_UI_PUBLIC_URL) {
    // Never derived from the Host header: that is the caller's to choose, and the redirect_uri must be exact.
    throw new ConfigError('MODELGATE_UI_PUBLIC_URL: required when MODELGATE_UI_OIDC_CLIENT_ID is set (it makes the redirect_uri)');
  }
  const url = new URL(c.MODELGATE_UI_PUBLIC_URL);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
    throw new ConfigError(`MODELGATE_UI_PUBLIC_URL: must be https (plain http only on a loopback host) (got ${JSON.stringify(c.MODELGATE_UI_PUBLIC_URL)})`);
  }
  // Cookie paths (/ui, /ui/callback) assume the page is served at the root: no path prefix behind a proxy.
  if (url.pathname !== '/' || url.search || url.hash || url.username || url.password) {
    throw new ConfigError(`MODELGATE_UI_PUBLIC_URL: must be an origin only (scheme, host, port), without path, query or credentials`);
  }
  const scopes = [...new Set(c.MODELGATE_UI_OIDC_SCOPES.split(/\s+/).filter(Boolean))];
  if (!scopes.includes('openid')) throw new ConfigError(`MODELGATE_UI_OIDC_SCOPES: must include openid (got ${JSON.stringify(c.MODELGATE_UI_OIDC_SCOPES)})`);
  return {
    issuer: oidc.issuer,
    clientId: c.MODELGATE_UI_OIDC_CLIENT_ID,
    ...(c.MODELGATE_UI_OIDC_CLIENT_SECRET ? { clientSecret: c.MODELGATE_UI_OIDC_CLIENT_SECRET } : {}),
    redirectUri: `${url.origin}${UI_CALLBACK_PATH}`,
    scopes,
    secure: url.protocol === 'https:',
    ...(oidc.jwksUrl ? { jwksUrl: oidc.jwksUrl } : {}),
    jwksCooldownMs: oidc.jwksCooldownMs,
  };
}
