/** `/ui/models/<model>` — what serves now, the Production history as a timeline, every lifecycle and its outcome. */
import { html, relative, versionPath, type SafeHtml } from './html.js';
import type { ModelView } from './data.js';

export function modelBody(v: ModelView, now: number): SafeHtml {
  const a = v.serving;
  const serving = a?.serving.productionVersion ?? null;
  const approvals = a?.approval.approvals ?? [];
  const history = [...(a?.productionHistory ?? [])].reverse();
  return html`<h1>Model ${v.model}</h1>
${v.notes.map((n) => html`<p class="notice">${n}</p>`)}
<section aria-labelledby="serving-h" class="card">
  <h2 id="serving-h">Serving now</h2>
  ${serving !== null
    ? html`<dl class="facts">
      <dt>Version</dt><dd data-testid="serving-version"><a href="${versionPath(v.model, serving)}">version ${serving}</a></dd>
      <dt>Since</dt><dd>${a?.approval.promotedAt ?? '—'} <span class="muted">(${relative(a?.approval.promotedAt ?? undefined, now)})</span></dd>
      <dt>Approved by</dt><dd>${approvals.length ? approvals.map((p) => html`<span class="chip">${p.by}${p.via ? ` via ${p.via}` : ''}</span>`) : html`<span class="muted">not recorded</span>`}</dd>
      <dt>Storage URI</dt><dd>${a?.serving.storageUri ?? '—'}</dd>
    </dl>`
    : html`<p class="muted">No version of ${v.model} is in Production.</p>`}
</section>
<section aria-labelledby="history-h">
  <h2 id="history-h">Production history</h2>
  ${history.length
    ? html`<ol class="timeline">${history.map(
        (i) => html`<li><strong><a href="${versionPath(v.model, i.version)}">version ${i.version}</a></strong> from ${i.from} ${i.to ? html`to ${i.to}${i.endedBy ? ` (${i.endedBy})` : ''}` : html`<span class="pass">— serving</span>`}</li>`,
      )}</ol>`
    : html`<p class="muted">Never in Production.</p>`}
</section>
<section aria-labelledby="lifecycles-h">
  <h2 id="lifecycles-h">Lifecycles</h2>
  <div class="table-wrap"><table class="stack">
    <thead><tr><th scope="col">Version</th><th scope="col">Status</th><th scope="col">Stage</th><th scope="col">Outcome</th><th scope="col">Started</th><th scope="col">Closed</th><th scope="col">Approvers</th></tr></thead>
    <tbody>${lifecycleRows(v)}</tbody>
  </table></div>
</section>`;
}

function lifecycleRows(v: ModelView): SafeHtml {
  if (!v.lifecycles.length) return html`<tr><td colspan="7" class="muted">No lifecycles recorded.</td></tr>`;
  return html`${v.lifecycles.map(
    (r) => html`<tr data-testid="lifecycle-row">
      <td data-label="Version">${r.version !== undefined ? html`<a href="${versionPath(v.model, r.version)}">version ${r.version}</a>` : '—'}</td>
      <td data-label="Status">${r.status.toLowerCase().replace(/_/g, ' ')}</td>
      <td data-label="Stage">${r.stage ?? '—'}</td>
      <td data-label="Outcome">${r.outcome ?? (r.status === 'RUNNING' ? html`<span class="muted">in progress</span>` : r.stage === 'Production' ? 'promoted' : '—')}</td>
      <td data-label="Started">${r.startTime}</td>
      <td data-label="Closed">${r.closeTime ?? '—'}</td>
      <td data-label="Approvers">${r.approvers.join(', ') || '—'}</td>
    </tr>`,
  )}`;
}
