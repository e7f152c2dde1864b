/** The page shell every /ui page shares: header with who is signed in, skip link, one stylesheet, one script. */
import { html, type SafeHtml } from './html.js';
import type { Session } from './session.js';

export interface Shell {
  title: string;
  session?: Session;
  csrf?: string;
  body: SafeHtml;
}

export function page(s: Shell): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${s.title} · modelgate</title>
<link rel="stylesheet" href="/ui/static/ui.css">
<script src="/ui/static/ui.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <a href="/ui/">modelgate approvals</a>
  ${s.session
    ? html`<span>Signed in as <strong data-testid="whoami">${s.session.identity}</strong>
      <form method="post" action="/ui/logout"><input type="hidden" name="_csrf" value="${s.csrf}"><button type="submit">Sign out</button></form></span>`
    : ''}
</header>
<main id="main" tabindex="-1">
${s.body}
</main>
</body>
</html>
`.value;
}
