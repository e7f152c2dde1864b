/**
 * The page's only stylesheet and script, served from the package itself (/ui/static/…): nothing is loaded from
 * a CDN, and the Content-Security-Policy allows scripts and styles from this origin only. They live as strings
 * in a module so the compiled dist/ carries them (the image copies dist/ only).
 */
export const UI_CSS = `
:root { --fg:#1b1f24; --muted:#4a5360; --bg:#ffffff; --line:#d0d7de; --accent:#0b5cad; --ok:#1a7f37; --bad:#b42318; --warn:#8a5a00; --chip:#eef2f6; }
* { box-sizing: border-box; }
body { margin:0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
a { color:var(--accent); }
a:focus, button:focus, input:focus, textarea:focus, select:focus, summary:focus { outline:3px solid #f59e0b; outline-offset:2px; }
.skip { position:absolute; left:-999px; } .skip:focus { left:8px; top:8px; background:#fff; padding:4px 8px; z-index:10; }
header.top { display:flex; flex-wrap:wrap; gap:12px; align-items:center; justify-content:space-between; padding:10px 16px; background:#0d2b4d; color:#fff; }
header.top a { color:#fff; font-weight:600; text-decoration:none; }
header.top form { display:inline; margin:0; }
header.top button { background:transparent; color:#fff; border:1px solid #fff; border-radius:4px; padding:2px 10px; cursor:pointer; }
main { max-width:1100px; margin:0 auto; padding:16px; }
h1 { font-size:1.5rem; margin:0.2em 0 0.6em; } h2 { font-size:1.15rem; margin:1.4em 0 0.5em; border-bottom:1px solid var(--line); padding-bottom:4px; }
.table-wrap { overflow-x:auto; }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-weight:600; color:var(--muted); font-size:0.9rem; }
.muted { color:var(--muted); }
.pass { color:var(--ok); font-weight:600; } .fail { color:var(--bad); font-weight:600; } .warn { color:var(--warn); }
.chip { display:inline-block; background:var(--chip); border-radius:10px; padding:0 8px; font-size:0.85rem; margin:0 4px 4px 0; }
.phase { font-weight:700; }
.card { border:1px solid var(--line); border-radius:6px; padding:12px 16px; margin:12px 0; }
.notice { border-left:4px solid var(--warn); background:#fff8e6; padding:8px 12px; margin:12px 0; }
.error { border-left:4px solid var(--bad); background:#fdecea; padding:8px 12px; margin:12px 0; }
.success { border-left:4px solid var(--ok); background:#e9f7ee; padding:8px 12px; margin:12px 0; }
label { display:block; font-weight:600; margin:8px 0 4px; }
input[type=text], input[type=password], textarea, select { width:100%; max-width:520px; font:inherit; padding:6px 8px; border:1px solid #57606a; border-radius:4px; }
textarea { min-height:4em; }
button.primary, button.danger { font:inherit; font-weight:600; padding:6px 16px; border-radius:4px; border:0; cursor:pointer; margin-top:8px; color:#fff; }
button.primary { background:var(--ok); } button.danger { background:var(--bad); }
.decide { display:flex; flex-wrap:wrap; gap:24px; } .decide form { flex:1 1 280px; }
pre.diff { background:#f6f8fa; padding:8px; overflow-x:auto; font-size:0.85rem; }
pre.diff .add { color:var(--ok); } pre.diff .del { color:var(--bad); }
ol.timeline { list-style:none; padding:0; margin:0; } ol.timeline li { border-left:3px solid var(--line); padding:2px 0 6px 12px; }
dl.facts { display:grid; grid-template-columns:max-content 1fr; gap:4px 16px; margin:0; } dl.facts dt { color:var(--muted); }
@media (max-width: 640px) {
  body { font-size:15px; } main { padding:10px; }
  table.stack thead { display:none; }
  table.stack tr { display:block; border-bottom:2px solid var(--line); padding:6px 0; }
  table.stack td { display:block; border:0; padding:2px 4px; }
  table.stack td[data-label]::before { content: attr(data-label) ": "; color:var(--muted); font-weight:600; }
  dl.facts { grid-template-columns:1fr; }
}
`;

/**
 * Refreshes every element with data-refresh="<same-origin path>" every few seconds from a server-rendered
 * fragment (escaped on the server like the page itself), so the lists update without a full reload and the
 * script never builds markup from data. Pauses while the tab is hidden; keeps focus where it was.
 */
export const UI_JS = `(function () {
  'use strict';
  var INTERVAL = 3000;
  function refresh(el) {
    var url = el.getAttribute('data-refresh');
    if (!url || url.charAt(0) !== '/' || url.charAt(1) === '/') return;
    fetch(url, { credentials: 'same-origin', headers: { 'accept': 'text/html' } })
      .then(function (r) { if (r.status === 401 || r.status === 403) { window.location.assign('/ui/login'); return null; } return r.ok ? r.text() : null; })
      .then(function (text) {
        if (text === null || text === undefined || el.getAttribute('data-last') === text) return;
        if (el.contains(document.activeElement)) return;
        el.innerHTML = text;
        el.setAttribute('data-last', text);
      })
      .catch(function () { /* offline for a moment: try again next tick */ });
  }
  function tick() {
    if (document.hidden) return;
    var els = document.querySelectorAll('[data-refresh]');
    for (var i = 0; i < els.length; i++) refresh(els[i]);
  }
  var filter = document.getElementById('model-filter');
  if (filter) {
    filter.addEventListener('change', function () { filter.form.submit(); });
  }
  setInterval(tick, INTERVAL);
})();
`;
