/**
 * Credentials written into URLs (`https://user:token@host/…`): recognised for the policy loader, which
 * refuses them, and masked for logs and error messages, which must never show them.
 */

// `scheme://userinfo@`. The userinfo runs to the last `@` before the host, so a password holding an
// unencoded `@` is still matched whole; it cannot cross a path, query, fragment, whitespace or quote, so an
// `@` later in the text (an e-mail address, `user@host` in a message) is not mistaken for one.
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#"'<>`]*)@/gi;

// git's scp-like remote (`user@host:path`) has no password field; `user:secret@host:path` is someone trying.
// Anchored, with the user and host spelled as git accepts them, so other text with colons and an `@` is not it.
const SCP_WITH_SECRET = /^\s*[\w.~-]+:[^\s@/]+@[A-Za-z0-9.-]+:/;

/** `https://u:p@h/x` → `https://***@h/x`, for every URL in `text`; any userinfo is masked, user-only too. */
export function maskUrlCredentials(text: string): string {
  // Most strings hold no `://` and no `@`; skip the regex for them (logs call this on every string value).
  if (!text.includes('@') || !text.includes('://')) return text;
  return text.replace(USERINFO, (_, scheme: string, userinfo: string) => (userinfo ? `${scheme}***@` : `${scheme}@`));
}

/**
 * Whether `text` carries a credential in a URL: a userinfo with a password part (`user:secret@`, any
 * scheme), any userinfo on http(s) (`https://token@host`: GitHub and others take a bare token as the user),
 * or scp-like `user:secret@host:path`. A user alone on ssh/git URLs (`ssh://git@host/…`, `git@host:org/repo`)
 * names an account whose key lives elsewhere, so it is not a credential.
 */
export function hasUrlCredentials(text: string): boolean {
  if (!text.includes('@')) return false;
  if (SCP_WITH_SECRET.test(text)) return true;
  for (const m of text.matchAll(USERINFO)) {
    const [, scheme, userinfo] = m;
    if (userinfo.includes(':')) return true;
    if (userinfo && /(^|\+)https?:\/\/$/i.test(scheme)) return true;
  }
  return false;
}
