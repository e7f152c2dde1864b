/**
 * The back-channel half of the code flow: POST the authorization code and the PKCE code_verifier to the
 * issuer's token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.5), authenticating as a confidential client with
 * client_secret_basic or, for a public client, sending only client_id. Returns the ID token and the scope the
 * issuer granted. Neither the code, the verifier, the secret nor any token is put into an error.
 */
import { IssuerUnavailable } from './oidc-discovery.js';

export interface CodeExchange {
  tokenEndpoint: string;
  clientId: string;
  clientSecret?: string;
  code: string;
  verifier: string;
  redirectUri: string;
  timeoutMs?: number;
}

export interface TokenResult {
  idToken: string;
  /** The granted scope (RFC 6749 §5.1: absent means as requested). */
  scope?: string;
}

/** The issuer refused the code (replayed, expired, wrong verifier, wrong client…): `error` is its OAuth error code. */
export class CodeRefused extends Error {
  override name = 'CodeRefused';
  constructor(readonly error: string) {
    super(`the identity provider refused the authorization code (${error})`);
  }
}

const OAUTH_ERROR = /^[\x20-\x21\x23-\x5b\x5d-\x7e]{1,64}$/; // RFC 6749 §5.2 error charset, bounded

/** RFC 6749 §2.3.1: client id and secret are form-urlencoded before they are joined for HTTP Basic. */
function basic(clientId: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(clientId)}:${enc(secret)}`, 'utf8').toString('base64')}`;
}

export async function exchangeCode(x: CodeExchange): Promise<TokenResult> {
  const body = new URLSearchParams({ grant_type: 'authorization_code', code: x.code, redirect_uri: x.redirectUri, code_verifier: x.verifier });
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (x.clientSecret) headers.authorization = basic(x.clientId, x.clientSecret);
  else body.set('client_id', x.clientId);
  let res: Response;
  try {
    res = await fetch(x.tokenEndpoint, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(x.timeoutMs ?? 10_000) });
  } catch (err) {
    throw new IssuerUnavailable(`token endpoint unreachable: ${err instanceof Error ? err.name : 'error'}`);
  }
  let json: unknown;
  try {
    json = await res.json();
  } catch {
    json = undefined;
  }
  const doc = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>;
  if (res.status >= 500 || (res.status !== 200 && typeof doc.error !== 'string')) {
    throw new IssuerUnavailable(`token endpoint answered ${res.status}`);
  }
  if (res.status !== 200) {
    throw new CodeRefused(OAUTH_ERROR.test(String(doc.error)) ? String(doc.error) : 'error');
  }
  if (typeof doc.id_token !== 'string' || doc.id_token === '') throw new CodeRefused('no id_token in the token response');
  return { idToken: doc.id_token, ...(typeof doc.scope === 'string' ? { scope: doc.scope } : {}) };
}
