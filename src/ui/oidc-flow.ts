/**
 * The pure parts of the page's OIDC sign-in: the per-login secrets (state, nonce, PKCE verifier and its S256
 * challenge), the constant-time comparison of secrets, and the return path after sign-in (relative, under /ui
 * only — never an open redirect).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export interface LoginSecrets {
  state: string;
  nonce: string;
  /** RFC 7636 code_verifier: 32 random bytes, base64url (43 characters). */
  verifier: string;
  /** BASE64URL(SHA256(verifier)), sent with code_challenge_method=S256. */
  challenge: string;
}

export function newLoginSecrets(): LoginSecrets {
  const verifier = randomBytes(32).toString('base64url');
  return {
    state: randomBytes(32).toString('base64url'),
    nonce: randomBytes(32).toString('base64url'),
    verifier,
    challenge: s256(verifier),
  };
}

export function s256(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/** Equality of two secrets in time independent of where they differ (both hashed first: lengths may differ). */
export function sameSecret(a: unknown, b: unknown): boolean {
  if (typeof a !== 'string' || typeof b !== 'string' || a === '' || b === '') return false;
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb);
}

/** C0 controls and DEL: browsers strip tabs and newlines from URLs, which can turn a path into `//host`. */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

export const DEFAULT_RETURN_PATH = '/ui/';
const PROBE_ORIGIN = 'http://return-path.invalid';

/**
 * A path under /ui to go to after sign-in, or `/ui/`. Anything that could leave this site (`//host`, `/\host`,
 * `https://…`, control characters browsers strip), climb out of /ui (`/ui/../v1`), or loop back into the
 * sign-in is replaced by the default. The result is the normalized path (+ query and fragment).
 */
export function safeReturnPath(raw: unknown): string {
  if (typeof raw !== 'string' || raw === '' || raw.length > 1024) return DEFAULT_RETURN_PATH;
  if (!raw.startsWith('/') || raw.startsWith('//') || raw.includes('\\') || hasControl(raw)) return DEFAULT_RETURN_PATH;
  let url: URL;
  try {
    url = new URL(raw, PROBE_ORIGIN);
  } catch {
    return DEFAULT_RETURN_PATH;
  }
  if (url.origin !== PROBE_ORIGIN) return DEFAULT_RETURN_PATH;
  const path = url.pathname;
  if (path !== '/ui' && !path.startsWith('/ui/')) return DEFAULT_RETURN_PATH;
  if (path.startsWith('/ui/login') || path.startsWith('/ui/callback')) return DEFAULT_RETURN_PATH;
  // The normalized path must itself not start with // (e.g. /ui/..//evil normalizes to //evil — already refused above, kept as a belt).
  if (path.startsWith('//')) return DEFAULT_RETURN_PATH;
  return `${path}${url.search}${url.hash}`;
}
