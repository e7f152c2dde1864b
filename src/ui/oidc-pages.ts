/**
 * The one page the OIDC sign-in renders itself: a refusal with its stable code (tests and support look for
 * `data-code`), a human sentence, and a way back to the login page. All text is escaped; none of it comes from
 * the request.
 */
const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

export function errorPage(status: number, code: string, message: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>modelgate — sign-in refused</title></head>
<body><main>
<h1>Sign-in refused</h1>
<p class="error" data-code="${escapeHtml(code)}" data-status="${status}">${escapeHtml(message)}</p>
<p><code>${escapeHtml(code)}</code></p>
<p><a href="/ui/login">Back to sign-in</a></p>
</main></body></html>
`;
}
